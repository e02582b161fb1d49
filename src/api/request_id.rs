//! Every request gets an id, taken from `X-Request-Id` or made up, returned in the same header
//! and carried by every log line the request causes, together with OpenWebUI's user and chat
//! headers when they are present.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::Stream;
use poem::{http::HeaderValue, Request};
use tracing::Span;

pub const HEADER: &str = "x-request-id";

/// The client's id when it is a sane one, else a new one. Sane: 1 to 128 letters, digits and
/// `-_.:/+=@`, so that it cannot carry the quotes, braces or spaces that would let it forge
/// fields in a text log line, where it stands unquoted.
pub fn request_id(req: &Request) -> String {
    req.headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| crate::ids::random_id("req_"))
}

/// The span a request's log lines are recorded in. OpenWebUI sends who asked and from which
/// chat when `ENABLE_FORWARD_USER_INFO_HEADERS` is on; the e-mail header is left out of logs.
pub fn span(req: &Request, id: &str) -> Span {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        openwebui_user_id = tracing::field::Empty,
        openwebui_user_name = tracing::field::Empty,
        openwebui_user_role = tracing::field::Empty,
        openwebui_chat_id = tracing::field::Empty,
    );
    for (field, name) in [
        ("openwebui_user_id", "x-openwebui-user-id"),
        ("openwebui_user_name", "x-openwebui-user-name"),
        ("openwebui_user_role", "x-openwebui-user-role"),
        ("openwebui_chat_id", "x-openwebui-chat-id"),
    ] {
        if let Some(value) = header(name) {
            span.record(field, value.as_str());
        }
    }
    span
}

pub fn header_value(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// A stream polled inside a span, so that what it logs while a reply streams out (after the
/// handler has returned) still carries the request's fields.
pub struct InSpan<S> {
    inner: S,
    span: Span,
}

impl<S> InSpan<S> {
    pub fn new(inner: S, span: Span) -> Self {
        InSpan { inner, span }
    }
}

impl<S: Stream + Unpin> Stream for InSpan<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        Pin::new(&mut this.inner).poll_next(cx)
    }
}

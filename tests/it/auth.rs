//! Bearer keys from API_KEYS guard `/v1`; `/health` and the docs stay open.

use crate::support::{chat, client, json_of};

#[tokio::test]
async fn v1_needs_one_of_the_configured_keys() {
    let cli = client(&[("API_KEYS", "key-one, key-two")]);
    for header in [
        None,
        Some("Bearer wrong"),
        Some("Bearer key-on"),
        Some("key-one"),
        Some("Bearer "),
    ] {
        let mut req = cli.get("/v1/models");
        if let Some(h) = header {
            req = req.header("Authorization", h);
        }
        let (status, body) = json_of(req.send().await).await;
        assert_eq!(status, 401, "{header:?}");
        assert_eq!(body["error"]["code"], "invalid_api_key", "{header:?}");
        assert_eq!(body["error"]["type"], "authentication_error");
    }
    for key in ["key-one", "key-two"] {
        let resp = cli
            .get("/v1/models")
            .header("Authorization", format!("Bearer {key}"))
            .send()
            .await;
        resp.assert_status_is_ok();
    }
    let (status, _) = json_of(
        cli.post("/v1/chat/completions")
            .body_json(&chat("hi", false))
            .send()
            .await,
    )
    .await;
    assert_eq!(status, 401, "chat is guarded too");
}

#[tokio::test]
async fn health_and_docs_are_open_with_keys_set() {
    let cli = client(&[("API_KEYS", "key-one")]);
    for path in ["/health", "/docs", "/redoc", "/openapi.json"] {
        let resp = cli.get(path).send().await;
        assert_eq!(resp.0.status().as_u16(), 200, "{path}");
    }
}

#[tokio::test]
async fn no_keys_means_open() {
    client(&[("API_KEYS", "")])
        .get("/v1/models")
        .send()
        .await
        .assert_status_is_ok();
}

#[tokio::test]
async fn cors_answers_preflights_for_the_listed_origins_only() {
    let cli = client(&[
        ("API_KEYS", "key-one"),
        ("CORS_ORIGINS", "https://app.example"),
    ]);
    let preflight = |origin: &'static str| {
        cli.options("/v1/chat/completions")
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type, x-stainless-os",
            )
            .send()
    };
    let resp = preflight("https://app.example").await;
    let headers = resp.0.headers().clone();
    assert!(resp.0.status().is_success(), "{:?}", resp.0.status());
    assert_eq!(
        headers["access-control-allow-origin"], "https://app.example",
        "{headers:?}"
    );
    assert!(headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let other = preflight("https://evil.example").await;
    assert!(
        other
            .0
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        other.0.headers()
    );
    // A real request from the page: the key still counts, the headers are there.
    let resp = cli
        .get("/v1/models")
        .header("Origin", "https://app.example")
        .header("Authorization", "Bearer key-one")
        .send()
        .await;
    assert_eq!(resp.0.status().as_u16(), 200);
    assert_eq!(
        resp.0.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(resp.0.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("x-request-id"));
    let resp = cli
        .get("/v1/models")
        .header("Origin", "https://app.example")
        .send()
        .await;
    assert_eq!(resp.0.status().as_u16(), 401);
}

#[tokio::test]
async fn cors_origins_star_allows_any_origin() {
    let resp = client(&[("CORS_ORIGINS", "*")])
        .options("/v1/models")
        .header("Origin", "https://anywhere.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await;
    assert!(resp.0.status().is_success(), "{:?}", resp.0.status());
    assert!(resp
        .0
        .headers()
        .get("access-control-allow-origin")
        .is_some());
}

#[tokio::test]
async fn without_cors_origins_there_is_no_cors() {
    let resp = client(&[])
        .options("/v1/chat/completions")
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await;
    assert!(resp
        .0
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert_eq!(resp.0.status().as_u16(), 405);
}

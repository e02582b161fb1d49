//! Bearer keys: the one place a request's key is checked, declared as an OpenAPI security
//! scheme so `/docs` offers an "Authorize" button.
//!
//! A hand-written extractor rather than poem-openapi's `SecurityScheme` derive, because the
//! derive rejects a request without the header before any check runs; here an empty `API_KEYS`
//! must let such requests through.

use std::sync::Arc;

use poem::{http::header::AUTHORIZATION, Request, RequestBody};
use poem_openapi::{
    registry::{MetaSecurityScheme, Registry},
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::error::ApiError;
use crate::{config::ApiKey, error::ProxyError};

const SCHEME: &str = "BearerKey";

/// The configured keys, attached to every request as route data.
#[derive(Debug, Clone)]
pub struct ApiKeys(pub Arc<Vec<ApiKey>>);

impl ApiKeys {
    /// Compares in constant time against every key, so timing reveals neither which key
    /// matched nor how much of one did.
    pub fn check(&self, authorization: Option<&str>) -> Result<Authorized, ProxyError> {
        if self.0.is_empty() {
            return Ok(Authorized {
                key: None,
                account: None,
            });
        }
        // The scheme is case-insensitive (RFC 9110 11.1): `BEARER` and `bearer` are `Bearer`.
        let presented = authorization
            .and_then(|value| value.trim_start().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .unwrap_or("");
        // Every key is compared; the match is picked without branching on which one it was.
        let (mut matched, mut index, mut account) = (subtle::Choice::from(0), 0u64, u64::MAX);
        for (i, key) in self.0.iter().enumerate() {
            let this = key.key.as_bytes().ct_eq(presented.as_bytes());
            let bound = key.account.map_or(u64::MAX, |i| i as u64);
            account.conditional_assign(&bound, this);
            index.conditional_assign(&(i as u64), this);
            matched |= this;
        }
        if presented.is_empty() || !bool::from(matched) {
            return Err(ProxyError::InvalidApiKey);
        }
        Ok(Authorized {
            key: Some(index as usize),
            account: (account != u64::MAX).then_some(account as usize),
        })
    }
}

impl ApiKeys {
    /// Checks the request's `Authorization` header.
    pub fn check_request(&self, request: &Request) -> Result<Authorized, ProxyError> {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        self.check(header)
    }
}

/// Proof that the request presented one of `API_KEYS` (or that none are configured): which
/// key, and the account it is bound to (`key@account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorized {
    /// Its index in `API_KEYS`; `None` when the server has no keys.
    pub key: Option<usize>,
    pub account: Option<usize>,
}

impl<'a> ApiExtractor<'a> for Authorized {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some(
                    "One of the server's API_KEYS. Not needed when API_KEYS is empty.",
                ),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![SCHEME]
    }

    async fn from_request(
        request: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let keys = request
            .data::<ApiKeys>()
            .expect("routes attach ApiKeys to every request");
        Ok(keys.check_request(request).map_err(ApiError)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> ApiKeys {
        ApiKeys(Arc::new(
            list.iter()
                .map(|k| ApiKey {
                    key: k.to_string(),
                    account: None,
                })
                .collect(),
        ))
    }

    #[test]
    fn empty_key_list_lets_everything_through() {
        let open = Authorized {
            key: None,
            account: None,
        };
        assert_eq!(keys(&[]).check(None), Ok(open));
    }

    #[test]
    fn a_bound_key_names_its_account() {
        let mut keys = keys(&["pool", "bob"]);
        Arc::make_mut(&mut keys.0)[1].account = Some(1);
        let bob = keys.check(Some("Bearer bob")).unwrap();
        assert_eq!((bob.key, bob.account), (Some(1), Some(1)));
        let pool = keys.check(Some("Bearer pool")).unwrap();
        assert_eq!((pool.key, pool.account), (Some(0), None));
        assert_eq!(
            keys.check(Some("Bearer bo")),
            Err(ProxyError::InvalidApiKey)
        );
    }

    #[test]
    fn only_an_exact_bearer_key_passes() {
        let keys = keys(&["alpha", "beta"]);
        assert!(keys.check(Some("Bearer alpha")).is_ok());
        assert!(keys.check(Some("bearer beta")).is_ok());
        assert!(keys.check(Some("BEARER alpha")).is_ok());
        assert!(keys.check(Some("bEaReR  beta ")).is_ok());
        for bad in [
            None,
            Some("alpha"),
            Some("Bearer alph"),
            Some("Bearer alphaa"),
            Some("Bearer "),
            Some("Basic alpha"),
            Some("Bearer"),
            Some("Bearerx alpha"),
        ] {
            assert_eq!(keys.check(bad), Err(ProxyError::InvalidApiKey), "{bad:?}");
        }
    }
}

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

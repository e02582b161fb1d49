//! The OpenAPI spec is snapshotted, so every API change shows up in review.

use crate::support::{client, json_of, snapshot};

#[tokio::test]
async fn openapi_spec() {
    let (status, spec) = json_of(client(&[]).get("/openapi.json").send().await).await;
    assert_eq!(status, 200);
    snapshot!("openapi_spec", spec);
}

#[tokio::test]
async fn docs_pages_are_served() {
    let cli = client(&[]);
    for (path, needle) in [("/docs", "swagger"), ("/redoc", "redoc")] {
        let resp = cli.get(path).send().await;
        assert_eq!(resp.0.status().as_u16(), 200, "{path}");
        let html = resp
            .0
            .into_body()
            .into_string()
            .await
            .unwrap()
            .to_lowercase();
        assert!(html.contains(needle), "{path} does not look like {needle}");
    }
}

#[tokio::test]
async fn the_docs_example_request_works_as_it_stands() {
    let cli = client(&[]);
    let (_, spec) = json_of(cli.get("/openapi.json").send().await).await;
    let example = spec["components"]["schemas"]["ChatCompletionRequest"]["example"].clone();
    assert_eq!(example["model"], "codex-local", "{example}");
    let (status, reply) = crate::support::post_chat(&cli, &example).await;
    assert_eq!(status, 200, "what Swagger UI's Try it out sends: {reply}");
}

//! Images as OpenAI `image_url` data URLs: decoded, written to a temporary directory, attached
//! with `-i`, referred to as `[image N]` in the prompt, and removed when the reply ends.

use serde_json::{json, Value};

use crate::support::{client, client_on, json_of, snapshot, BACKENDS};

const PNG_1X1: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const GIF_1X1: &str =
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

fn with_images(marker: &str, urls: &[&str]) -> Value {
    let mut parts = vec![json!({"type": "text", "text": format!("What is in these? {marker}")})];
    parts.extend(
        urls.iter()
            .map(|url| json!({"type": "image_url", "image_url": {"url": url, "detail": "auto"}})),
    );
    json!({"model": "codex-local", "messages": [{"role": "user", "content": parts}]})
}

#[tokio::test]
async fn images_reach_codex_as_files_in_order_and_are_removed_after() {
    for backend in BACKENDS {
        let (status, body) = json_of(
            client_on(backend, &[])
                .post("/v1/chat/completions")
                .body_json(&with_images("[[images]]", &[PNG_1X1, GIF_1X1]))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
        let listed: Vec<(&str, &str)> = answer
            .strip_prefix("IMAGES: ")
            .unwrap()
            .split("; ")
            .map(|entry| entry.rsplit_once(' ').unwrap())
            .collect();
        assert_eq!(listed.len(), 2, "{answer}");
        assert!(
            listed[0].0.ends_with("/image-1.png") && listed[0].1 == "70",
            "{answer}"
        );
        assert!(
            listed[1].0.ends_with("/image-2.gif") && listed[1].1 == "42",
            "{answer}"
        );
        for (path, _) in listed {
            assert!(
                !std::path::Path::new(path).exists(),
                "{path} was left behind"
            );
        }
    }
}

#[tokio::test]
async fn the_prompt_marks_where_each_image_stood() {
    let (_, body) = json_of(
        client(&[])
            .post("/v1/chat/completions")
            .body_json(&with_images("[[echo_json]]", &[PNG_1X1]))
            .send()
            .await,
    )
    .await;
    let prompt: String =
        serde_json::from_str(body["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(prompt, "What is in these? [[echo_json]]\n[image 1]");
}

#[tokio::test]
async fn a_bad_image_is_a_400_naming_the_part() {
    for (name, url) in [
        ("http_url", "https://example.com/cat.png"),
        ("not_the_declared_type", "data:image/png;base64,R0lGODlh"),
        ("unsupported_type", "data:image/bmp;base64,Qk0="),
    ] {
        let (status, body) = json_of(
            client(&[])
                .post("/v1/chat/completions")
                .body_json(&with_images("", &[url]))
                .send()
                .await,
        )
        .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(
            body["error"]["param"], "messages[0].content[1].image_url.url",
            "{url}"
        );
        snapshot!(format!("image_refused_{name}"), body);
    }
}

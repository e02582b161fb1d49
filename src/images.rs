//! Images sent as OpenAI `image_url` parts: decoded, checked, and handed to codex as files.

use base64::Engine;

use crate::error::ProxyError;

/// Largest image accepted, decoded.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// A decoded image and the file extension codex recognises it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
}

impl Image {
    /// The media type of a `data:` URL for this image.
    pub fn media_type(&self) -> &'static str {
        TYPES
            .iter()
            .find(|(_, extension, _)| *extension == self.extension)
            .map_or("application/octet-stream", |(media_type, _, _)| media_type)
    }
}

/// The image types codex accepts, their data-URL media type, extension and leading bytes.
const TYPES: &[(&str, &str, &[u8])] = &[
    ("image/png", "png", b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", "jpg", b"\xff\xd8\xff"),
    ("image/gif", "gif", b"GIF8"),
    ("image/webp", "webp", b"RIFF"),
];

/// Decodes a `data:image/...;base64,...` URL; `param` names the part in errors.
pub fn decode(url: &str, param: &str) -> Result<Image, ProxyError> {
    let invalid = |message: String| ProxyError::InvalidRequest {
        message,
        param: Some(param.to_owned()),
    };
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(invalid(format!(
            "{param}: this server does not fetch image URLs. Send the image inline as a data URL (data:image/png;base64,...)."
        )));
    }
    let Some((meta, data)) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
    else {
        return Err(invalid(format!(
            "{param}: an image must be a data URL such as data:image/png;base64,...."
        )));
    };
    let Some(media_type) = meta.strip_suffix(";base64") else {
        return Err(invalid(format!(
            "{param}: the image data URL must be base64-encoded (data:image/png;base64,...)."
        )));
    };
    let Some((_, extension, magic)) = TYPES
        .iter()
        .find(|(t, _, _)| t.eq_ignore_ascii_case(media_type))
    else {
        return Err(invalid(format!(
            "{param}: images of type {media_type:?} are not supported; send PNG, JPEG, GIF or WebP."
        )));
    };
    let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() / 4 * 3 > MAX_IMAGE_BYTES + 3 {
        return Err(invalid(format!(
            "{param}: the image is larger than {} MiB.",
            MAX_IMAGE_BYTES / (1024 * 1024)
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|err| {
            invalid(format!(
                "{param}: the image data is not valid base64 ({err})."
            ))
        })?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(invalid(format!(
            "{param}: the image is larger than {} MiB.",
            MAX_IMAGE_BYTES / (1024 * 1024)
        )));
    }
    if !bytes.starts_with(magic)
        || (*extension == "webp" && bytes.get(8..12) != Some(b"WEBP".as_slice()))
    {
        return Err(invalid(format!(
            "{param}: the data is not a valid {media_type} image."
        )));
    }
    Ok(Image { bytes, extension })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const PNG_1X1: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    #[test]
    fn a_png_data_url_decodes() {
        let image = decode(PNG_1X1, "p").unwrap();
        assert_eq!(image.extension, "png");
        assert!(image.bytes.starts_with(b"\x89PNG"));
    }

    #[test]
    fn a_webp_is_known_by_its_tag() {
        // "RIFF", a length, "WEBP", "VP8 ".
        let image = decode("data:image/webp;base64,UklGRiQAAABXRUJQVlA4IA==", "p").unwrap();
        assert_eq!(image.extension, "webp");
    }

    #[test]
    fn what_is_refused_says_why() {
        for (url, needle) in [
            ("https://example.com/cat.png", "does not fetch"),
            ("data:image/png;base64,AAAA", "not a valid image/png"),
            ("data:image/tiff;base64,AAAA", "not supported"),
            ("data:image/png,rawbytes", "base64-encoded"),
            ("data:image/png;base64,***", "not valid base64"),
            ("cat.png", "must be a data URL"),
            // A RIFF file that is not WebP (a WAVE header).
            (
                "data:image/webp;base64,UklGRiQAAABXQVZFZm10IA==",
                "not a valid image/webp",
            ),
        ] {
            let err = decode(url, "messages[0].content[1]").unwrap_err();
            assert!(err.message().contains(needle), "{url}: {err}");
            assert_eq!(err.param(), Some("messages[0].content[1]"));
        }
    }
}

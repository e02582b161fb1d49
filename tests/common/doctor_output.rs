//! Reading `codex-openai-proxy doctor`'s output: one `[tag] check ...` line per check. Shared by
//! the integration tests (on fake-codex) and the real-codex suite.

/// The `(tag, check)` pairs the doctor printed, in order.
pub fn checks(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let (tag, rest) = line.strip_prefix('[')?.split_once(']')?;
            Some((
                tag.trim().to_owned(),
                rest.split_whitespace().next()?.to_owned(),
            ))
        })
        .collect()
}

/// The same as `"tag check"` strings, to compare with a list.
pub fn tags(output: &str) -> Vec<String> {
    checks(output)
        .into_iter()
        .map(|(tag, name)| format!("{tag} {name}"))
        .collect()
}

//! Ids in OpenAI's style: a prefix and 24 random alphanumerics.

use rand::{distr::Alphanumeric, Rng};

pub fn random_id(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{suffix}")
}

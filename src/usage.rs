//! Token accounting: codex's own counts when it reports them, an o200k count otherwise.

use crate::codex::CodexUsage;

/// Token usage of one completion, in OpenAI's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub reasoning_tokens: u64,
    /// True when codex reported nothing and the numbers were counted by the proxy.
    pub estimated: bool,
}

impl TokenUsage {
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// codex's `input_tokens` already include the cached ones, as OpenAI's `prompt_tokens` do;
    /// its `output_tokens` include reasoning, as OpenAI's `completion_tokens` do.
    pub fn from_codex(usage: &CodexUsage) -> Self {
        TokenUsage {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            cached_tokens: usage.cached_input_tokens,
            reasoning_tokens: usage.reasoning_output_tokens,
            estimated: false,
        }
    }

    /// Counts the prompt and the answer with the o200k tokenizer of codex's models. codex's own
    /// system prompt and tool definitions are not visible here, so this is a lower bound.
    pub fn estimate(prompt: &str, answer: &str, reasoning: &str) -> Self {
        let reasoning_tokens = count_tokens(reasoning);
        TokenUsage {
            prompt_tokens: count_tokens(prompt),
            completion_tokens: count_tokens(answer) + reasoning_tokens,
            cached_tokens: 0,
            reasoning_tokens,
            estimated: true,
        }
    }
}

/// o200k_base token count; the tokenizer is loaded once per process.
pub fn count_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

/// How far [`count_tokens_up_to`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The whole text is this many tokens.
    Exactly(u64),
    /// Counting stopped after this many, past the limit.
    MoreThan(u64),
}

/// The size of the pieces [`count_tokens_up_to`] counts at a time.
const PIECE_BYTES: usize = 64 * 1024;

/// Counts o200k tokens, but stops as soon as the count passes `limit`, so a huge text costs
/// no more than one just over the limit. The text is counted in pieces of about 64 KiB cut
/// before a space, where o200k's own pre-tokenizer cuts too, so the sum stays within a few
/// tokens of the whole text's count.
pub fn count_tokens_up_to(text: &str, limit: u64) -> Counted {
    let mut total = 0u64;
    let mut rest = text;
    while !rest.is_empty() {
        let (piece, after) = rest.split_at(piece_end(rest));
        total += count_tokens(piece);
        if total > limit {
            return Counted::MoreThan(total);
        }
        rest = after;
    }
    Counted::Exactly(total)
}

/// Where the next piece ends: before the last space within [`PIECE_BYTES`], or at a character
/// boundary when there is none.
fn piece_end(text: &str) -> usize {
    if text.len() <= PIECE_BYTES {
        return text.len();
    }
    let mut end = PIECE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match text[..end].rfind(' ') {
        Some(space) if space > 0 => space,
        _ => end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_usage_maps_field_for_field() {
        let usage = TokenUsage::from_codex(&CodexUsage {
            input_tokens: 120,
            cached_input_tokens: 40,
            cache_write_input_tokens: 0,
            output_tokens: 19,
            reasoning_output_tokens: 7,
        });
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.total_tokens()
            ),
            (120, 19, 139)
        );
        assert_eq!(
            (usage.cached_tokens, usage.reasoning_tokens, usage.estimated),
            (40, 7, false)
        );
    }

    #[test]
    fn estimates_count_real_o200k_tokens() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("hello"), 1);
        let text = "Hello from the mock model, with a few more words. ".repeat(5_000);
        let whole = count_tokens(&text);
        assert_eq!(count_tokens_up_to(&text, u64::MAX), Counted::Exactly(whole));
        let Counted::MoreThan(partial) = count_tokens_up_to(&text, 100) else {
            panic!("a 250 KB text is more than 100 tokens");
        };
        assert!(partial > 100 && partial < whole / 2, "{partial} of {whole}");
        // No space to cut at: cut at a character boundary, off by a token or two at most.
        let unbroken = "é".repeat(100_000);
        let Counted::Exactly(pieces) = count_tokens_up_to(&unbroken, u64::MAX) else {
            panic!("no limit was passed");
        };
        assert!(pieces.abs_diff(count_tokens(&unbroken)) <= 4);
        assert_eq!(count_tokens("Hello from the mock model."), 6);
        let usage = TokenUsage::estimate("say hi", "Hello from the mock model.", "Thinking.");
        assert_eq!(usage.prompt_tokens, count_tokens("say hi"));
        assert_eq!(usage.completion_tokens, 6 + usage.reasoning_tokens);
        assert!(usage.reasoning_tokens > 0 && usage.estimated);
    }
}

//! Counting the o200k_base tokens of one text, in linear time and under a deadline.
//!
//! The tokenizer (vocabulary index plus splitter, ~4 MB) is built on first use and
//! shared. Counting never fails: text that is not tokenized before the deadline is
//! estimated from its size at [`BYTES_PER_TOKEN_FLOOR`] bytes per token, an upper
//! bound for ordinary text, and the result says so.

use std::sync::OnceLock;
use std::time::Instant;

use super::bpe::{self, Scratch};
use super::pretokenize::Pretokenizer;
use super::vocab::Vocab;

/// Bytes per token assumed for text that was not tokenized: o200k averages ~4 on
/// English and code, ~2.5 on dense punctuation, so this over-counts rather than under.
pub const BYTES_PER_TOKEN_FLOOR: f64 = 2.5;
/// How many pieces go by between two looks at the clock.
const CLOCK_EVERY: usize = 256;

/// The vocabulary and the splitter, loaded together.
pub struct Tokenizer {
    pub vocab: Vocab,
    pub pretokenizer: Pretokenizer,
}

/// The shared o200k_base tokenizer, built on first use.
pub fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| Tokenizer {
        vocab: Vocab::o200k_base(),
        pretokenizer: Pretokenizer::o200k_base(),
    })
}

/// The tokens of one text and how they were arrived at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextCount {
    pub tokens: u64,
    /// Every piece was merged whole, so this is what tiktoken gives.
    pub exact: bool,
    /// The deadline passed: part of the text was estimated from its size, so the same
    /// text may count differently next time (do not cache it).
    pub cut_short: bool,
}

/// Upper-bound token estimate of `bytes` bytes that were not tokenized.
pub fn estimate_bytes(bytes: usize) -> u64 {
    (bytes as f64 / BYTES_PER_TOKEN_FLOOR).ceil() as u64
}

impl Tokenizer {
    /// Count `text`; past `deadline` the rest is estimated from its size.
    pub fn count(&self, text: &str, deadline: Option<Instant>, scratch: &mut Scratch) -> TextCount {
        let mut out = TextCount {
            tokens: 0,
            exact: true,
            cut_short: false,
        };
        let late = || deadline.is_some_and(|d| Instant::now() >= d);
        let mut offset = 0usize;
        for (n, piece) in self.pretokenizer.pieces(text).enumerate() {
            if n % CLOCK_EVERY == CLOCK_EVERY - 1 && late() {
                break;
            }
            let (count, done) =
                bpe::count_piece(&self.vocab, piece.as_bytes(), scratch, |_| !late());
            out.tokens += count.tokens;
            out.exact &= count.exact;
            offset += done;
            if done < piece.len() {
                break;
            }
        }
        if offset < text.len() {
            out.tokens += estimate_bytes(text.len() - offset);
            out.exact = false;
            out.cut_short = true;
        }
        out
    }
}

/// The o200k_base tokens of `text`, with no cache and no deadline.
pub fn count_text(text: &str) -> u64 {
    tokenizer()
        .count(text, None, &mut Scratch::default())
        .tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_o200k_tokens() {
        assert_eq!(count_text("hello world"), 2);
        assert_eq!(count_text(""), 0);
        let c = tokenizer().count("hello world", None, &mut Scratch::default());
        assert_eq!(
            c,
            TextCount {
                tokens: 2,
                exact: true,
                cut_short: false
            }
        );
    }

    #[test]
    fn a_passed_deadline_estimates_the_rest_from_its_size() {
        let text = "word ".repeat(10_000);
        let past = Some(Instant::now());
        let c = tokenizer().count(&text, past, &mut Scratch::default());
        assert!(c.cut_short && !c.exact);
        // The first CLOCK_EVERY - 1 pieces ("word", " word"…) were counted, the rest
        // is bytes / 2.5.
        let counted = CLOCK_EVERY as u64 - 1;
        let rest = text.len() - (4 + (CLOCK_EVERY - 2) * 5);
        assert_eq!(c.tokens, counted + estimate_bytes(rest));
        assert!(c.tokens >= count_text(&text));
    }

    #[test]
    fn a_deadline_stops_inside_one_long_piece() {
        let text = "a".repeat(1 << 20);
        let c = tokenizer().count(&text, Some(Instant::now()), &mut Scratch::default());
        assert!(c.cut_short);
        assert!(c.tokens >= estimate_bytes(text.len() - bpe::WINDOW));
    }
}

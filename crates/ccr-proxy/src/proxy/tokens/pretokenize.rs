//! o200k_base's pre-tokenization: the regex that cuts text into the pieces BPE merges.
//!
//! tiktoken uses `fancy_regex` for the look-ahead `\s+(?!\S)`; that backtracks and, on a
//! megabyte of one letter, fails with a backtrack-limit error (tiktoken-rs then panics).
//! Here the pattern runs on `regex-automata`'s linear-time engines, with the look-ahead
//! rewritten as its own pattern `\s+\s` whose last character is given back, and `\s+$`
//! for the end of the text: the same pieces (the rewrite is GitHub's, from the
//! `bpe-openai` crate; `tests/it/tokens_exactness.rs` checks it against tiktoken).

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};

/// The o200k_base alternatives, in tiktoken's order, minus the look-ahead.
const O200K: &[&str] = &[
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"\p{N}{1,3}",
    r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"\s*[\r\n]+",
    r"\s+$",
];

/// The compiled splitter; one per process, shared by every thread.
pub struct Pretokenizer {
    regex: Regex,
}

impl Pretokenizer {
    /// Compile the o200k_base splitter.
    pub fn o200k_base() -> Pretokenizer {
        let main = O200K.join("|");
        // Pattern 1 is the look-ahead stand-in: its match ends one character late.
        let regex = Regex::builder()
            .configure(Regex::config().hybrid_cache_capacity(1 << 20))
            .build_many(&[main.as_str(), r"\s+\s", r"\s+"])
            .expect("the o200k_base pattern compiles");
        Pretokenizer { regex }
    }

    /// The pieces of `text`, in order; together they are exactly `text`.
    pub fn pieces<'a>(&'a self, text: &'a str) -> Pieces<'a> {
        Pieces {
            regex: &self.regex,
            text,
            at: 0,
        }
    }
}

/// Iterator over the pieces of one text.
pub struct Pieces<'a> {
    regex: &'a Regex,
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = &self.text[self.at..];
        if rest.is_empty() {
            return None;
        }
        let input = Input::new(rest).anchored(Anchored::Yes);
        let len = match self.regex.find(input) {
            Some(m) if m.pattern().as_usize() == 1 => {
                let matched = &rest[..m.end()];
                let last = matched.chars().next_back().map_or(0, char::len_utf8);
                m.end() - last
            }
            Some(m) => m.end(),
            // Every character matches some alternative; should one not, it becomes
            // its own piece rather than stopping the count.
            None => rest.chars().next().map_or(rest.len(), char::len_utf8),
        };
        let len = len.max(1.min(rest.len()));
        let piece = &rest[..len];
        self.at += len;
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        static P: std::sync::OnceLock<Pretokenizer> = std::sync::OnceLock::new();
        P.get_or_init(Pretokenizer::o200k_base)
            .pieces(text)
            .collect()
    }

    #[test]
    fn splits_like_o200k() {
        assert_eq!(split("hello world"), ["hello", " world"]);
        assert_eq!(
            split("I'm HTTPServer's 12345"),
            ["I'm", " HTTPServer's", " ", "123", "45"]
        );
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a   \n\n  b  "), ["a", "   \n\n", " ", " b", "  "]);
        assert_eq!(split("x --- //"), ["x", " ---", " //"]);
        assert_eq!(split(""), Vec::<&str>::new());
    }

    #[test]
    fn pieces_cover_the_text() {
        let text = "fn main() {\n    println!(\"héllo — 世界\");\t\r\n}\u{0301}\u{200b}  ";
        assert_eq!(split(text).concat(), text);
    }
}

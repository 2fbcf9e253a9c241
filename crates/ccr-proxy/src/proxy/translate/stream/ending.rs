//! What an OpenAI stream that stopped without a finish and `[DONE]` was. On the wire
//! every such ending looks alike; two of Ollama's are told apart by what came last:
//!
//! * **repetition**: Ollama's runner stops a generation after the same token (spaces
//!   trimmed) 30 times in a row, without a Done (llm/llama_server.go ~1692–1703). The
//!   stream's last pieces are that token repeated, then nothing.
//! * **tool-call parse failure**: gpt-oss's call could not be parsed at the end: reasoning,
//!   then one *empty* content chunk, then nothing (server/routes.go). No repeated run.
//!
//! Anything else (a crash, a dropped connection) stays "truncated".

use crate::proxy::error::ProxyError;

/// Pieces alike in a row after which Ollama's runner stops (it counts 30 repeats
/// after the first; a run of 30 is enough to tell, and never ordinary prose).
pub const REPETITION_RUN: u32 = 30;

/// The ledger's kind for a repetition ending.
pub const REPETITION: &str = "repetition";

/// The run of identical pieces (text or reasoning, spaces trimmed) at the stream's end.
#[derive(Debug, Default)]
pub(super) struct Repeats {
    last: String,
    run: u32,
}

impl Repeats {
    /// One generated piece, as its server streamed it (about one token).
    pub(super) fn see(&mut self, piece: &str) {
        let piece = piece.trim();
        if self.run > 0 && piece == self.last {
            self.run += 1;
        } else {
            self.last.clear();
            self.last.push_str(piece);
            self.run = 1;
        }
    }

    /// The kind and the client's error for a stream that ended unfinished.
    pub(super) fn unfinished(&self) -> (&'static str, ProxyError) {
        if self.run >= REPETITION_RUN {
            let token = match self.last.as_str() {
                "" => "a blank".to_owned(),
                t => format!("{:?}", t.chars().take(20).collect::<String>()),
            };
            return (
                REPETITION,
                ProxyError::bad_gateway(format!(
                    "the local model got stuck repeating itself ({token} {} times in a row) and its server stopped it; the answer is incomplete. Ask again or rephrase; a bigger model, or a cloud fallback, does not loop like this",
                    self.run
                )),
            );
        }
        (
            "stream_truncated",
            ProxyError::bad_gateway(
                "the upstream closed the stream before it finished (no [DONE]); the answer is incomplete",
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_thirty_alike_is_repetition_and_anything_less_is_truncation() {
        let mut r = Repeats::default();
        for piece in ["The", " answer", " is"] {
            r.see(piece);
        }
        for _ in 0..29 {
            r.see(" the");
        }
        assert_eq!(r.unfinished().0, "stream_truncated");
        r.see("the ");
        let (kind, error) = r.unfinished();
        assert_eq!(kind, REPETITION);
        assert!(
            error.message.contains("\"the\" 30 times"),
            "{}",
            error.message
        );
        // Something else breaks the run.
        r.see(" end");
        assert_eq!(r.unfinished().0, "stream_truncated");
    }
}

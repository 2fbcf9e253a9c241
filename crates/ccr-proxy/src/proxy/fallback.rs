//! Which failures move a request to the next model, and the loop that does it.
//!
//! The chain for a request is its routed target followed by `fallback.<scenario>`
//! (or `fallback.default`), see [`chain`]. [`run_chain`] tries them in order and moves
//! on only when an attempt failed in a way another provider can fix
//! ([`AttemptFailure::retryable`]):
//!
//! * the connection was refused, could not be made, or timed out;
//! * the upstream answered 5xx, 408 or 429;
//! * Ollama's tool-call parse failure (`error parsing tool call`, HTTP 500 today, but
//!   matched on the body whatever the status);
//! * the upstream stream broke before the first byte reached the client.
//!
//! Once bytes have reached the client the answer is committed: a failure then is
//! [`AttemptFailure::AfterFirstByte`], never retried, and the server reports it as an
//! SSE `event: error`.

use std::future::Future;

use super::repair::TOOL_CALL_INVALID;
use crate::config::{Config, ModelRef};

/// Ollama's body when gpt-oss emits a tool call it cannot parse.
pub const OLLAMA_TOOL_CALL_PARSE: &str = "error parsing tool call";

/// How one attempt at one target failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptFailure {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// The upstream answered with an error status; `body` is its (truncated) text.
    #[error("HTTP {status}: {}", crate::sanitize::untrusted(.body, 300))]
    Status { status: u16, body: String },
    /// The stream broke or ended before anything was sent to the client.
    #[error("upstream failed before the first byte: {0}")]
    BeforeFirstByte(String),
    /// The stream broke after the client got bytes: the answer cannot be switched.
    #[error("upstream failed mid-answer: {0}")]
    AfterFirstByte(String),
    /// The model's tool call could not be made to fit the offered tools, even after
    /// a corrective retry ([`crate::proxy::repair`]).
    #[error("unusable tool call: {0}")]
    UnfitToolCall(String),
}

impl AttemptFailure {
    /// Would another provider plausibly succeed where this one failed?
    pub fn retryable(&self) -> bool {
        match self {
            AttemptFailure::Connect(_)
            | AttemptFailure::Timeout(_)
            | AttemptFailure::BeforeFirstByte(_)
            | AttemptFailure::UnfitToolCall(_) => true,
            AttemptFailure::Status { status, body } => {
                *status >= 500
                    || *status == 408
                    || *status == 429
                    || body.contains(OLLAMA_TOOL_CALL_PARSE)
            }
            AttemptFailure::AfterFirstByte(_) => false,
        }
    }

    /// The short error kind the ledger records (`RequestOutcome::UpstreamError`).
    pub fn ledger_kind(&self) -> String {
        match self {
            AttemptFailure::Connect(_) => "connect".into(),
            AttemptFailure::Timeout(_) => "timeout".into(),
            AttemptFailure::Status { body, .. } if body.contains(OLLAMA_TOOL_CALL_PARSE) => {
                "tool_call_parse".into()
            }
            AttemptFailure::Status { status, .. } => format!("http_{status}"),
            AttemptFailure::BeforeFirstByte(_) => "stream_failed_before_first_byte".into(),
            AttemptFailure::AfterFirstByte(_) => "stream_truncated".into(),
            AttemptFailure::UnfitToolCall(_) => TOOL_CALL_INVALID.into(),
        }
    }
}

impl AsRef<AttemptFailure> for AttemptFailure {
    fn as_ref(&self) -> &AttemptFailure {
        self
    }
}

/// The targets to try, in order: `first`, then the fallback chain of `scenario` (its
/// config name; `fallback.default` when it has none), without repeats and without
/// targets `usable` rejects (for example ones whose context window the prompt does
/// not fit).
pub fn chain(
    config: &Config,
    scenario: &str,
    first: &ModelRef,
    usable: impl Fn(&ModelRef) -> bool,
) -> Vec<ModelRef> {
    let mut targets = vec![first.clone()];
    for next in config.fallback_for(scenario) {
        if !targets.contains(next) && usable(next) {
            targets.push(next.clone());
        }
    }
    targets
}

/// What [`run_chain`] ended with.
#[derive(Debug)]
pub struct ChainOutcome<T, E> {
    /// The answer, or the last failure.
    pub result: Result<T, E>,
    /// The target that answered (or failed last).
    pub target: ModelRef,
    /// Every failed attempt before the last one, in order.
    pub failures: Vec<(ModelRef, E)>,
}

impl<T, E> ChainOutcome<T, E> {
    /// The first target that failed, when a later one was tried.
    pub fn fallback_from(&self) -> Option<&ModelRef> {
        self.failures.first().map(|(t, _)| t)
    }
}

/// One try at one target, as [`run_chain`] drives it. The server's implementation
/// holds the request, which each attempt rewrites for its target.
pub trait Attempter {
    /// What a successful attempt produces (the server: the response).
    type Answer;
    /// A failed attempt; [`run_chain`] reads its [`AttemptFailure`].
    type Error: AsRef<AttemptFailure>;

    /// Try `target`. `fallback_from` is the first target that failed, from the second
    /// try on (the answer's `x-ccr-route` and ledger row name it).
    fn attempt(
        &mut self,
        target: &ModelRef,
        fallback_from: Option<&ModelRef>,
    ) -> impl Future<Output = Result<Self::Answer, Self::Error>> + Send;

    /// `failure` moves the request on to the next target (the server records its
    /// kind as the fallback's reason).
    fn failed(&mut self, _failure: &AttemptFailure) {}
}

/// Try `targets` in order until one answers or fails in a way that is not
/// [`retryable`](AttemptFailure::retryable). This is the loop the server runs for
/// every `POST /v1/messages`. `on_failure` hears about every failure that moves the
/// request on (for the log), with the next target.
pub async fn run_chain<A: Attempter>(
    targets: &[ModelRef],
    attempter: &mut A,
    mut on_failure: impl FnMut(&ModelRef, &AttemptFailure, &ModelRef),
) -> ChainOutcome<A::Answer, A::Error> {
    assert!(
        !targets.is_empty(),
        "a chain always holds the routed target"
    );
    let mut failures: Vec<(ModelRef, A::Error)> = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let from = failures.first().map(|(t, _)| t.clone());
        match attempter.attempt(target, from.as_ref()).await {
            Ok(answer) => {
                return ChainOutcome {
                    result: Ok(answer),
                    target: target.clone(),
                    failures,
                }
            }
            Err(error) => match targets.get(i + 1) {
                Some(next) if error.as_ref().retryable() => {
                    on_failure(target, error.as_ref(), next);
                    attempter.failed(error.as_ref());
                    failures.push((target.clone(), error));
                }
                _ => {
                    return ChainOutcome {
                        result: Err(error),
                        target: target.clone(),
                        failures,
                    }
                }
            },
        }
    }
    unreachable!("the last target always returns")
}

#[cfg(test)]
mod tests {
    /// An upstream's error body reaches log lines escaped and cut (issue #28).
    #[test]
    fn an_upstream_error_is_shown_as_one_bounded_line() {
        let failure = AttemptFailure::Status {
            status: 500,
            body: format!("boom\n2026 INFO forged\x1b[2J{}", "x".repeat(5000)),
        };
        let shown = failure.to_string();
        assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown}");
        assert!(shown.len() < 400, "{} bytes", shown.len());
    }

    use super::*;
    use crate::config::ConfigFile;
    use serde_json::json;

    fn mr(s: &str) -> ModelRef {
        ModelRef::parse(s).unwrap()
    }

    fn status(status: u16, body: &str) -> AttemptFailure {
        AttemptFailure::Status {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn classifies_what_is_worth_another_provider() {
        assert!(AttemptFailure::Connect("connection refused".into()).retryable());
        assert!(AttemptFailure::Timeout("connect".into()).retryable());
        assert!(AttemptFailure::BeforeFirstByte("eof".into()).retryable());
        assert!(status(500, "boom").retryable());
        assert!(status(503, "").retryable());
        assert!(status(429, "slow down").retryable());
        assert!(status(500, r#"{"error":"error parsing tool call: raw='{\"x\"'"}"#).retryable());
        assert!(status(400, "error parsing tool call: raw=''").retryable());
        assert!(!status(400, "messages: field required").retryable());
        assert!(!status(401, "bad key").retryable());
        assert!(!AttemptFailure::AfterFirstByte("reset".into()).retryable());
    }

    #[test]
    fn ledger_kinds() {
        assert_eq!(
            status(500, "error parsing tool call: raw='x'").ledger_kind(),
            "tool_call_parse"
        );
        assert_eq!(status(502, "").ledger_kind(), "http_502");
        assert_eq!(
            AttemptFailure::Connect(String::new()).ledger_kind(),
            "connect"
        );
        assert_eq!(
            AttemptFailure::AfterFirstByte(String::new()).ledger_kind(),
            "stream_truncated"
        );
    }

    fn config() -> Config {
        let doc = json!({
            "Providers": [
                {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b"]},
                {"name": "lmstudio", "api_base_url": "http://127.0.0.1:1234/v1/chat/completions", "api_key": "", "models": ["qwen"]},
                {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "k", "models": ["claude-sonnet-4-5"]}
            ],
            "Router": {"default": "ollama,gpt-oss:20b", "think": "anthropic,claude-sonnet-4-5"},
            "fallback": {
                "default": ["ollama,gpt-oss:20b", "lmstudio,qwen", "anthropic,claude-sonnet-4-5"],
                "think": ["ollama,gpt-oss:20b"]
            }
        });
        ConfigFile::new(std::path::Path::new("/t/c.json"), doc)
            .resolve_with(&|_| None)
            .unwrap()
    }

    #[test]
    fn chain_is_target_then_scenario_fallbacks_without_repeats() {
        let c = config();
        assert_eq!(
            chain(&c, "default", &mr("ollama,gpt-oss:20b"), |_| true),
            vec![
                mr("ollama,gpt-oss:20b"),
                mr("lmstudio,qwen"),
                mr("anthropic,claude-sonnet-4-5")
            ]
        );
        assert_eq!(
            chain(&c, "think", &mr("anthropic,claude-sonnet-4-5"), |_| true),
            vec![mr("anthropic,claude-sonnet-4-5"), mr("ollama,gpt-oss:20b")]
        );
        // No chain of its own: the default chain.
        assert_eq!(
            chain(&c, "background", &mr("ollama,gpt-oss:20b"), |_| { true }).len(),
            3
        );
        // Unusable targets are skipped.
        assert_eq!(
            chain(&c, "default", &mr("ollama,gpt-oss:20b"), |t| t.provider
                != "lmstudio"),
            vec![mr("ollama,gpt-oss:20b"), mr("anthropic,claude-sonnet-4-5")]
        );
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Answers each target with `script`, recording (target, fallback_from) per try.
    struct Scripted<F> {
        tried: Vec<(String, Option<String>)>,
        script: F,
    }

    impl<F> Attempter for Scripted<F>
    where
        F: FnMut(&ModelRef) -> Result<&'static str, AttemptFailure> + Send,
    {
        type Answer = &'static str;
        type Error = AttemptFailure;

        async fn attempt(
            &mut self,
            target: &ModelRef,
            fallback_from: Option<&ModelRef>,
        ) -> Result<&'static str, AttemptFailure> {
            let from = fallback_from.map(|f| f.provider.clone());
            self.tried.push((target.provider.clone(), from));
            (self.script)(target)
        }
    }

    fn scripted<F>(script: F) -> Scripted<F> {
        Scripted {
            tried: Vec::new(),
            script,
        }
    }

    #[test]
    fn run_chain_moves_on_only_for_retryable_failures() {
        let targets = [mr("a,1"), mr("b,2"), mr("c,3")];
        let mut attempter = scripted(|t: &ModelRef| match t.provider.as_str() {
            "a" => Err(AttemptFailure::Connect("refused".into())),
            "b" => Err(status(500, "error parsing tool call: raw='{'")),
            _ => Ok("answer"),
        });
        let mut moved_on = Vec::new();
        let out = block_on(run_chain(&targets, &mut attempter, |failed, _, next| {
            moved_on.push((failed.provider.clone(), next.provider.clone()))
        }));
        assert_eq!(out.result, Ok("answer"));
        assert_eq!(out.target, mr("c,3"));
        assert_eq!(out.fallback_from(), Some(&mr("a,1")));
        assert_eq!(out.failures.len(), 2);
        let from_a = Some("a".to_owned());
        assert_eq!(
            attempter.tried,
            [
                ("a".to_owned(), None),
                ("b".to_owned(), from_a.clone()),
                ("c".to_owned(), from_a)
            ]
        );
        assert_eq!(
            moved_on,
            [
                ("a".to_owned(), "b".to_owned()),
                ("b".to_owned(), "c".to_owned())
            ]
        );

        // A 400 is the request's fault: no fallback.
        let mut attempter = scripted(|_: &ModelRef| Err(status(400, "bad")));
        let out = block_on(run_chain(&targets, &mut attempter, |_, _, _| {
            panic!("must not move on")
        }));
        assert_eq!(out.target, mr("a,1"));
        assert!(out.failures.is_empty());

        // After the first byte: no fallback either.
        let mut attempter =
            scripted(|_: &ModelRef| Err(AttemptFailure::AfterFirstByte("reset".into())));
        let out = block_on(run_chain(&targets, &mut attempter, |_, _, _| {
            panic!("must not move on")
        }));
        assert_eq!(
            out.result,
            Err(AttemptFailure::AfterFirstByte("reset".into()))
        );

        // The last failure is returned when everything fails.
        let mut attempter =
            scripted(|t: &ModelRef| Err(status(if t.provider == "c" { 503 } else { 500 }, "")));
        let out = block_on(run_chain(&targets, &mut attempter, |_, _, _| {}));
        assert_eq!(out.result, Err(status(503, "")));
        assert_eq!(out.target, mr("c,3"));
        assert_eq!(attempter.tried.len(), 3);
    }
}

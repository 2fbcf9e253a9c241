//! The context policy: is the context that took effect (from `/api/ps`) at least the
//! configured one, and if not, what exactly should the user change? The fix depends on
//! who runs the server (see [`Owner::context_fix`]).

use std::path::Path;

use super::owner::Owner;
use super::OllamaClient;
use crate::diagnostic::Diagnostic;

/// Before pulling gigabytes for a server we do not own: if a model it has loaded
/// already shows a context below `wanted` while that model could hold more, the
/// server's setting is too small and the pull would be wasted. Say so now.
pub async fn precheck_foreign(
    client: &OllamaClient,
    owner: &Owner,
    wanted: u32,
) -> Result<(), Diagnostic> {
    let Ok(loaded) = client.ps().await else {
        return Ok(());
    };
    for m in loaded {
        let Some(ctx) = m.context_length.filter(|c| *c < u64::from(wanted)) else {
            continue;
        };
        let trained = client
            .show(&m.name)
            .await
            .ok()
            .and_then(|d| d.trained_context);
        if let Some(trained) = trained.filter(|t| *t > ctx) {
            return Err(Diagnostic::new(format!(
                "{} runs {} with a {ctx}-token context (the model holds {trained}), below the configured {wanted}",
                owner.describe(),
                m.name,
            ))
            .with_hint(owner.context_fix(ctx, wanted)));
        }
    }
    Ok(())
}

/// What the loaded model's context means for `up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// At least the configured context.
    Enough,
    /// Smaller, and `--accept-context` says that is fine.
    Accepted,
    /// Smaller: the failure and its owner-specific fix.
    TooSmall(Diagnostic),
}

/// Judge `effective` against `wanted` for `model` on `owner`'s server.
pub fn judge(
    model: &str,
    effective: u64,
    wanted: u32,
    owner: &Owner,
    accept: bool,
    config_path: &Path,
) -> Verdict {
    if effective >= u64::from(wanted) {
        return Verdict::Enough;
    }
    if accept {
        return Verdict::Accepted;
    }
    let message = format!(
        "{model} runs with a {effective}-token context on {}, below the configured {wanted}",
        owner.describe()
    );
    let hint = match owner {
        Owner::Ours(_) | Owner::OurService { .. } => format!(
            "{model} is limited to {effective} tokens here (its trained context or memory); set Ollama.context_length to {effective} in {}, or run `ccr-setup up --accept-context`",
            config_path.display()
        ),
        other => other.context_fix(effective, wanted),
    };
    Verdict::TooSmall(Diagnostic::new(message).with_hint(hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_context_fails_unless_accepted_with_the_owner_fix() {
        let p = Path::new("/c.json");
        let app = Owner::OllamaApp { pid: None };
        assert_eq!(judge("m", 32768, 32768, &app, false, p), Verdict::Enough);
        assert_eq!(judge("m", 4096, 32768, &app, true, p), Verdict::Accepted);
        let Verdict::TooSmall(d) = judge("m", 4096, 32768, &app, false, p) else {
            panic!("a 4k context must fail");
        };
        assert!(
            d.message.contains("4096-token context on Ollama.app"),
            "{d:?}"
        );
        assert!(d.hint_or_empty().contains("Context length"), "{d:?}");
        let Verdict::TooSmall(ours) = judge(
            "m",
            4096,
            32768,
            &Owner::OurService { unit: "u".into() },
            false,
            p,
        ) else {
            panic!("a 4k context must fail");
        };
        assert!(ours.hint_or_empty().contains("/c.json"), "{ours:?}");
    }
}

//! Which Ollama version a model needs. Older servers answer `/api/pull` for a model
//! they cannot run with a confusing error, so `up` checks first and says which version
//! is needed.

use std::cmp::Ordering;

/// gpt-oss arrived in Ollama 0.11.0 (new `gptoss` architecture and the harmony format).
pub const MIN_VERSION_GPT_OSS: &str = "0.11.0";

/// The minimum server version for `model`, when we know one.
pub fn minimum_for_model(model: &str) -> Option<&'static str> {
    let name = model.rsplit('/').next().unwrap_or(model);
    name.starts_with("gpt-oss").then_some(MIN_VERSION_GPT_OSS)
}

/// Compare dotted versions numerically (`0.9.6` < `0.11.0`); a pre-release suffix
/// (`0.12.0-rc1`) counts as its release. None when either is not a version (a dev
/// build reports `0.0.0`, handled by the caller).
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    let parse = |s: &str| -> Option<Vec<u64>> {
        let core = s.trim().trim_start_matches('v');
        let core = core.split(['-', '+', ' ']).next()?;
        core.split('.').map(|p| p.parse::<u64>().ok()).collect()
    };
    let (mut a, mut b) = (parse(a)?, parse(b)?);
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    Some(a.cmp(&b))
}

/// Is `version` new enough for `model`? `Err(min)` when it is too old. A version we
/// cannot parse, or a dev build (`0.0.0`), is given the benefit of the doubt.
pub fn check(version: &str, model: &str) -> Result<(), &'static str> {
    let Some(min) = minimum_for_model(model) else {
        return Ok(());
    };
    if compare(version, "0.0.0") == Some(Ordering::Equal) {
        return Ok(());
    }
    match compare(version, min) {
        Some(Ordering::Less) => Err(min),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_comparison() {
        assert_eq!(compare("0.9.6", "0.11.0"), Some(Ordering::Less));
        assert_eq!(compare("0.11.0", "0.11"), Some(Ordering::Equal));
        assert_eq!(compare("0.12.0-rc1", "0.11.0"), Some(Ordering::Greater));
        assert_eq!(compare("abc", "0.11.0"), None);
    }

    #[test]
    fn gpt_oss_needs_0_11() {
        assert_eq!(check("0.10.1", "gpt-oss:20b"), Err("0.11.0"));
        assert_eq!(check("0.11.4", "gpt-oss:20b"), Ok(()));
        assert_eq!(check("0.0.0", "gpt-oss:20b"), Ok(()));
        assert_eq!(check("0.1.0", "llama3.2"), Ok(()));
    }
}

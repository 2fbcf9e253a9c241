//! The operating system ccr-setup provisions and diagnoses for, and the
//! `CCR_SETUP_PLATFORM` test hook that overrides it (read only here).

use serde::Serialize;

use crate::env_vars::EnvVars;

/// The operating systems `init` knows how to provision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    MacOs,
    Linux,
}

impl Platform {
    /// The platform this binary was built for.
    pub fn current() -> Platform {
        if cfg!(target_os = "macos") {
            Platform::MacOs
        } else {
            Platform::Linux
        }
    }

    /// Parse `macos` / `linux` (used by the `CCR_SETUP_PLATFORM` override in commands).
    pub fn parse(s: &str) -> Option<Platform> {
        match s.trim().to_ascii_lowercase().as_str() {
            "macos" | "darwin" | "mac" => Some(Platform::MacOs),
            "linux" => Some(Platform::Linux),
            _ => None,
        }
    }

    /// The platform to provision and diagnose as: the `CCR_SETUP_PLATFORM` test hook
    /// when set, else [`Platform::current`]. The one place the override is read.
    pub fn from_env() -> Result<Platform, UnknownPlatform> {
        match crate::env_vars::non_empty(EnvVars::CCR_SETUP_PLATFORM) {
            Some(v) => Platform::parse(&v).ok_or(UnknownPlatform(v)),
            None => Ok(Platform::current()),
        }
    }
}

/// `CCR_SETUP_PLATFORM` holds something other than `macos` or `linux`.
#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not a platform", var = EnvVars::CCR_SETUP_PLATFORM, value = self.0)]
pub struct UnknownPlatform(pub String);

impl crate::diagnostic::Hint for UnknownPlatform {
    fn hint(&self) -> Option<String> {
        Some(format!(
            "set {}=macos or linux, or unset it",
            EnvVars::CCR_SETUP_PLATFORM
        ))
    }
}

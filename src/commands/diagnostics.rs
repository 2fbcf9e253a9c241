//! What the user can do about an error that ended a command: the one list of the
//! domain's typed errors that know their fix (beside the commands that meet them, as
//! uv keeps `commands/diagnostics.rs`), so `output` renders without importing the domain.

use crate::config::ConfigError;
use crate::diagnostic::{Diagnostic, Hint};
use crate::ollama::serve::ServeError;
use crate::platform::UnknownPlatform;
use crate::provision::install::{InstallError, PlanError};

/// The fix for an error: from a [`Diagnostic`] anywhere in its contexts, else from the
/// first typed error in the chain that knows one.
pub fn hint_of(err: &anyhow::Error) -> Option<String> {
    if let Some(hint) = err
        .downcast_ref::<Diagnostic>()
        .and_then(|d| d.hint.clone())
    {
        return Some(hint);
    }
    err.chain().find_map(|e| {
        if let Some(d) = e.downcast_ref::<Diagnostic>() {
            d.hint.clone()
        } else if let Some(c) = e.downcast_ref::<ConfigError>() {
            c.hint()
        } else if let Some(s) = e.downcast_ref::<ServeError>() {
            s.hint()
        } else if let Some(i) = e.downcast_ref::<InstallError>() {
            i.hint()
        } else if let Some(p) = e.downcast_ref::<PlanError>() {
            p.hint()
        } else if let Some(p) = e.downcast_ref::<UnknownPlatform>() {
            p.hint()
        } else if let Some(c) = e.downcast_ref::<crate::config::ClientEdit>() {
            c.hint()
        } else if let Some(n) = e.downcast_ref::<crate::proxy::clients::NoClients>() {
            n.hint()
        } else if let Some(u) = e.downcast_ref::<crate::config::ServerUrlError>() {
            u.hint()
        } else if let Some(u) = e.downcast_ref::<crate::team::UsageError>() {
            u.hint()
        } else if let Some(g) = e.downcast_ref::<crate::provision::engine::EngineError>() {
            g.hint()
        } else {
            None
        }
    })
}

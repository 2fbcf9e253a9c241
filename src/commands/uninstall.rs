//! `ccr-setup uninstall`.

use super::{Context, Outcome};
use crate::cli::UninstallArgs;

pub fn run(_ctx: &Context, _args: UninstallArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("uninstall")
}

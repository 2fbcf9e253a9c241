//! `ccr-setup status`.

use super::{Context, Outcome};
use crate::cli::StatusArgs;

pub fn run(_ctx: &Context, _args: StatusArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("status")
}

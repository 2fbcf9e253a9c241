//! `ccr-setup stop`.

use super::{Context, Outcome};
use crate::cli::StopArgs;

pub fn run(_ctx: &Context, _args: StopArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("stop")
}

//! `ccr-setup stats`.

use super::{Context, Outcome};
use crate::cli::StatsArgs;

pub fn run(_ctx: &Context, _args: StatsArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("stats")
}

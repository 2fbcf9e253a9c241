//! `ccr-setup init`.

use super::{Context, Outcome};
use crate::cli::InitArgs;

pub fn run(_ctx: &Context, _args: InitArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("init")
}

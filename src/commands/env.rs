//! `ccr-setup env`.

use super::{Context, Outcome};
use crate::cli::EnvArgs;

pub fn run(_ctx: &Context, _args: EnvArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("env")
}

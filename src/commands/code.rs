//! `ccr-setup code`.

use super::{Context, Outcome};
use crate::cli::CodeArgs;

pub fn run(_ctx: &Context, _args: CodeArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("code")
}

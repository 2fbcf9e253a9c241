//! `ccr-setup up`.

use super::{Context, Outcome};
use crate::cli::UpArgs;

pub fn run(_ctx: &Context, _args: UpArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("up")
}

//! `ccr-setup proxy`.

use super::{Context, Outcome};
use crate::cli::ProxyArgs;

pub fn run(_ctx: &Context, _args: ProxyArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("proxy")
}

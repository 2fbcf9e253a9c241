//! `ccr-setup doctor`.

use super::{Context, Outcome};
use crate::cli::DoctorArgs;

pub fn run(_ctx: &Context, _args: DoctorArgs) -> anyhow::Result<Outcome> {
    super::not_implemented("doctor")
}

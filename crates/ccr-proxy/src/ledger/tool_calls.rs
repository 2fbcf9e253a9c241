//! `stats`' tool-call figures per model: answers whose calls needed a repair, and calls
//! that could not be repaired ([`crate::proxy::repair`]).

use std::collections::BTreeMap;

use serde::Serialize;

use super::rows::LedgerRow;

/// How usable one model's tool calls were ([`crate::proxy::repair`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolCallQuality {
    /// `provider,model`.
    pub model: String,
    /// Answers whose tool calls needed a repair to be usable.
    pub repaired: u64,
    /// How often each kind of repair was made (`name`, `syntax`, `shape`, …).
    pub repairs_by_kind: BTreeMap<String, u64>,
    /// Tool calls that could not be repaired (retried, or fallen back from).
    pub unrepaired: u64,
}

/// Repairs count for the model that answered; unrepaired calls for the model that
/// made them (the one fallen back from, when a fallback answered).
pub(super) fn count(row: &LedgerRow, by_model: &mut BTreeMap<String, ToolCallQuality>) {
    fn entry(
        by_model: &mut BTreeMap<String, ToolCallQuality>,
        model: String,
    ) -> &mut ToolCallQuality {
        by_model
            .entry(model.clone())
            .or_insert_with(|| ToolCallQuality {
                model,
                ..ToolCallQuality::default()
            })
    }
    if let Some(repairs) = row.repairs.as_deref().filter(|r| !r.is_empty()) {
        let q = entry(by_model, format!("{},{}", row.provider, row.model));
        q.repaired += 1;
        for kind in repairs.split(',') {
            *q.repairs_by_kind.entry(kind.to_owned()).or_default() += 1;
        }
    }
    if row.tool_call_failures > 0 {
        let model = row
            .fallback_from
            .clone()
            .unwrap_or_else(|| format!("{},{}", row.provider, row.model));
        entry(by_model, model).unrepaired += u64::from(row.tool_call_failures);
    }
}

//! Context editing for local targets: a conversation that outgrows the local window
//! goes on, locally.
//!
//! Claude Code's own prompt takes 12–20k tokens of a 32k window, and its threshold
//! compaction never fires below 100k (`CLAUDE_CODE_AUTO_COMPACT_WINDOW` has that
//! floor). So when a request would not fit a provider's `context_window`, the proxy
//! does what Anthropic's server-side context editing (`clear_tool_uses`) does: it
//! replaces the contents of the oldest tool results with a short stub
//! ([`stubs::cleared_result`]), and the long inputs of those old calls too, until the
//! prompt is down to the target ([`Budget::target`], 70% of the window by default), so
//! the next turns fit as well. The results the model just asked for (the last
//! message) are never cleared; one too big for the room left is cut in the middle.
//!
//! The edits of a conversation are remembered ([`memory`]): the clear point only moves
//! forward and the same history always edits to the same bytes, so a one-slot prompt
//! cache is re-prefilled once per clear, not on every turn.
//!
//! When even that cannot make it fit, the request is refused in Anthropic's words
//! (`prompt is too long: N tokens > M maximum`), which makes Claude Code compact.

pub mod memory;
pub mod stubs;

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;

use crate::config::Provider;
use crate::proxy::tokens::TokenEstimator;
use crate::proxy::wire::anthropic::{
    Content, ContentBlock, KnownBlock, MessagesRequest, ToolResultContent,
};
pub use memory::{ClearMemory, ClearState};

/// Clearing a block must save at least this many tokens, or it is left as it is.
const MIN_GAIN: u64 = 32;

/// The numbers context editing works to, from the provider's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The provider's `context_window`: prompt and answer together.
    pub window: u64,
    /// Tokens kept free for the answer (`output_reserve`).
    pub reserve: u64,
    /// What a request is cleared down to once it does not fit
    /// (`context_target_percent` of the window, at most `window - reserve`).
    pub target: u64,
}

impl Budget {
    /// The budget of a provider with a `context_window`.
    pub fn of(provider: &Provider) -> Option<Budget> {
        let window = u64::from(provider.context_window?);
        let reserve = u64::from(provider.output_reserve).min(window / 2);
        let target =
            (window * u64::from(provider.context_target_percent) / 100).min(window - reserve);
        Some(Budget {
            window,
            reserve,
            target,
        })
    }

    /// The largest prompt the window takes with the answer's reserve left free.
    pub fn limit(&self) -> u64 {
        self.window - self.reserve
    }
}

/// What an edit did, for the log line, the ledger and the count the client sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EditReport {
    /// The prompt before the edit, and after it (our estimate).
    pub input_before: u64,
    pub input_after: u64,
    /// Results cleared in this request (remembered ones included).
    pub cleared_blocks: u32,
    /// Of those, cleared for the first time by this request (the clear point moved).
    pub newly_cleared: u32,
    /// Results cut in the middle.
    pub cut_blocks: u32,
    /// "File unchanged" pointers given back the content they point at.
    pub restored_reads: u32,
}

impl EditReport {
    /// Tokens the edit took out of the prompt.
    pub fn tokens_saved(&self) -> u64 {
        self.input_before.saturating_sub(self.input_after)
    }
}

/// What editing can do for a request.
#[derive(Debug)]
pub enum EditOutcome {
    /// It fits as it is and this conversation has no edits: nothing to change.
    Untouched,
    /// It fits after these edits.
    Fits(EditPlan),
    /// Nothing more can be cleared and it still does not fit.
    TooLong { input: u64, limit: u64 },
}

/// The edits for one request, decided but not yet made ([`EditPlan::apply`]).
#[derive(Debug)]
pub struct EditPlan {
    changes: Vec<Change>,
    key: u64,
    state: ClearState,
    pub report: EditReport,
}

#[derive(Debug)]
enum Change {
    /// A result's content becomes this text.
    Result { at: (usize, usize), text: String },
    /// A result's content becomes a copy of another's, as it was sent.
    Restore {
        at: (usize, usize),
        from: (usize, usize),
    },
    /// A call's input becomes this value.
    Input { at: (usize, usize), input: Value },
}

/// Anthropic's own wording, which makes Claude Code compact (it parses `N tokens > M`).
pub fn too_long_message(input: u64, limit: u64, provider: &str, window: u64) -> String {
    format!(
        "prompt is too long: {input} tokens > {limit} maximum (provider \"{provider}\" has a {window}-token context; ccr-setup kept {} tokens free for the answer and could not clear enough old tool results)",
        window.saturating_sub(limit)
    )
}

/// One tool result in the request.
struct Unit<'a> {
    at: (usize, usize),
    id: &'a str,
    tool: &'a str,
    input: Option<&'a Value>,
    use_at: Option<(usize, usize)>,
    content: Option<&'a ToolResultContent>,
    tokens: u64,
    /// In the last message: what the model just asked for; never cleared.
    in_last: bool,
    /// The unit a "file unchanged" pointer points at.
    referent: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Act {
    Keep,
    Clear,
    /// Cut to this many bytes of text, which count this many tokens.
    Cut {
        keep: usize,
        tokens: u64,
    },
}

/// Decide the edits `req` needs to fit `budget` when it counts `input` tokens for
/// the target, re-applying what `memory` remembers of its conversation.
pub fn decide(
    req: &MessagesRequest,
    budget: &Budget,
    input: u64,
    estimator: &TokenEstimator,
    memory: &ClearMemory,
    session: Option<&str>,
) -> EditOutcome {
    // Most requests fit: nothing to look up. (A conversation with remembered clears has
    // grown past the limit already; if it ever fits whole again, it is sent whole.)
    if input <= budget.limit() {
        return EditOutcome::Untouched;
    }
    let key = memory.key(session, req);
    let remembered = memory.get(key);
    let units = units(req, estimator);
    let mut editor = Editor::new(&units, estimator, input);
    editor.replay(remembered);
    if editor.input > budget.limit() {
        editor.clear_down_to(budget.target);
    }
    if editor.input > budget.limit() {
        editor.cut_last(budget.limit());
    }
    if editor.input > budget.limit() {
        return EditOutcome::TooLong {
            input: editor.input,
            limit: budget.limit(),
        };
    }
    let (changes, state, report) = editor.finish();
    EditOutcome::Fits(EditPlan {
        changes,
        key,
        state,
        report,
    })
}

impl EditPlan {
    /// Make the edits in `req` and remember them for its conversation.
    pub fn apply(self, req: &mut MessagesRequest, memory: &ClearMemory) -> EditReport {
        // Restored content is copied before any block it comes from is cleared.
        let restored: Vec<Option<ToolResultContent>> = self
            .changes
            .iter()
            .map(|c| match c {
                Change::Restore { from, .. } => result_content(req, *from).cloned(),
                _ => None,
            })
            .collect();
        for (change, restored) in self.changes.into_iter().zip(restored) {
            match change {
                Change::Result { at, text } => {
                    set_result(req, at, ToolResultContent::Text(text));
                }
                Change::Restore { at, .. } => {
                    if let Some(content) = restored {
                        set_result(req, at, content);
                    }
                }
                Change::Input { at, input } => {
                    if let Some(KnownBlock::ToolUse { input: old, .. }) = block_mut(req, at) {
                        *old = input;
                    }
                }
            }
        }
        memory.put(self.key, self.state);
        self.report
    }
}

/// The working state of [`decide`]: an act per unit and the prompt's size under them.
struct Editor<'u, 'a> {
    units: &'u [Unit<'a>],
    estimator: &'u TokenEstimator,
    acts: Vec<Act>,
    input_before: u64,
    input: u64,
    state: ClearState,
    newly_cleared: u32,
    /// Per unit: the stub's text and tokens, and the cleared input with its saving.
    stubs: HashMap<usize, (String, u64)>,
    inputs: HashMap<usize, Option<(Value, u64)>>,
}

impl<'u, 'a> Editor<'u, 'a> {
    fn new(units: &'u [Unit<'a>], estimator: &'u TokenEstimator, input: u64) -> Self {
        Editor {
            units,
            estimator,
            acts: vec![Act::Keep; units.len()],
            input_before: input,
            input,
            state: ClearState::default(),
            newly_cleared: 0,
            stubs: HashMap::new(),
            inputs: HashMap::new(),
        }
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.units.iter().position(|u| u.id == id)
    }

    /// Re-apply the remembered edits; a remembered block that is gone (`/rewind`, or
    /// a key collision) forgets them all.
    fn replay(&mut self, remembered: ClearState) {
        let cleared: Option<Vec<usize>> = remembered
            .cleared
            .iter()
            .map(|id| self.index_of(id).filter(|i| !self.units[*i].in_last))
            .collect();
        let cuts: Option<Vec<(usize, usize)>> = remembered
            .cuts
            .iter()
            .map(|(id, keep)| Some((self.index_of(id)?, *keep)))
            .collect();
        let (Some(cleared), Some(cuts)) = (cleared, cuts) else {
            return;
        };
        for (i, keep) in cuts {
            if let Some(tokens) = self.cut_tokens(i, keep) {
                self.acts[i] = Act::Cut { keep, tokens };
            }
        }
        for i in cleared {
            self.acts[i] = Act::Clear;
        }
        self.state = remembered;
        self.input = self.measure();
    }

    /// Clear the oldest results not yet cleared until the prompt is at most `target`.
    fn clear_down_to(&mut self, target: u64) {
        for i in 0..self.units.len() {
            if self.input <= target {
                return;
            }
            if self.units[i].in_last || self.acts[i] == Act::Clear {
                continue;
            }
            let before = (self.acts[i].clone(), self.input);
            self.acts[i] = Act::Clear;
            let after = self.measure();
            if after + MIN_GAIN > self.input {
                // Too small to be worth it, or a pointer in the last message would get
                // the same content back.
                (self.acts[i], self.input) = before;
                continue;
            }
            self.input = after;
            self.newly_cleared += 1;
            self.state.cleared.push(self.units[i].id.to_owned());
        }
    }

    /// Cut the largest results of the last message in the middle until the prompt is at
    /// most `limit`.
    fn cut_last(&mut self, limit: u64) {
        let mut order: Vec<usize> = (0..self.units.len())
            .filter(|i| self.units[*i].in_last && self.acts[*i] == Act::Keep)
            .collect();
        order.sort_by_key(|i| std::cmp::Reverse(self.units[*i].tokens));
        for i in order {
            if self.input <= limit {
                return;
            }
            let Some(text) = self.units[i].content.and_then(plain_text) else {
                continue;
            };
            let need = self.input - limit;
            let tokens = self.units[i].tokens.max(1);
            // Keep the share of the text that the remaining tokens are, less a margin
            // for the note and the tokenizer's seams; shrink until it fits.
            let mut keep_tokens = tokens.saturating_sub(need + 64);
            for _ in 0..6 {
                let keep =
                    (text.len() as u128 * u128::from(keep_tokens) / u128::from(tokens)) as usize;
                let Some(cut) = self.cut_tokens(i, keep) else {
                    break;
                };
                if self.input - tokens + cut <= limit || keep == 0 {
                    self.acts[i] = Act::Cut { keep, tokens: cut };
                    self.input = self.measure();
                    self.state.cuts.push((self.units[i].id.to_owned(), keep));
                    break;
                }
                keep_tokens = keep_tokens * 9 / 10;
            }
        }
    }

    /// Tokens of unit `i` cut to `keep` bytes (None when it is not plain text).
    fn cut_tokens(&self, i: usize, keep: usize) -> Option<u64> {
        let text = self.units[i].content.and_then(plain_text)?;
        let removed = self.units[i].tokens;
        Some(self.estimator.count_cached(&stubs::cut_middle(
            &text,
            keep,
            removed_estimate(&text, keep, removed),
        )))
    }

    /// The prompt's size under the current acts.
    fn measure(&mut self) -> u64 {
        let mut delta: i128 = 0;
        for i in 0..self.units.len() {
            let unit = &self.units[i];
            let now = match self.acts[i].clone() {
                Act::Keep => match unit.referent {
                    Some(r) if self.acts[r] != Act::Keep => self.units[r].tokens,
                    _ => unit.tokens,
                },
                Act::Cut { tokens, .. } => tokens,
                Act::Clear => {
                    let saved = self.cleared_input(i).map_or(0, |(_, saved)| saved);
                    delta -= i128::from(saved);
                    self.stub(i).1
                }
            };
            delta += i128::from(now) - i128::from(unit.tokens);
        }
        (i128::from(self.input_before) + delta).max(0) as u64
    }

    /// The stub of unit `i` and its tokens.
    fn stub(&mut self, i: usize) -> &(String, u64) {
        let (units, estimator) = (self.units, self.estimator);
        self.stubs.entry(i).or_insert_with(|| {
            let u = &units[i];
            let tokens = u
                .referent
                .map_or(u.tokens, |r| units[r].tokens.max(u.tokens));
            let text = stubs::cleared_result(u.tool, u.input.unwrap_or(&Value::Null), tokens);
            let n = estimator.count_cached(&text);
            (text, n)
        })
    }

    /// Unit `i`'s call input with its long strings cleared, and the tokens saved
    /// (None when nothing in it is long).
    fn cleared_input(&mut self, i: usize) -> Option<(Value, u64)> {
        let (units, estimator) = (self.units, self.estimator);
        self.inputs
            .entry(i)
            .or_insert_with(|| {
                let input = units[i].input?;
                let cleared = clear_long_strings(input)?;
                let saved = estimator
                    .count_json(input)
                    .saturating_sub(estimator.count_json(&cleared));
                Some((cleared, saved))
            })
            .clone()
    }

    fn finish(mut self) -> (Vec<Change>, ClearState, EditReport) {
        let mut changes = Vec::new();
        let mut report = EditReport {
            input_before: self.input_before,
            input_after: self.input,
            newly_cleared: self.newly_cleared,
            ..EditReport::default()
        };
        for i in 0..self.units.len() {
            let unit = &self.units[i];
            match self.acts[i].clone() {
                Act::Keep => {
                    if let Some(r) = unit.referent.filter(|r| self.acts[*r] != Act::Keep) {
                        report.restored_reads += 1;
                        changes.push(Change::Restore {
                            at: unit.at,
                            from: self.units[r].at,
                        });
                    }
                }
                Act::Cut { keep, .. } => {
                    report.cut_blocks += 1;
                    let text = unit.content.and_then(plain_text).unwrap_or_default();
                    let removed = removed_estimate(&text, keep, unit.tokens);
                    changes.push(Change::Result {
                        at: unit.at,
                        text: stubs::cut_middle(&text, keep, removed),
                    });
                }
                Act::Clear => {
                    report.cleared_blocks += 1;
                    let text = self.stub(i).0.clone();
                    changes.push(Change::Result { at: unit.at, text });
                    if let (Some(at), Some((input, _))) = (unit.use_at, self.cleared_input(i)) {
                        changes.push(Change::Input { at, input });
                    }
                }
            }
        }
        (changes, self.state, report)
    }
}

/// About how many tokens a cut to `keep` of `text`'s bytes removes.
fn removed_estimate(text: &str, keep: usize, tokens: u64) -> u64 {
    let gone = text.len().saturating_sub(keep) as u128;
    (gone * u128::from(tokens) / (text.len().max(1) as u128)) as u64
}

/// Every tool result of `req`, with its call, its size and its pointer.
fn units<'a>(req: &'a MessagesRequest, estimator: &TokenEstimator) -> Vec<Unit<'a>> {
    let mut calls: HashMap<&str, ((usize, usize), &str, &Value)> = HashMap::new();
    let mut units: Vec<Unit<'a>> = Vec::new();
    let last = req.messages.len().saturating_sub(1);
    for (m, message) in req.messages.iter().enumerate() {
        let Content::Blocks(blocks) = &message.content else {
            continue;
        };
        for (b, block) in blocks.iter().enumerate() {
            match block {
                ContentBlock::Known(KnownBlock::ToolUse {
                    id, name, input, ..
                }) => {
                    calls.insert(id, ((m, b), name, input));
                }
                ContentBlock::Known(KnownBlock::ToolResult {
                    tool_use_id,
                    content,
                    ..
                }) => {
                    let call = calls.get(tool_use_id.as_str());
                    units.push(Unit {
                        at: (m, b),
                        id: tool_use_id,
                        tool: call.map_or("tool", |c| c.1),
                        input: call.map(|c| c.2),
                        use_at: call.map(|c| c.0),
                        content: content.as_ref(),
                        tokens: content
                            .as_ref()
                            .map_or(0, |c| estimator.count_result_content(c)),
                        in_last: m == last,
                        referent: None,
                    });
                }
                _ => {}
            }
        }
    }
    link_pointers(&mut units);
    units
}

/// Point each "file unchanged" result at the latest earlier full `Read` of its file.
fn link_pointers<'a>(units: &mut [Unit<'a>]) {
    fn file<'a>(u: &Unit<'a>) -> Option<&'a str> {
        if u.tool != "Read" {
            return None;
        }
        u.input?.get("file_path")?.as_str()
    }
    let mut last_full: HashMap<&'a str, usize> = HashMap::new();
    for (i, unit) in units.iter_mut().enumerate() {
        let Some(path) = file(unit) else {
            continue;
        };
        let pointer = unit
            .content
            .and_then(plain_text)
            .is_some_and(|t| stubs::is_unchanged_pointer(&t));
        if pointer {
            unit.referent = last_full.get(path).copied();
        } else {
            last_full.insert(path, i);
        }
    }
}

/// A result's text when it is only text (a string, or text blocks).
fn plain_text(content: &ToolResultContent) -> Option<Cow<'_, str>> {
    match content {
        ToolResultContent::Text(t) => Some(Cow::Borrowed(t)),
        ToolResultContent::Blocks(blocks) => {
            let mut out = String::new();
            for block in blocks {
                match block {
                    ContentBlock::Known(KnownBlock::Text { text, .. }) => {
                        if !out.is_empty() {
                            out.push('\n');
                        }
                        out.push_str(text);
                    }
                    _ => return None,
                }
            }
            Some(Cow::Owned(out))
        }
    }
}

/// `input` with every string longer than [`stubs::INPUT_FIELD_CLEAR_BYTES`] replaced
/// by a note (None when there is none).
fn clear_long_strings(input: &Value) -> Option<Value> {
    fn walk(v: &mut Value) -> bool {
        match v {
            Value::String(s) if s.len() > stubs::INPUT_FIELD_CLEAR_BYTES => {
                *s = stubs::cleared_input_field(s.len());
                true
            }
            // Every string is walked: no short-circuit.
            Value::Array(items) => items.iter_mut().map(walk).filter(|c| *c).count() > 0,
            Value::Object(map) => map.values_mut().map(walk).filter(|c| *c).count() > 0,
            _ => false,
        }
    }
    let mut out = input.clone();
    walk(&mut out).then_some(out)
}

fn block_mut(req: &mut MessagesRequest, (m, b): (usize, usize)) -> Option<&mut KnownBlock> {
    match &mut req.messages.get_mut(m)?.content {
        Content::Blocks(blocks) => match blocks.get_mut(b)? {
            ContentBlock::Known(known) => Some(known),
            ContentBlock::Unknown(_) => None,
        },
        Content::Text(_) => None,
    }
}

fn result_content(req: &MessagesRequest, (m, b): (usize, usize)) -> Option<&ToolResultContent> {
    match &req.messages.get(m)?.content {
        Content::Blocks(blocks) => match blocks.get(b)? {
            ContentBlock::Known(KnownBlock::ToolResult { content, .. }) => content.as_ref(),
            _ => None,
        },
        Content::Text(_) => None,
    }
}

fn set_result(req: &mut MessagesRequest, at: (usize, usize), new: ToolResultContent) {
    if let Some(KnownBlock::ToolResult { content, .. }) = block_mut(req, at) {
        *content = Some(new);
    }
}

#[cfg(test)]
mod tests;

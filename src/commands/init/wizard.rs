//! `init`'s questions: each answer from its flag, the terminal or the default, checked
//! before anything is planned.

use std::time::Duration;

use anyhow::bail;
use console::Term;
use dialoguer::theme::ColorfulTheme;

use super::super::init_key::{self, CloudKey};
use super::super::prompt::Prompter;
use crate::cli::InitArgs;
use crate::config::{
    ConfigFile, SecretsStore, DEFAULT_CONTEXT_LENGTH, DEFAULT_MODEL, DEFAULT_PORT,
};
use crate::diagnostic::Diagnostic;
use crate::ollama::kv::ContextAdvice;
use crate::ollama::{InstalledModel, ModelDetails, OllamaClient};
use crate::output::Printer;
use crate::provision::router_config::{self, Answers};
use crate::service::Manager;

/// What Ollama told us, when it answered.
pub(super) struct OllamaInfo {
    client: OllamaClient,
    models: Option<Vec<InstalledModel>>,
}

impl OllamaInfo {
    pub(super) fn fetch() -> OllamaInfo {
        let client = OllamaClient::new(crate::ollama::base_url_from_env())
            .with_probe_timeout(Duration::from_secs(2));
        let models = super::super::shared::block_on(client.tags()).ok();
        OllamaInfo { client, models }
    }

    /// `/api/show` of the model, when it is pulled and Ollama answers.
    fn details(&self, model: &str) -> Option<ModelDetails> {
        self.models.as_ref()?;
        super::super::shared::block_on(self.client.show(model)).ok()
    }

    /// The parallel slots this machine affords the model at `context` (`ollama::kv`).
    fn slot_advice(
        &self,
        model: &str,
        details: Option<&ModelDetails>,
        context: u64,
    ) -> Option<crate::ollama::kv::SlotAdvice> {
        let want = crate::ollama::normalize_model_name(model);
        let pulled = (self.models.iter().flatten())
            .find(|m| crate::ollama::normalize_model_name(&m.name) == want);
        let memory = super::super::shared::block_on(crate::doctor::probe::memory_bytes())?;
        match (details, pulled) {
            (Some(d), Some(m)) => Some(crate::ollama::kv::advise_slots(
                d.kv.as_ref()?,
                m.size,
                memory,
                context,
            )),
            _ => crate::models::advise_slots_unpulled(model, memory, context),
        }
    }

    /// The catalogue's models that fit this machine (`crate::models::fitting`), as
    /// (name, label) for the model menu; the default alone when memory is unknown.
    fn offered_models(&self) -> Vec<(String, String)> {
        let memory = super::super::shared::block_on(crate::doctor::probe::memory_bytes());
        let least = DEFAULT_CONTEXT_LENGTH.into();
        let Some(memory) = memory else {
            return vec![(
                DEFAULT_MODEL.to_owned(),
                format!("{DEFAULT_MODEL} (not pulled yet)"),
            )];
        };
        crate::models::fitting(memory, least)
            .into_iter()
            .map(|(m, r)| {
                let fit = match r {
                    Some(r) => format!("{} tokens fit", r.context),
                    None => "its cache size is known once pulled".to_owned(),
                };
                let label = format!(
                    "{} ({}, {}; {fit}; not pulled yet)",
                    m.name,
                    crate::humanize::bytes(m.bytes),
                    m.capabilities.join(", ")
                );
                (m.name.to_owned(), label)
            })
            .collect()
    }

    /// The context this machine affords the model and what it costs (`ollama::kv`).
    fn context_advice(&self, model: &str, details: Option<&ModelDetails>) -> Option<ContextAdvice> {
        let want = crate::ollama::normalize_model_name(model);
        let pulled = (self.models.iter().flatten())
            .find(|m| crate::ollama::normalize_model_name(&m.name) == want);
        let memory = super::super::shared::block_on(crate::doctor::probe::memory_bytes())?;
        let least = DEFAULT_CONTEXT_LENGTH.into();
        match (details, pulled) {
            (Some(d), Some(m)) => crate::ollama::kv::advise(d, m.size, memory, least),
            _ => crate::models::advise_unpulled(model, memory, least),
        }
    }
}

fn check_context(model: &str, ctx: u32, trained: Option<u64>) -> Result<(), String> {
    if ctx < 2048 {
        return Err(format!("{ctx} tokens is too small for Claude Code's prompts; use at least 2048 (default {DEFAULT_CONTEXT_LENGTH})"));
    }
    match trained {
        Some(t) if u64::from(ctx) > t => Err(format!(
            "{model} was trained on {t} tokens of context; Ollama caps OLLAMA_CONTEXT_LENGTH there, so use {t} or less"
        )),
        _ => Ok(()),
    }
}

/// All the answers: the config ones, whether to install services, and the cloud key.
pub(super) struct AllAnswers {
    pub config: Answers,
    pub services: bool,
    /// With cloud fallback: the key to store, or why none is.
    pub key: Option<CloudKey>,
    /// A new `APIKEY` for the proxy, when the config has none and the user did not
    /// decline one.
    pub proxy_key: Option<String>,
}

pub(super) fn gather(
    out: &Printer,
    prompter: &Prompter,
    args: &InitArgs,
    existing: Option<&ConfigFile>,
    ollama: &OllamaInfo,
    manager: Option<Manager>,
    store: &SecretsStore,
) -> anyhow::Result<AllAnswers> {
    // The existing config's answers are the defaults.
    let base = existing.and_then(|f| router_config::current_answers(&f.doc));
    let first_setup = base.is_none();
    let has_api_key = existing.is_some_and(|f| router_config::has_api_key(&f.doc));
    let defaults = base.unwrap_or_else(|| Answers {
        model: DEFAULT_MODEL.to_owned(),
        context_length: DEFAULT_CONTEXT_LENGTH,
        port: DEFAULT_PORT,
        cloud_fallback: crate::env_vars::non_empty(crate::env_vars::EnvVars::ANTHROPIC_API_KEY)
            .is_some(),
        cloud_model: crate::catalogue::default_cloud_model().to_owned(),
        ollama_chat_url: None,
        num_parallel: None,
        context_editing: None,
    });
    let ask = Ask {
        term: prompter.term(),
        theme: ColorfulTheme::default(),
        args,
        defaults: &defaults,
    };

    let model = match (&args.model, ask.term) {
        (Some(m), _) => m.clone(),
        (None, None) => defaults.model.clone(),
        (None, Some(t)) => {
            let offered = ollama.offered_models();
            ask_model(
                t,
                &ask.theme,
                &defaults.model,
                ollama.models.as_deref(),
                &offered,
            )?
        }
    };
    let details = ollama.details(&model);
    let trained = details.as_ref().and_then(|d| d.trained_context);
    let advice = ollama.context_advice(&model, details.as_ref());
    match (&advice, ask.term, args.context_length) {
        (Some(a), None, _) | (Some(a), _, Some(_)) => out.line(&format!("Note: {}", a.text)),
        _ => {}
    }
    // A first setup is offered the largest context that fits (Ollama's docs ask for 64k
    // or more for Claude Code); an existing config's context stays the default.
    let offered = advice
        .as_ref()
        .filter(|a| a.fits && first_setup)
        .map(|a| a.context.min(u64::from(u32::MAX)) as u32);
    let context_length = ask.context_length(&model, trained, advice.as_ref(), offered)?;
    let port = ask.port()?;
    let cloud_fallback = ask.cloud_fallback()?;
    let cloud_model = cloud_model(args, &defaults)?;
    let num_parallel = slots(
        out,
        args,
        ollama,
        &model,
        details.as_ref(),
        context_length,
        cloud_fallback,
    );
    if cloud_fallback {
        out.line(&format!(
            "Note: {}",
            context_editing_note(args.context_editing)
        ));
    }
    let key = match cloud_fallback {
        true => Some(init_key::gather(ask.term, store, !args.no_key_check, out)?),
        false => None,
    };
    let services = ask.services(manager)?;
    let proxy_key = ask.proxy_key(has_api_key)?;
    Ok(AllAnswers {
        config: Answers {
            model,
            context_length,
            port,
            cloud_fallback,
            cloud_model,
            ollama_chat_url: crate::env_vars::non_empty(crate::env_vars::EnvVars::OLLAMA_HOST)
                .map(|_| crate::config::ollama_chat_url(&crate::ollama::base_url_from_env())),
            num_parallel,
            context_editing: args.context_editing.map(|c| c.config_name()),
        },
        services,
        key,
        proxy_key,
    })
}

/// `--cloud-model`, else the config's: one model id.
fn cloud_model(args: &InitArgs, defaults: &Answers) -> anyhow::Result<String> {
    let cloud_model = args
        .cloud_model
        .clone()
        .unwrap_or_else(|| defaults.cloud_model.clone());
    if cloud_model.trim().is_empty() || cloud_model.contains(',') {
        return Err(crate::diagnostic::Diagnostic::new(format!(
            "--cloud-model {cloud_model:?} is not one model id"
        ))
        .with_hint(format!(
            "give one model id, e.g. --cloud-model {}",
            crate::catalogue::default_cloud_model()
        ))
        .into());
    }
    Ok(cloud_model)
}

/// `Ollama.num_parallel` to write: the flag, else two slots when they fit and no cloud
/// backup takes the subagents (Claude Code sends them as Haiku to the background
/// route then), else leave the config's. Says what the choice costs.
fn slots(
    out: &Printer,
    args: &InitArgs,
    ollama: &OllamaInfo,
    model: &str,
    details: Option<&ModelDetails>,
    context_length: u32,
    cloud_fallback: bool,
) -> Option<u32> {
    if args.num_parallel.is_some() {
        return args.num_parallel;
    }
    if cloud_fallback {
        return None;
    }
    let advice = ollama.slot_advice(model, details, context_length.into())?;
    let why = if advice.slots > 1 {
        "so a subagent or side request does not evict the main conversation's prompt cache"
    } else {
        "two would not fit; a subagent's request then makes the next main turn re-read the whole prompt"
    };
    out.line(&format!(
        "Note: Ollama will run {} ({why}; `--num-parallel N` to choose)",
        advice.describe()
    ));
    Some(advice.slots)
}

/// What `init` says about context editing when it writes a cloud backup.
fn context_editing_note(choice: Option<crate::cli::ContextEditingChoice>) -> &'static str {
    use crate::cli::ContextEditingChoice as C;
    match choice.unwrap_or(C::Auto) {
        C::Auto => "a conversation that outgrows the local window is first fitted locally (the proxy clears the oldest tool results); the cloud backup takes it only when that cannot make it fit. `--context-editing cloud-first` sends it to the cloud first instead",
        C::CloudFirst => "a conversation that outgrows the local window goes to the cloud backup whole (`--context-editing cloud-first`); the proxy clears old tool results only when the cloud cannot take it",
        C::Off => "a conversation that outgrows the local window goes to the cloud backup, or is refused as \"prompt is too long\" so Claude Code compacts (`--context-editing off`)",
    }
}

/// One question at a time: the flag when given, else the terminal's answer, else the
/// default (no terminal).
struct Ask<'a> {
    term: Option<&'a Term>,
    theme: ColorfulTheme,
    args: &'a InitArgs,
    defaults: &'a Answers,
}

impl Ask<'_> {
    /// The context length, checked against what the model was trained on.
    fn context_length(
        &self,
        model: &str,
        trained: Option<u64>,
        advice: Option<&ContextAdvice>,
        offered: Option<u32>,
    ) -> anyhow::Result<u32> {
        let context_length = match (self.args.context_length, self.term) {
            (Some(c), _) => c,
            (None, None) => self.defaults.context_length,
            (None, Some(t)) => {
                let prompt = match (trained, advice.map(|a| a.text.as_str())) {
                    (Some(tc), Some(a)) => {
                        format!("Context length in tokens (trained: {tc}; {a})")
                    }
                    (Some(tc), None) => format!("Context length in tokens (trained: {tc})"),
                    _ => "Context length in tokens".to_owned(),
                };
                let m = model.to_owned();
                dialoguer::Input::<u32>::with_theme(&self.theme)
                    .with_prompt(prompt)
                    .default(
                        offered
                            .unwrap_or(self.defaults.context_length)
                            .min(trained.map_or(u32::MAX, |t| t as u32)),
                    )
                    .validate_with(move |c: &u32| check_context(&m, *c, trained))
                    .interact_text_on(t)?
            }
        };
        if let Err(why) = check_context(model, context_length, trained) {
            bail!("--context-length {context_length}: {why}");
        }
        Ok(context_length)
    }

    fn port(&self) -> anyhow::Result<u16> {
        let port = match (self.args.port, self.term) {
            (Some(p), _) => p,
            (None, None) => self.defaults.port,
            (None, Some(t)) => dialoguer::Input::<u16>::with_theme(&self.theme)
                .with_prompt("Proxy port")
                .default(self.defaults.port)
                .validate_with(|p: &u16| {
                    if *p == 0 {
                        Err("use a port from 1 to 65535")
                    } else {
                        Ok(())
                    }
                })
                .interact_text_on(t)?,
        };
        if port == 0 {
            return Err(Diagnostic::new("--port 0 is not a port")
                .with_hint(format!(
                    "use a port from 1 to 65535 (default {DEFAULT_PORT})"
                ))
                .into());
        }
        Ok(port)
    }

    fn cloud_fallback(&self) -> anyhow::Result<bool> {
        if self.args.cloud_fallback {
            return Ok(true);
        }
        if self.args.no_cloud_fallback {
            return Ok(false);
        }
        Ok(match self.term {
            None => self.defaults.cloud_fallback,
            Some(t) => dialoguer::Confirm::with_theme(&self.theme)
                .with_prompt("Add the Claude API as cloud fallback (think, long context, errors)?")
                .default(self.defaults.cloud_fallback)
                .interact_on(t)?,
        })
    }

    /// Whether to install the services; never without a service manager.
    fn services(&self, manager: Option<Manager>) -> anyhow::Result<bool> {
        let Some(m) = manager else {
            return Ok(false);
        };
        if self.args.service {
            return Ok(true);
        }
        if self.args.no_service {
            return Ok(false);
        }
        Ok(match self.term {
            None => true,
            Some(t) => dialoguer::Confirm::with_theme(&self.theme)
                .with_prompt(format!(
                    "Start Ollama and the proxy at login ({} services)?",
                    m.name()
                ))
                .default(true)
                .interact_on(t)?,
        })
    }

    /// A new random `APIKEY`, unless the config has one or the user declines.
    fn proxy_key(&self, has_api_key: bool) -> anyhow::Result<Option<String>> {
        Ok(match (has_api_key, self.args.no_api_key, self.term) {
            (true, _, _) | (false, true, _) => None,
            (false, false, None) => Some(router_config::new_api_key()?),
            (false, false, Some(t)) => dialoguer::Confirm::with_theme(&self.theme)
                .with_prompt("Protect the proxy with a random API key (recommended: web pages and other local users cannot use it)?")
                .default(true)
                .interact_on(t)?
                .then(router_config::new_api_key)
                .transpose()?,
        })
    }
}

/// The model menu: pulled models, then the catalogue's models that fit this machine
/// (`offered`), the default preselected, then "another model…".
fn ask_model(
    t: &Term,
    theme: &ColorfulTheme,
    default: &str,
    pulled: Option<&[InstalledModel]>,
    offered: &[(String, String)],
) -> anyhow::Result<String> {
    let (mut names, mut items) = menu(default, pulled.unwrap_or_default(), offered);
    names.push(String::new());
    items.push("another model…".to_owned());
    let default_index = names.iter().position(|n| n == default).unwrap_or(0);
    let pick = dialoguer::Select::with_theme(theme)
        .with_prompt("Ollama model (`ccr-setup up` pulls it if needed)")
        .items(&items)
        .default(default_index)
        .interact_on(t)?;
    if pick + 1 < names.len() {
        Ok(names[pick].clone())
    } else {
        Ok(dialoguer::Input::<String>::with_theme(theme)
            .with_prompt("Model name")
            .interact_text_on(t)?)
    }
}

/// The menu's (names, labels): pulled models first, then offered ones not pulled; the
/// default is always there.
fn menu(
    default: &str,
    pulled: &[InstalledModel],
    offered: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let same = |a: &str, b: &str| {
        crate::ollama::normalize_model_name(a) == crate::ollama::normalize_model_name(b)
    };
    let mut names: Vec<String> = pulled.iter().map(|m| m.name.clone()).collect();
    let mut items: Vec<String> = pulled
        .iter()
        .map(|m| format!("{} ({})", m.name, crate::humanize::bytes(m.size)))
        .collect();
    for (name, label) in offered {
        if !names.iter().any(|n| same(n, name)) {
            names.push(name.clone());
            items.push(label.clone());
        }
    }
    if !names.iter().any(|n| same(n, default)) {
        names.insert(0, default.to_owned());
        items.insert(
            0,
            format!("{default} (not pulled yet; `ccr-setup up` pulls it)"),
        );
    }
    (names, items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_menu_lists_pulled_models_then_the_fitting_ones_with_the_default() {
        let pulled = vec![InstalledModel {
            name: "qwen3.5:9b".into(),
            model: "qwen3.5:9b".into(),
            size: 6_600_000_000,
            digest: String::new(),
        }];
        let offered: Vec<(String, String)> = crate::models::fitting(24_000_000_000, 32_768)
            .into_iter()
            .map(|(m, _)| (m.name.to_owned(), format!("{} offered", m.name)))
            .collect();
        let (names, items) = menu("gpt-oss:20b", &pulled, &offered);
        assert_eq!(names, ["qwen3.5:9b", "gpt-oss:20b", "gemma4:12b"]);
        assert_eq!(items[1], "gpt-oss:20b offered");
        // On a small machine the default is still there, marked as not pulled.
        let (names, items) = menu("gpt-oss:20b", &[], &[]);
        assert_eq!(names, ["gpt-oss:20b"]);
        assert!(items[0].contains("not pulled yet"));
    }

    #[test]
    fn context_is_checked_against_the_trained_length() {
        assert!(check_context("m", 32768, Some(131072)).is_ok());
        assert!(check_context("m", 32768, None).is_ok());
        let err = check_context("m", 200_000, Some(131072)).unwrap_err();
        assert!(err.contains("131072"), "{err}");
        assert!(check_context("m", 100, None).is_err());
    }
}

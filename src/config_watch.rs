//! Picking up config edits without a restart.
//!
//! The proxy reads its config through a `LiveConfig` (`ccr_proxy::proxy::reload`): each request takes the
//! current `Arc<Config>` once and uses it to the end, so a reload never changes a
//! request half-way. [`watch`] swaps in a new config when the file changes *and* the
//! new content validates; a bad edit is reported (as [`ReloadEvent::Rejected`]) and
//! the last good config stays in force.
//!
//! Change detection uses inotify/FSEvents (through `notify`) on the file's directory,
//! because editors and our own atomic writes replace the file by rename, which a watch
//! on the file itself would lose. A cheap metadata poll runs as well, for file
//! systems where change events do not arrive (network mounts, some containers).
//! Either way a reload happens only when the file's (mtime, size, inode) changed and
//! its text differs from the last one read.
//!
//! `HOST` and `PORT` are bound once: a change to them is reported as
//! [`ReloadEvent::RestartNeeded`] and the rest of the edit still applies.

use std::hash::{BuildHasher, Hash};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::Watcher as _;

use crate::config::{Config, ConfigFile};
use crate::proxy::reload::LiveConfig;

/// What the watcher did; the server logs these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadEvent {
    /// A new config is in force.
    Reloaded { generation: u64 },
    /// The edited file did not load or validate, or `accept` refused it; the previous
    /// config stays in force.
    Rejected { error: String },
    /// `HOST` or `PORT` changed; they take effect at the next start.
    RestartNeeded { what: String },
    /// File events are unavailable; only the poll detects changes.
    EventsUnavailable { error: String },
}

/// Tuning for [`watch`].
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Metadata poll period (the safety net when change events do not arrive).
    pub poll: Duration,
    /// Wait after a change event before reading, so a burst of writes is read once.
    pub debounce: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll: Duration::from_secs(2),
            debounce: Duration::from_millis(150),
        }
    }
}

/// Stops watching when dropped.
pub struct ConfigWatcher {
    task: tokio::task::JoinHandle<()>,
    _events: Option<notify::RecommendedWatcher>,
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watch `path` and keep `live` up to date. `accept` runs on every candidate after it
/// validates (the server uses it to insist on `APIKEY` while bound beyond loopback).
/// Must be called inside a tokio runtime.
pub fn watch(
    path: PathBuf,
    live: Arc<LiveConfig>,
    options: WatchOptions,
    accept: impl Fn(&Config) -> Result<(), String> + Send + 'static,
    on_event: impl Fn(ReloadEvent) + Send + 'static,
) -> ConfigWatcher {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let file_name = path.file_name().map(|n| n.to_owned());
    let events = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            let ours = event
                .paths
                .iter()
                .any(|p| p.file_name() == file_name.as_deref());
            if ours {
                let _ = tx.send(());
            }
        }
    })
    .and_then(|mut w| {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        w.watch(dir, notify::RecursiveMode::NonRecursive)?;
        Ok(w)
    });
    let events = match events {
        Ok(w) => Some(w),
        Err(e) => {
            on_event(ReloadEvent::EventsUnavailable {
                error: e.to_string(),
            });
            None
        }
    };

    let mut state = FileState::read(&path);
    let task = tokio::spawn(async move {
        let mut poll = tokio::time::interval(options.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    tokio::time::sleep(options.debounce).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = poll.tick() => {}
            }
            if let Some(event) = check(&path, &mut state, &live, &accept) {
                on_event(event);
            }
        }
    });
    ConfigWatcher {
        task,
        _events: events,
    }
}

/// What we last saw of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileState {
    meta: Option<(Option<SystemTime>, u64, u64)>,
    text_hash: Option<u64>,
}

impl FileState {
    fn read(path: &Path) -> FileState {
        FileState {
            meta: metadata_signature(path),
            text_hash: std::fs::read_to_string(path).ok().map(|t| text_hash(&t)),
        }
    }
}

fn metadata_signature(path: &Path) -> Option<(Option<SystemTime>, u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((meta.modified().ok(), meta.len(), inode))
}

fn text_hash(text: &str) -> u64 {
    // Fixed seed: the hash is only compared within this process.
    let mut h = foldhash::quality::FixedState::default().build_hasher();
    text.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

/// Reload if the file really changed. Returns what happened, or None for "nothing".
fn check(
    path: &Path,
    state: &mut FileState,
    live: &LiveConfig,
    accept: &impl Fn(&Config) -> Result<(), String>,
) -> Option<ReloadEvent> {
    let meta = metadata_signature(path);
    if meta == state.meta {
        return None;
    }
    state.meta = meta;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // Mid-rename or deleted: keep the config in force; a later event or poll
        // sees the new file.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            return Some(ReloadEvent::Rejected {
                error: format!("cannot read {}: {e}", path.display()),
            })
        }
    };
    let hash = text_hash(&text);
    if Some(hash) == state.text_hash {
        return None;
    }
    state.text_hash = Some(hash);
    let config = match parse_and_resolve(path, &text).and_then(|c| accept(&c).map(|()| c)) {
        Ok(c) => c,
        Err(error) => return Some(ReloadEvent::Rejected { error }),
    };
    let old = live.current();
    let restart = (old.host != config.host || old.port != config.port).then(|| {
        format!(
            "HOST/PORT changed from {}:{} to {}:{}; the proxy keeps listening on the old address until restarted",
            old.host, old.port, config.host, config.port
        )
    });
    live.replace(config);
    Some(match restart {
        Some(what) => ReloadEvent::RestartNeeded { what },
        None => ReloadEvent::Reloaded {
            generation: live.generation(),
        },
    })
}

fn parse_and_resolve(path: &Path, text: &str) -> Result<Config, String> {
    let doc = ConfigFile::parse(text)
        .map_err(|m| format!("{} is not valid JSON5: {m}", path.display()))?;
    ConfigFile::new(path, doc)
        .resolve()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    fn doc(default: &str) -> String {
        json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b", "qwen3:8b"]}],
            "Router": {"default": default}
        })
        .to_string()
    }

    async fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        for _ in 0..200 {
            if cond() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    }

    fn start(
        path: &Path,
        accept: impl Fn(&Config) -> Result<(), String> + Send + 'static,
    ) -> (Arc<LiveConfig>, Arc<Mutex<Vec<ReloadEvent>>>, ConfigWatcher) {
        let live = LiveConfig::new(crate::config::load(path).unwrap());
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let w = watch(
            path.to_path_buf(),
            live.clone(),
            WatchOptions {
                poll: Duration::from_millis(200),
                debounce: Duration::from_millis(20),
            },
            accept,
            move |e| sink.lock().unwrap().push(e),
        );
        (live, events, w)
    }

    #[tokio::test]
    async fn picks_up_edits_and_keeps_the_last_good_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, doc("ollama,gpt-oss:20b")).unwrap();
        let (live, events, _w) = start(&path, |_| Ok(()));
        assert_eq!(live.current().router.default.model, "gpt-oss:20b");

        // An atomic replace (how editors and ccr-setup write).
        let tmp = dir.path().join("config.json.tmp");
        std::fs::write(&tmp, doc("ollama,qwen3:8b")).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert!(wait_for(|| live.current().router.default.model == "qwen3:8b").await);
        assert_eq!(live.generation(), 1);

        // A bad edit: reported, not applied.
        std::fs::write(&path, doc("nosuch,model")).unwrap();
        assert!(
            wait_for(|| events
                .lock()
                .unwrap()
                .iter()
                .any(|e| matches!(e, ReloadEvent::Rejected { .. })))
            .await
        );
        assert_eq!(live.current().router.default.model, "qwen3:8b");
        assert_eq!(live.generation(), 1);
        let rejected = events.lock().unwrap().iter().find_map(|e| match e {
            ReloadEvent::Rejected { error } => Some(error.clone()),
            _ => None,
        });
        assert!(rejected.unwrap().contains("Router.default"));

        // Broken JSON, then a fix written in place.
        std::fs::write(&path, "{ not json").unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(live.current().router.default.model, "qwen3:8b");
        std::fs::write(&path, doc("ollama,gpt-oss:20b")).unwrap();
        assert!(wait_for(|| live.current().router.default.model == "gpt-oss:20b").await);
        assert_eq!(live.generation(), 2);
    }

    #[tokio::test]
    async fn accept_can_veto_and_host_changes_need_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, doc("ollama,gpt-oss:20b")).unwrap();
        let (live, events, _w) = start(&path, |c| {
            if c.api_key.is_none() {
                Err("bound beyond loopback: APIKEY cannot be removed".into())
            } else {
                Ok(())
            }
        });
        std::fs::write(&path, doc("ollama,qwen3:8b")).unwrap();
        assert!(wait_for(|| !events.lock().unwrap().is_empty()).await);
        assert!(
            matches!(&events.lock().unwrap()[0], ReloadEvent::Rejected { error } if error.contains("APIKEY"))
        );
        assert_eq!(live.generation(), 0);

        let mut v: serde_json::Value = serde_json::from_str(&doc("ollama,qwen3:8b")).unwrap();
        v["APIKEY"] = json!("k");
        v["PORT"] = json!(4000);
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(wait_for(|| live.generation() == 1).await);
        assert_eq!(live.current().router.default.model, "qwen3:8b");
        assert!(events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, ReloadEvent::RestartNeeded { what } if what.contains("4000"))));
    }

    #[tokio::test]
    async fn touching_without_a_change_does_not_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, doc("ollama,gpt-oss:20b")).unwrap();
        let (live, events, _w) = start(&path, |_| Ok(()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::fs::write(&path, doc("ollama,gpt-oss:20b")).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(live.generation(), 0);
        assert!(
            events.lock().unwrap().is_empty(),
            "{:?}",
            events.lock().unwrap()
        );
    }
}

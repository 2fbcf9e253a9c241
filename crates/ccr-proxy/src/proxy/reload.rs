//! The config in force, swappable while requests run.
//!
//! The server reads its config through a [`LiveConfig`]: each request takes the
//! current `Arc<Config>` once and uses it to the end, so a reload never changes a
//! request half-way. What decides *when* to swap (the file watcher) lives in the CLI,
//! `ccr_setup::config_watch`, so this crate needs no file-event dependency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::Config;

/// The config in force, swappable while requests run.
#[derive(Debug)]
pub struct LiveConfig {
    current: RwLock<Arc<Config>>,
    generation: AtomicU64,
}

impl LiveConfig {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(LiveConfig {
            current: RwLock::new(Arc::new(config)),
            generation: AtomicU64::new(0),
        })
    }

    /// The config in force now. Take it once per request.
    pub fn current(&self) -> Arc<Config> {
        // Replacing an Arc cannot panic half-way, so a poisoned lock still holds a
        // complete config.
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times the config was replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn replace(&self, config: Config) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

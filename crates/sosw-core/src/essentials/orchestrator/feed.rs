//! Where a running orchestrator gets its config: fixed, or re-read from a [`ConfigSource`] when older
//! than a TTL, so labourers added, changed or removed in the config table take effect without a
//! redeploy.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::clock::Clock;
use crate::config::{ConfigSource, OrchestratorConfig, load_essential_config};
use crate::error::Result;

/// The name of the orchestrator function, whose config row is `sosw_orchestrator_config`.
pub const ORCHESTRATOR_FUNCTION: &str = "sosw_orchestrator";

/// Default TTL of a reloading feed: a labourer change is seen within half a one-minute schedule.
pub const DEFAULT_CONFIG_TTL: Duration = Duration::from_secs(30);

/// The orchestrator's config, fixed or reloading.
pub struct ConfigFeed {
    inner: Feed,
}

enum Feed {
    Fixed(Arc<OrchestratorConfig>),
    Reloading(Reloading),
}

struct Reloading {
    source: Arc<dyn ConfigSource>,
    function_name: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    loaded: Mutex<Option<(Arc<OrchestratorConfig>, DateTime<Utc>)>>,
}

impl fmt::Debug for ConfigFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Feed::Fixed(_) => f.write_str("ConfigFeed::Fixed"),
            Feed::Reloading(r) => f
                .debug_struct("ConfigFeed::Reloading")
                .field("function_name", &r.function_name)
                .field("ttl", &r.ttl)
                .finish(),
        }
    }
}

impl ConfigFeed {
    /// Always `config`.
    pub fn fixed(config: OrchestratorConfig) -> Self {
        ConfigFeed {
            inner: Feed::Fixed(Arc::new(config)),
        }
    }

    /// `<function_name>_config` layered over `sosw_essential_config` from `source`
    /// ([`load_essential_config`]), read again once it is older than `ttl` by `clock`.
    pub fn reloading(
        source: Arc<dyn ConfigSource>,
        function_name: impl Into<String>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ConfigFeed {
            inner: Feed::Reloading(Reloading {
                source,
                function_name: function_name.into(),
                ttl,
                clock,
                loaded: Mutex::new(None),
            }),
        }
    }

    /// The same feed holding `config`, read from its source at `loaded_at` (the copy a process read at
    /// start): a reloading feed reads it again only once it is older than the TTL, instead of at the
    /// first run. A fixed feed stays as it was.
    pub fn with_loaded(self, config: OrchestratorConfig, loaded_at: DateTime<Utc>) -> Self {
        if let Feed::Reloading(reloading) = &self.inner {
            reloading.store(Arc::new(config), loaded_at);
        }
        self
    }

    /// The config now. A reloading feed whose reload fails keeps the config it had (and logs why); it
    /// fails only when it never loaded one.
    pub async fn current(&self) -> Result<Arc<OrchestratorConfig>> {
        match &self.inner {
            Feed::Fixed(config) => Ok(Arc::clone(config)),
            Feed::Reloading(reloading) => reloading.current().await,
        }
    }
}

impl Reloading {
    async fn current(&self) -> Result<Arc<OrchestratorConfig>> {
        let now = self.clock.now();
        let previous = self.snapshot();
        if let Some((config, loaded_at)) = &previous
            && !self.is_stale(*loaded_at, now)
        {
            return Ok(Arc::clone(config));
        }
        let loaded = load_essential_config::<OrchestratorConfig, _>(
            self.source.as_ref(),
            &self.function_name,
            json!({}),
            None,
        )
        .await;
        match (loaded, previous) {
            (Ok(config), _) => {
                let config = Arc::new(config);
                self.store(Arc::clone(&config), now);
                Ok(config)
            }
            (Err(e), Some((config, _))) => {
                tracing::warn!(error = %e.with_causes(), "reloading the orchestrator config failed; keeping the last one");
                // Try again after another TTL rather than on every round.
                self.store(Arc::clone(&config), now);
                Ok(config)
            }
            (Err(e), None) => Err(e),
        }
    }

    fn is_stale(&self, loaded_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let age = (now - loaded_at).to_std().unwrap_or(Duration::ZERO);
        age >= self.ttl
    }

    fn snapshot(&self) -> Option<(Arc<OrchestratorConfig>, DateTime<Utc>)> {
        self.loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn store(&self, config: Arc<OrchestratorConfig>, at: DateTime<Utc>) {
        *self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((config, at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::StaticConfigSource;
    use async_trait::async_trait;
    use serde_json::Value;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A config source whose document can be changed or made to fail.
    struct Table {
        document: Mutex<Value>,
        failing: AtomicBool,
    }

    #[async_trait]
    impl ConfigSource for Table {
        async fn get_config(&self, name: &str) -> Result<Option<Value>> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(crate::error::Error::invalid("config", "table unavailable"));
            }
            if name == "sosw_orchestrator_config" {
                return Ok(Some(self.document.lock().expect("lock").clone()));
            }
            Ok(None)
        }
    }

    fn labourers(doc: &Value) -> Value {
        json!({"task_config": {"labourers": doc}})
    }

    fn ids(config: &OrchestratorConfig) -> Vec<String> {
        config.task_config.labourers.keys().cloned().collect()
    }

    /// A working table with `labourers`.
    fn table_of(doc: &Value) -> Arc<Table> {
        Arc::new(Table {
            document: Mutex::new(labourers(doc)),
            failing: AtomicBool::new(false),
        })
    }

    /// A feed of `table`, reloaded after 30 s by `clock`.
    fn feed_30s(table: Arc<Table>, clock: Arc<ManualClock>) -> ConfigFeed {
        ConfigFeed::reloading(table, ORCHESTRATOR_FUNCTION, Duration::from_secs(30), clock)
    }

    #[tokio::test]
    async fn a_labourer_change_is_seen_after_the_ttl_and_a_failed_reload_keeps_the_last_config() {
        let table = table_of(&json!({"a": {}}));
        let clock = Arc::new(ManualClock::at_secs(1_700_000_000));
        let feed = feed_30s(table.clone(), clock.clone());
        assert_eq!(ids(&feed.current().await.expect("config")), ["a"]);
        *table.document.lock().expect("lock") = labourers(&json!({"b": {}, "c": {}}));
        clock.advance_secs(29);
        assert_eq!(
            ids(&feed.current().await.expect("config")),
            ["a"],
            "within the TTL"
        );
        clock.advance_secs(1);
        assert_eq!(ids(&feed.current().await.expect("config")), ["b", "c"]);
        table.failing.store(true, Ordering::SeqCst);
        clock.advance_secs(60);
        assert_eq!(ids(&feed.current().await.expect("kept")), ["b", "c"]);
    }

    #[tokio::test]
    async fn a_feed_given_the_config_read_at_start_reads_it_again_only_after_the_ttl() {
        let table = table_of(&json!({"b": {}}));
        let clock = Arc::new(ManualClock::at_secs(1_700_000_000));
        let at_start: OrchestratorConfig =
            crate::config::parse_config("test", labourers(&json!({"a": {}}))).expect("config");
        let feed = feed_30s(table.clone(), clock.clone()).with_loaded(at_start, clock.now());
        assert_eq!(ids(&feed.current().await.expect("config")), ["a"]);
        clock.advance_secs(30);
        assert_eq!(ids(&feed.current().await.expect("config")), ["b"]);
    }

    #[tokio::test]
    async fn a_feed_that_never_loaded_fails_and_a_fixed_feed_never_does() {
        let table = Arc::new(Table {
            document: Mutex::new(json!({})),
            failing: AtomicBool::new(true),
        });
        let feed = ConfigFeed::reloading(
            table,
            ORCHESTRATOR_FUNCTION,
            DEFAULT_CONFIG_TTL,
            Arc::new(ManualClock::at_secs(0)),
        );
        assert!(feed.current().await.is_err());
        let fixed = ConfigFeed::fixed(OrchestratorConfig::default());
        assert!(fixed.current().await.is_ok());
        let empty = ConfigFeed::reloading(
            Arc::new(StaticConfigSource::default()),
            ORCHESTRATOR_FUNCTION,
            DEFAULT_CONFIG_TTL,
            Arc::new(ManualClock::at_secs(0)),
        );
        assert!(ids(&empty.current().await.expect("defaults")).is_empty());
    }
}

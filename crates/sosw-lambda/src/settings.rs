//! What an essential's process reads from its environment: where its config rows are, and which
//! function it is. Read once per container by [`Settings::from_env`]; [`Settings::from_lookup`] takes
//! any lookup so the rules are tested without touching the process environment.

use sosw_aws::config_source::{DEFAULT_CONFIG_ENV, DEFAULT_CONFIG_TABLE};
use sosw_core::processor::FUNCTION_NAME_VAR;
use sosw_core::{Error, Result};

/// The scheduler's standard function name (sosw 0.7's).
pub const SCHEDULER_FUNCTION: &str = "sosw_scheduler";

/// The orchestrator's standard function name.
pub const ORCHESTRATOR_FUNCTION: &str = sosw_core::essentials::orchestrator::ORCHESTRATOR_FUNCTION;

/// The scavenger's standard function name.
pub const SCAVENGER_FUNCTION: &str = sosw_core::essentials::scavenger::FUNCTION_NAME;

/// The worker assistant's standard function name.
pub const WORKER_ASSISTANT_FUNCTION: &str = sosw_core::essentials::worker_assistant::FUNCTION_NAME;

/// The DynamoDB table holding the config rows (default `config`, sosw 0.7's).
pub const CONFIG_TABLE_VAR: &str = "SOSW_CONFIG_TABLE";

/// The `env` of the config rows read (default `production`, sosw 0.7's).
pub const CONFIG_ENV_VAR: &str = "SOSW_CONFIG_ENV";

/// The name whose `<name>_config` row is read (default: the function's name).
pub const CONFIG_NAME_VAR: &str = "SOSW_CONFIG_NAME";

/// `true` addresses S3 buckets by path (`<endpoint>/<bucket>/<key>`), which S3 emulators need
/// (default `false`, what AWS wants).
pub const S3_FORCE_PATH_STYLE_VAR: &str = "SOSW_S3_FORCE_PATH_STYLE";

/// `false` turns the EMF metric lines off (default `true`).
pub const METRICS_VAR: &str = "SOSW_METRICS";

/// The CloudWatch namespace of the metrics (default [`crate::metrics::DEFAULT_NAMESPACE`]).
pub const METRICS_NAMESPACE_VAR: &str = "SOSW_METRICS_NAMESPACE";

/// `false` stops the orchestrator counting each labourer's queue for the `queue_length` metric
/// (default `true`; on DynamoDB the count reads the whole queue).
pub const METRICS_QUEUE_LENGTHS_VAR: &str = "SOSW_METRICS_QUEUE_LENGTHS";

/// How far the orchestrator counts each labourer's queue for the `queue_length` metric (default
/// [`DEFAULT_METRICS_QUEUE_LENGTH_CAP`]; the metric then says the cap for a deeper queue). On
/// DynamoDB a count reads every item it counts: the cap bounds what a deep queue costs each run.
pub const METRICS_QUEUE_LENGTH_CAP_VAR: &str = "SOSW_METRICS_QUEUE_LENGTH_CAP";

/// 100,000: on the lean layout a count that far is about 1,650 read units (eventually consistent).
pub const DEFAULT_METRICS_QUEUE_LENGTH_CAP: u64 = 100_000;

/// The EventBridge rule whose state switches the scheduler's sibling chains (no default: unset, a
/// sibling is spawned only with `force` or `auto_spawning`). The essentials' stack sets its schedule.
pub const SCHEDULE_RULE_VAR: &str = "SOSW_SCHEDULE_RULE";

/// The task tables' layout: `sosw07` (sosw 0.7's tables, the default; `0.7` is read as the same) or
/// `lean` (one table without indexes, docs/layout-lean.md).
pub const LAYOUT_VAR: &str = "SOSW_LAYOUT";

/// The lean layout's table (default `sosw_lean`, after the config's `table_prefix`). Read only with
/// `SOSW_LAYOUT=lean`.
pub const LEAN_TABLE_VAR: &str = "SOSW_LEAN_TABLE";

/// The lean layout's shards per labourer, 1 to 64 (default 4). Fixed for a table: the table records
/// it, and a process set to another count is refused by name. Read only with `SOSW_LAYOUT=lean`.
pub const LEAN_SHARDS_VAR: &str = "SOSW_LEAN_SHARDS";

/// How the lean layout keeps job counters: `batched` (the default: closed tasks counted from the lean
/// table's stream, one update per job and scavenger run) or `immediate` (each closer adds its task to
/// the job record at once, as on sosw 0.7's tables; for a lean table without a stream). Read only
/// with `SOSW_LAYOUT=lean`.
pub const LEAN_JOB_COUNTS_VAR: &str = "SOSW_LEAN_JOB_COUNTS";

/// `true` (the default) makes the lean layout's worker assistant close a completed task in one move
/// (an eventually consistent read of the claim, then 2 write units); `false` marks the completion and
/// archives it (3 write units, no read). Read only with `SOSW_LAYOUT=lean` (docs/layout-lean.md,
/// "Completing and closing in one move").
pub const LEAN_CLOSE_ON_COMPLETION_VAR: &str = "SOSW_LEAN_CLOSE_ON_COMPLETION";
/// With the lean layout: `false` keeps the claim receipt (`sosw_claim`) out of workers' events, so
/// they are exactly sosw 0.7's (the orchestrator reads it; default `true`).
pub const LEAN_CLAIM_RECEIPTS_VAR: &str = "SOSW_LEAN_CLAIM_RECEIPTS";
/// With the lean layout: `false` writes every queued task as an item of its own; `true` (the default)
/// packs the tasks an enqueue writes to one queue partition into items of about 1 KB, one write unit
/// for several tasks (docs/layout-lean.md, "Packed queued items"). Only the scheduler and other
/// enqueuers read it; every process reads both.
pub const LEAN_PACK_QUEUED_VAR: &str = "SOSW_LEAN_PACK_QUEUED";

/// The lean table's name when `SOSW_LEAN_TABLE` is not set (the config's `table_prefix` goes in front).
pub const DEFAULT_LEAN_TABLE: &str = "sosw_lean";

/// The lean layout's shards per labourer when `SOSW_LEAN_SHARDS` is not set.
pub const DEFAULT_LEAN_SHARDS: u32 = 4;

/// Which DynamoDB layout holds a deployment's tasks (`SOSW_LAYOUT`). Every essential, worker reporting
/// to the store and `sosw --aws` of a deployment must read the same one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreLayout {
    /// sosw 0.7's tables (`sosw_tasks`, `sosw_closed_tasks`, `sosw_retry_tasks`, named by the config's
    /// `task_config`): the default, and the only layout sosw 0.7's Python essentials share.
    #[default]
    Sosw07,
    /// The lean layout: one table (hash `pk`, range `sk`, no index), job records and the ecology state
    /// in the config's tables as on 0.7.
    Lean(LeanLayout),
}

/// The lean layout's table and shards, validated (shards 1 to 64, a table name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanLayout {
    table: Option<String>,
    shards: u32,
    batched_job_counts: bool,
    close_on_completion: bool,
    claim_receipts: bool,
    pack_queued: bool,
}

impl LeanLayout {
    /// The lean layout over `table` (`None`: `<table_prefix>sosw_lean`) with `shards` shards per
    /// labourer; an error unless `shards` is 1 to 64.
    pub fn new(table: Option<String>, shards: u32) -> Result<Self> {
        if !(1..=64).contains(&shards) {
            return Err(Error::invalid(
                "environment variable",
                format!("{LEAN_SHARDS_VAR} is `{shards}`; set it to a whole number from 1 to 64"),
            ));
        }
        Ok(LeanLayout {
            table,
            shards,
            batched_job_counts: true,
            close_on_completion: true,
            claim_receipts: true,
            pack_queued: true,
        })
    }

    /// The same layout with job counters kept `batched` (from the table's stream, the default) or
    /// not (`SOSW_LEAN_JOB_COUNTS`).
    pub fn with_batched_job_counts(self, batched: bool) -> Self {
        LeanLayout {
            batched_job_counts: batched,
            ..self
        }
    }

    /// The same layout closing completed tasks in one move, or not (`SOSW_LEAN_CLOSE_ON_COMPLETION`).
    pub fn with_close_on_completion(self, close: bool) -> Self {
        LeanLayout {
            close_on_completion: close,
            ..self
        }
    }

    /// Whether a completion closes the task in the same move.
    pub fn close_on_completion(&self) -> bool {
        self.close_on_completion
    }

    /// The same layout giving claim receipts in workers' events, or not (`SOSW_LEAN_CLAIM_RECEIPTS`).
    pub fn with_claim_receipts(self, receipts: bool) -> Self {
        LeanLayout {
            claim_receipts: receipts,
            ..self
        }
    }

    /// The same layout packing queued tasks, or not (`SOSW_LEAN_PACK_QUEUED`).
    pub fn with_pack_queued(self, pack: bool) -> Self {
        LeanLayout {
            pack_queued: pack,
            ..self
        }
    }

    /// Whether an enqueue packs queued tasks into shared items.
    pub fn pack_queued(&self) -> bool {
        self.pack_queued
    }

    /// Whether claims give receipts for workers' events.
    pub fn claim_receipts(&self) -> bool {
        self.claim_receipts
    }

    /// Whether closed tasks are counted into their jobs in batches, from the table's stream.
    pub fn batched_job_counts(&self) -> bool {
        self.batched_job_counts
    }

    /// The table set by `SOSW_LEAN_TABLE`, if any.
    pub fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    /// The table's name for a deployment whose config has `table_prefix`: `SOSW_LEAN_TABLE` as given,
    /// else `<table_prefix>sosw_lean`.
    pub fn table_name(&self, table_prefix: &str) -> String {
        self.table
            .clone()
            .unwrap_or_else(|| format!("{table_prefix}{DEFAULT_LEAN_TABLE}"))
    }

    /// Shards per labourer.
    pub fn shards(&self) -> u32 {
        self.shards
    }
}

impl StoreLayout {
    /// The layout this process's environment names (`SOSW_LAYOUT`, `SOSW_LEAN_TABLE`,
    /// `SOSW_LEAN_SHARDS`).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The layout `lookup` names; blank values count as unset. An unknown layout or a bad shard count
    /// is an error naming the variable and the values it takes.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let read = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let shards = match read(LEAN_SHARDS_VAR) {
            None => DEFAULT_LEAN_SHARDS,
            Some(value) => value.parse::<u32>().map_err(|_| {
                Error::invalid(
                    "environment variable",
                    format!(
                        "{LEAN_SHARDS_VAR} is `{value}`; set it to a whole number from 1 to 64"
                    ),
                )
            })?,
        };
        let batched = match read(LEAN_JOB_COUNTS_VAR).as_deref() {
            None | Some("batched") => true,
            Some("immediate") => false,
            Some(other) => {
                return Err(Error::invalid(
                    "environment variable",
                    format!(
                        "{LEAN_JOB_COUNTS_VAR} is `{other}`; set it to `batched` (job counters from \
                         the lean table's stream, the default) or `immediate` (one update per \
                         closed task)"
                    ),
                ));
            }
        };
        let close = match read(LEAN_CLOSE_ON_COMPLETION_VAR) {
            None => true,
            Some(value) => parse_bool(LEAN_CLOSE_ON_COMPLETION_VAR, &value)?,
        };
        let receipts = match read(LEAN_CLAIM_RECEIPTS_VAR) {
            None => true,
            Some(value) => parse_bool(LEAN_CLAIM_RECEIPTS_VAR, &value)?,
        };
        let pack = match read(LEAN_PACK_QUEUED_VAR) {
            None => true,
            Some(value) => parse_bool(LEAN_PACK_QUEUED_VAR, &value)?,
        };
        let lean = LeanLayout::new(read(LEAN_TABLE_VAR), shards)?
            .with_batched_job_counts(batched)
            .with_close_on_completion(close)
            .with_claim_receipts(receipts)
            .with_pack_queued(pack);
        match read(LAYOUT_VAR).as_deref() {
            None | Some("sosw07" | "0.7") => Ok(StoreLayout::Sosw07),
            Some("lean") => Ok(StoreLayout::Lean(lean)),
            Some(other) => Err(Error::invalid(
                "environment variable",
                format!(
                    "{LAYOUT_VAR} is `{other}`; set it to `sosw07` (sosw 0.7's tables, the default) \
                     or `lean` (the lean layout, docs/layout-lean.md)"
                ),
            )),
        }
    }

    /// `sosw07` or `lean`, as `SOSW_LAYOUT` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            StoreLayout::Sosw07 => "sosw07",
            StoreLayout::Lean(_) => "lean",
        }
    }
}

/// An essential's settings from the environment. Every default is stated on its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The running function's name: `AWS_LAMBDA_FUNCTION_NAME`, else the essential's own name
    /// (`sosw_scheduler`, ...). A scheduler spawns its siblings as this function.
    pub function_name: String,
    /// Whose config row is read, `<config_name>_config`: `SOSW_CONFIG_NAME`, else `function_name`
    /// (as sosw 0.7 read `<AWS_LAMBDA_FUNCTION_NAME>_config`).
    pub config_name: String,
    /// The config table: `SOSW_CONFIG_TABLE`, else `config`.
    pub config_table: String,
    /// The config rows' `env`: `SOSW_CONFIG_ENV`, else `production`.
    pub config_env: String,
    /// S3 path-style addressing: `SOSW_S3_FORCE_PATH_STYLE`, else `false`.
    pub s3_force_path_style: bool,
    /// EMF metric lines on stdout: `SOSW_METRICS`, else `true`.
    pub metrics_enabled: bool,
    /// The metrics' namespace: `SOSW_METRICS_NAMESPACE`, else `sosw`.
    pub metrics_namespace: String,
    /// The orchestrator's `queue_length` metric: `SOSW_METRICS_QUEUE_LENGTHS`, else `true`.
    pub metrics_queue_lengths: bool,
    /// How far it counts: `SOSW_METRICS_QUEUE_LENGTH_CAP`, else 100,000.
    pub metrics_queue_length_cap: u64,
    /// The rule the scheduler's sibling guard reads: `SOSW_SCHEDULE_RULE`, else none.
    pub schedule_rule: Option<String>,
    /// The task tables' layout: `SOSW_LAYOUT` (with `SOSW_LEAN_TABLE`, `SOSW_LEAN_SHARDS`), else
    /// sosw 0.7's tables.
    pub layout: StoreLayout,
}

impl Settings {
    /// The settings of the essential named `essential` (`sosw_scheduler`, ...) from this process's
    /// environment.
    pub fn from_env(essential: &str) -> Result<Self> {
        Self::from_lookup(essential, |name| std::env::var(name).ok())
    }

    /// The settings of `essential` from `lookup` (a variable's value, `None` when unset). Blank values
    /// count as unset.
    pub fn from_lookup(essential: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let read = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let flag = |name: &str, default: bool| match read(name) {
            None => Ok(default),
            Some(value) => parse_bool(name, &value),
        };
        let function_name = read(FUNCTION_NAME_VAR).unwrap_or_else(|| essential.to_string());
        Ok(Settings {
            config_name: read(CONFIG_NAME_VAR).unwrap_or_else(|| function_name.clone()),
            function_name,
            config_table: read(CONFIG_TABLE_VAR).unwrap_or_else(|| DEFAULT_CONFIG_TABLE.into()),
            config_env: read(CONFIG_ENV_VAR).unwrap_or_else(|| DEFAULT_CONFIG_ENV.into()),
            s3_force_path_style: flag(S3_FORCE_PATH_STYLE_VAR, false)?,
            metrics_enabled: flag(METRICS_VAR, true)?,
            metrics_namespace: read(METRICS_NAMESPACE_VAR)
                .unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.into()),
            metrics_queue_lengths: flag(METRICS_QUEUE_LENGTHS_VAR, true)?,
            metrics_queue_length_cap: match read(METRICS_QUEUE_LENGTH_CAP_VAR) {
                None => DEFAULT_METRICS_QUEUE_LENGTH_CAP,
                Some(value) => value.parse::<u64>().ok().filter(|cap| *cap > 0).ok_or_else(|| {
                    Error::invalid(
                        "environment variable",
                        format!(
                            "{METRICS_QUEUE_LENGTH_CAP_VAR} is `{value}`; set it to a whole number \
                             of tasks, 1 or more"
                        ),
                    )
                })?,
            },
            schedule_rule: read(SCHEDULE_RULE_VAR),
            layout: StoreLayout::from_lookup(&lookup)?,
        })
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Error::invalid(
            "environment variable",
            format!("{name} is `{value}`; set it to `true` or `false`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup("sosw_scheduler", |name| vars.get(name).cloned())
    }

    #[test]
    fn the_lean_layout_reads_its_job_counts_and_completion_settings() -> Result<()> {
        let lean = |vars: &[(&str, &str)]| -> Result<LeanLayout> {
            let mut all = vec![(LAYOUT_VAR, "lean")];
            all.extend_from_slice(vars);
            match settings(&all)?.layout {
                StoreLayout::Lean(lean) => Ok(lean),
                other => panic!("lean, not {other:?}"),
            }
        };
        let default = lean(&[])?;
        assert!(
            default.batched_job_counts()
                && default.close_on_completion()
                && default.claim_receipts()
                && default.pack_queued()
        );
        let set = lean(&[
            (LEAN_JOB_COUNTS_VAR, "immediate"),
            (LEAN_CLOSE_ON_COMPLETION_VAR, "false"),
            (LEAN_CLAIM_RECEIPTS_VAR, "false"),
            (LEAN_PACK_QUEUED_VAR, "no"),
        ])?;
        assert!(!set.batched_job_counts() && !set.close_on_completion() && !set.claim_receipts());
        assert!(!set.pack_queued());
        for (var, bad) in [
            (LEAN_JOB_COUNTS_VAR, "later"),
            (LEAN_CLOSE_ON_COMPLETION_VAR, "maybe"),
            (LEAN_CLAIM_RECEIPTS_VAR, "sometimes"),
        ] {
            let err = settings(&[(LAYOUT_VAR, "lean"), (var, bad)]).expect_err("refused");
            assert!(err.to_string().contains(var), "{err}");
        }
        Ok(())
    }

    #[test]
    fn an_empty_environment_gives_sosw_07_defaults() -> Result<()> {
        let s = settings(&[])?;
        assert_eq!(s.function_name, "sosw_scheduler");
        assert_eq!(s.config_name, "sosw_scheduler");
        assert_eq!(
            (s.config_table.as_str(), s.config_env.as_str()),
            ("config", "production")
        );
        assert!(!s.s3_force_path_style);
        assert!(s.metrics_enabled && s.metrics_queue_lengths);
        assert_eq!(s.metrics_queue_length_cap, DEFAULT_METRICS_QUEUE_LENGTH_CAP);
        assert_eq!(s.metrics_namespace, "sosw");
        assert_eq!(s.schedule_rule, None);
        assert_eq!(s.layout, StoreLayout::Sosw07);
        Ok(())
    }

    #[test]
    fn metrics_can_be_renamed_or_turned_off() -> Result<()> {
        let s = settings(&[
            (METRICS_VAR, "false"),
            (METRICS_NAMESPACE_VAR, "team/sosw"),
            (METRICS_QUEUE_LENGTHS_VAR, "no"),
            (METRICS_QUEUE_LENGTH_CAP_VAR, "5000"),
        ])?;
        assert!(!s.metrics_enabled && !s.metrics_queue_lengths);
        assert_eq!(s.metrics_queue_length_cap, 5_000);
        assert_eq!(s.metrics_namespace, "team/sosw");
        let err = settings(&[(METRICS_VAR, "sometimes")]).expect_err("not a bool");
        assert!(err.to_string().contains(METRICS_VAR), "{err}");
        Ok(())
    }

    #[test]
    fn the_config_row_follows_the_function_name_unless_overridden() -> Result<()> {
        let s = settings(&[(FUNCTION_NAME_VAR, "dev_sosw_scheduler")])?;
        assert_eq!(s.config_name, "dev_sosw_scheduler");
        let s = settings(&[
            (FUNCTION_NAME_VAR, "dev_sosw_scheduler"),
            (CONFIG_NAME_VAR, "sosw_scheduler"),
            (CONFIG_TABLE_VAR, "dev_config"),
            (CONFIG_ENV_VAR, " staging "),
            (S3_FORCE_PATH_STYLE_VAR, "TRUE"),
        ])?;
        assert_eq!(s.function_name, "dev_sosw_scheduler");
        assert_eq!(s.config_name, "sosw_scheduler");
        assert_eq!(
            (s.config_table.as_str(), s.config_env.as_str()),
            ("dev_config", "staging")
        );
        assert!(s.s3_force_path_style);
        Ok(())
    }

    #[test]
    fn blank_values_are_unset_and_a_bad_flag_names_the_variable() {
        let s = settings(&[(CONFIG_TABLE_VAR, "  "), (FUNCTION_NAME_VAR, "")]);
        assert_eq!(
            s.map(|s| (s.config_table, s.function_name)).ok(),
            Some(("config".to_string(), "sosw_scheduler".to_string()))
        );
        let err = settings(&[(S3_FORCE_PATH_STYLE_VAR, "maybe")]).expect_err("not a bool");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains(S3_FORCE_PATH_STYLE_VAR), "{err}");
    }

    #[test]
    fn the_layout_is_sosw_07_unless_lean_is_named_and_bad_values_name_the_variable() -> Result<()> {
        assert_eq!(
            settings(&[(LAYOUT_VAR, "0.7")])?.layout,
            StoreLayout::Sosw07
        );
        assert_eq!(
            settings(&[(LAYOUT_VAR, "sosw07"), (LEAN_SHARDS_VAR, "8")])?.layout,
            StoreLayout::Sosw07
        );
        let StoreLayout::Lean(lean) = settings(&[(LAYOUT_VAR, " lean ")])?.layout else {
            return Err(Error::invalid("test", "lean expected"));
        };
        assert_eq!((lean.table(), lean.shards()), (None, DEFAULT_LEAN_SHARDS));
        assert_eq!(lean.table_name("dev_"), "dev_sosw_lean");
        let StoreLayout::Lean(lean) = settings(&[
            (LAYOUT_VAR, "lean"),
            (LEAN_TABLE_VAR, "tasks_lean"),
            (LEAN_SHARDS_VAR, "16"),
        ])?
        .layout
        else {
            return Err(Error::invalid("test", "lean expected"));
        };
        assert_eq!(
            (lean.table_name("dev_"), lean.shards()),
            ("tasks_lean".into(), 16)
        );
        for (vars, named, allowed) in [
            (vec![(LAYOUT_VAR, "fast")], LAYOUT_VAR, "`sosw07`"),
            (
                vec![(LAYOUT_VAR, "lean"), (LEAN_SHARDS_VAR, "0")],
                LEAN_SHARDS_VAR,
                "1 to 64",
            ),
            (
                vec![(LAYOUT_VAR, "lean"), (LEAN_SHARDS_VAR, "65")],
                LEAN_SHARDS_VAR,
                "1 to 64",
            ),
            (vec![(LEAN_SHARDS_VAR, "four")], LEAN_SHARDS_VAR, "1 to 64"),
        ] {
            let err = settings(&vars).expect_err("a bad layout setting");
            assert!(!err.is_retryable());
            let text = err.to_string();
            assert!(text.contains(named) && text.contains(allowed), "{text}");
        }
        Ok(())
    }
}

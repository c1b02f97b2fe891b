//! `sosw migrate-layout --aws`: moves a deployment's waiting tasks from sosw 0.7's tables to the lean
//! table ([`sosw::aws::dynamodb::lean::migrate`]; docs/layout-lean.md and docs/deploy.md, "Migrating
//! to the lean layout").

use std::process::ExitCode;

use chrono::Utc;
use clap::Args;
use serde_json::json;
use sosw::aws::dynamodb::DynamoTaskStore;
use sosw::aws::dynamodb::lean::migrate::{
    DEFAULT_CONCURRENCY, Migration, MigrationReport, MigrationSettings,
};
use sosw::aws::dynamodb::lean::reshard::{ReshardSettings, reshard};
use sosw::aws::dynamodb::lean::{LeanOptions, LeanTaskStore};
use sosw::lambda::aws::{Clients, sdk_config};
use sosw::lambda::settings::{LAYOUT_VAR, LeanLayout, StoreLayout};

use super::inspect::{Output, json_line};
use super::ops::orchestrator_config;
use super::{CliError, CliResult, Global};

/// `sosw migrate-layout`.
#[derive(Debug, Args)]
pub struct MigrateLayoutArgs {
    /// Count what would move (queued and retry rows, running ones left) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The lean table. Default: SOSW_LEAN_TABLE, else `<table_prefix>sosw_lean`.
    #[arg(long, value_name = "TABLE")]
    pub lean_table: Option<String>,
    /// Shards per labourer of the lean table, 1 to 64: the essentials' SOSW_LEAN_SHARDS. Default:
    /// SOSW_LEAN_SHARDS, else 4.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub shards: Option<u32>,
    /// Change the lean table's shard count instead (to --shards): move its queued tasks to their
    /// new shards. Every essential is refused while it runs, and a change of the count refuses to
    /// start while a task is running: stop the scheduler and orchestrator first
    /// (docs/layout-lean.md, "Changing the shard count"). Needs --shards: the new count is never
    /// taken from SOSW_LEAN_SHARDS or the default.
    #[arg(long, requires = "shards")]
    pub reshard: bool,
    /// With --reshard: also file the queued tasks of each labourer with per-key fairness under
    /// their key's partitions (tasks queued before its `fairness` path was recorded, or under an
    /// earlier path), so its orchestrator serves them fairly at once. With --shards at the
    /// recorded count only this happens, and running tasks may stay running (docs/layout-lean.md,
    /// "Per-key fairness").
    #[arg(long, requires = "reshard")]
    pub refile_keys: bool,
    /// With --reshard: the count of labourers whose tasks were written before the table recorded
    /// its count.
    #[arg(long, value_name = "N", requires = "reshard")]
    pub from_shards: Option<u32>,
    /// Print progress every N tasks (on stderr).
    #[arg(long, default_value_t = 500, value_name = "N")]
    pub progress_every: u64,
    /// Tasks moved at once, 1 to 256 (each move is two to four requests in a row).
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY as u16, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// `--output text|json`.
    #[command(flatten)]
    pub output: Output,
}

/// Runs `sosw migrate-layout`.
pub async fn migrate_layout(global: &Global, args: MigrateLayoutArgs) -> CliResult {
    if !global.aws {
        return Err(CliError::new(
            "migrate-layout moves tasks between DynamoDB layouts: pass --aws (the state file has one \
             layout only)",
        ));
    }
    let config = orchestrator_config(global).await?;
    let task_config = &config.task_config;
    // The lean table and shards as the essentials read them (SOSW_LEAN_TABLE, SOSW_LEAN_SHARDS),
    // whatever SOSW_LAYOUT says now: the migration runs before the switch.
    let from_env = match StoreLayout::from_lookup(|name| match name {
        LAYOUT_VAR => Some("lean".into()),
        _ => std::env::var(name).ok(),
    })? {
        StoreLayout::Lean(lean) => lean,
        StoreLayout::Sosw07 => LeanLayout::new(None, sosw::lambda::settings::DEFAULT_LEAN_SHARDS)?,
    };
    let lean = LeanLayout::new(
        args.lean_table
            .clone()
            .or(from_env.table().map(str::to_owned)),
        args.shards.unwrap_or(from_env.shards()),
    )?;
    let tables = task_config.table_names();
    let options = LeanOptions {
        table: lean.table_name(&task_config.table_prefix),
        jobs_table: tables.jobs.clone(),
        ecology_table: tables.ecology.clone(),
        shards: lean.shards(),
        ..LeanOptions::default()
    };
    let clients = Clients::new(sdk_config().await);
    if args.reshard {
        let store = LeanTaskStore::new(clients.dynamodb.clone(), options.clone())?;
        return reshard_table(&store, &args).await;
    }
    let from = DynamoTaskStore::new(clients.dynamodb.clone(), tables.clone());
    let to = LeanTaskStore::new(clients.dynamodb.clone(), options.clone())?;
    let migration = Migration::new(from, to);
    let text = !args.output.json();
    if text {
        tell!(
            "{} from `{}` and `{}` to `{}` ({} shards)",
            if args.dry_run { "counting" } else { "moving" },
            tables.tasks,
            tables.retry,
            options.table,
            options.shards
        );
    }
    let report = migration
        .run(
            Utc::now().timestamp(),
            args.dry_run,
            MigrationSettings {
                every: args.progress_every,
                concurrency: usize::from(args.concurrency),
            },
            |p| {
                if text && !args.dry_run {
                    tell!(
                        "moved or left {} of {} waiting tasks{}",
                        p.done,
                        p.found,
                        if p.scanned { "" } else { " found so far" }
                    );
                }
            },
        )
        .await
        .map_err(|err| CliError::new(format!("migrate-layout: {err}")))?;
    if args.output.json() {
        json_line(&json!({
            "dry_run": args.dry_run,
            "lean_table": options.table,
            "shards": options.shards,
            "queued_found": report.queued_found,
            "retries_found": report.retries_found,
            "queued_moved": report.queued_moved,
            "retries_moved": report.retries_moved,
            "finished_earlier_moves": report.finished_earlier_moves,
            "left_changed": report.left_changed,
            "left_running": report.left_running,
        }))?;
    } else {
        print_report(&report, args.dry_run);
    }
    Ok(ExitCode::SUCCESS)
}

/// `sosw migrate-layout --reshard`.
async fn reshard_table(store: &LeanTaskStore, args: &MigrateLayoutArgs) -> CliResult {
    let text = !args.output.json();
    if text {
        tell!(
            "{} the queued tasks of `{}` to {} shards",
            if args.dry_run { "counting" } else { "moving" },
            store.options().table,
            store.options().shards
        );
    }
    let report = reshard(
        store,
        ReshardSettings {
            dry_run: args.dry_run,
            unrecorded_from: args.from_shards,
            refile_keys: args.refile_keys,
            ..ReshardSettings::default()
        },
    )
    .await
    .map_err(|err| CliError::new(format!("migrate-layout --reshard: {err}")))?;
    if !text {
        let mut line = serde_json::to_value(&report)
            .map_err(|e| CliError::new(format!("migrate-layout --reshard: {e}")))?;
        line["dry_run"] = json!(args.dry_run);
        line["lean_table"] = json!(store.options().table);
        json_line(&line)?;
        return Ok(ExitCode::SUCCESS);
    }
    let from: Vec<String> = report.from.iter().map(u32::to_string).collect();
    let count_changes = report.from.iter().any(|from| *from != report.to);
    let refiled = if args.refile_keys {
        format!(
            " ({} of them under their fairness keys)",
            report.queued_refiled
        )
    } else {
        String::new()
    };
    if args.refile_keys && report.keyed_labourers == 0 {
        say!(
            "no labourer of `{}` has a fairness path recorded: an orchestrator records one at its \
             first run with the labourer's `fairness` set, and only then can its tasks be filed \
             by key",
            store.options().table
        );
    }
    if report.passes == 0 {
        say!(
            "nothing to do: the {} labourers are recorded under {} shards already",
            report.labourers,
            report.to
        );
    } else if args.dry_run {
        say!(
            "would move {} of {} queued tasks{refiled} of {} labourers from {} to {} shards; {} \
             running ({}; dry run: nothing written)",
            report.queued_to_move,
            report.queued_found,
            report.labourers,
            if from.is_empty() {
                "-".to_owned()
            } else {
                from.join(", ")
            },
            report.to,
            report.running,
            if count_changes {
                "a reshard needs none"
            } else {
                "the count stays, so they may"
            }
        );
    } else if count_changes {
        say!(
            "moved {} of {} queued tasks{refiled} of {} labourers from {} to {} shards in {} \
             passes: set SOSW_LEAN_SHARDS={} (the stacks' LeanShards) on every essential and \
             worker now",
            report.queued_moved,
            report.queued_found,
            report.labourers,
            from.join(", "),
            report.to,
            report.passes,
            report.to
        );
    } else {
        say!(
            "moved {} of {} queued tasks{refiled} of {} labourers in {} passes; the shard count \
             stays {}",
            report.queued_moved,
            report.queued_found,
            report.labourers,
            report.passes,
            report.to
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &MigrationReport, dry_run: bool) {
    if dry_run {
        say!(
            "would move {} queued and {} waiting-for-retry tasks; {} invoked or completed stay on \
             sosw 0.7's tables (dry run: nothing written)",
            report.queued_found,
            report.retries_found,
            report.left_running
        );
        return;
    }
    say!(
        "moved     {} queued, {} waiting for retry",
        report.queued_moved,
        report.retries_moved
    );
    if report.finished_earlier_moves > 0 {
        say!(
            "finished  {} moves an earlier run had started",
            report.finished_earlier_moves
        );
    }
    if report.left_changed > 0 {
        say!(
            "left      {} claimed or changed by a sosw 0.7 essential during the move (run again \
             once they are back in the queue, or let them finish there)",
            report.left_changed
        );
    }
    say!(
        "running   {} invoked or completed: they finish on sosw 0.7's tables",
        report.left_running
    );
}

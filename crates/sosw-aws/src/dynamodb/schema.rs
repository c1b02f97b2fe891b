//! Creating and deleting sosw 0.7's three task tables and this implementation's job and ecology tables
//! (for tests, local tooling and docs; production deployments use the CloudFormation templates).

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, TableStatus,
};

use super::errors::{build_error, sdk_error, store_error};
use sosw_core::error::Result;
use sosw_core::store::TableNames;

/// How long [`create_tables`] waits for a table to become ACTIVE.
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL_EVERY: Duration = Duration::from_millis(200);

pub(crate) type BuildResult<T> = std::result::Result<T, aws_sdk_dynamodb::error::BuildError>;

pub(crate) fn attr(name: &str, ty: ScalarAttributeType) -> BuildResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ty)
        .build()
}

pub(crate) fn key(name: &str, ty: KeyType) -> BuildResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(ty)
        .build()
}

fn projection_all() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::All)
        .build()
}

/// Creates the live, closed and retry tables with sosw 0.7's keys and indexes, and the jobs table, with
/// on-demand billing, and waits until they are ACTIVE. Tables that already exist are left as they are.
///
/// * live: hash `task_id`; GSI `(labourer_id S, greenfield N)`, projection ALL;
/// * closed: hash `task_id`; GSI `(labourer_id_task_status S, closed_at N)`, projection INCLUDE
///   `completed_at`, `greenfield`, `attempts`;
/// * retry: hash `labourer_id`, range `task_id`; LSI `(labourer_id, desired_launch_time N)`, projection
///   ALL;
/// * jobs: hash `job_id` (no index: jobs are read by id, and listed by a scan);
/// * ecology: hash `labourer_id` (no index: read and written by key).
pub async fn create_tables(client: &Client, tables: &TableNames) -> Result<()> {
    create_live(client, tables).await?;
    create_closed(client, tables).await?;
    create_retry(client, tables).await?;
    create_hash_only(client, &tables.jobs, "job_id").await?;
    create_hash_only(client, &tables.ecology, "labourer_id").await?;
    for table in all(tables) {
        wait_active(client, table).await?;
    }
    Ok(())
}

fn all(tables: &TableNames) -> [&String; 5] {
    [
        &tables.tasks,
        &tables.closed,
        &tables.retry,
        &tables.jobs,
        &tables.ecology,
    ]
}

/// Deletes the five tables. Tables that do not exist are fine.
pub async fn delete_tables(client: &Client, tables: &TableNames) -> Result<()> {
    for table in all(tables) {
        match client.delete_table().table_name(table).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(sdk_error("delete table", table, e)),
        }
    }
    Ok(())
}

async fn create_live(client: &Client, t: &TableNames) -> Result<()> {
    let build = || -> BuildResult<_> {
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(&t.tasks_greenfield_index)
            .key_schema(key("labourer_id", KeyType::Hash)?)
            .key_schema(key("greenfield", KeyType::Range)?)
            .projection(projection_all())
            .build()?;
        Ok(client
            .create_table()
            .table_name(&t.tasks)
            .attribute_definitions(attr("task_id", ScalarAttributeType::S)?)
            .attribute_definitions(attr("labourer_id", ScalarAttributeType::S)?)
            .attribute_definitions(attr("greenfield", ScalarAttributeType::N)?)
            .key_schema(key("task_id", KeyType::Hash)?)
            .global_secondary_indexes(gsi)
            .billing_mode(BillingMode::PayPerRequest))
    };
    let request = build().map_err(|e| build_error("create table", &t.tasks, e))?;
    send_create(request, &t.tasks).await
}

async fn create_closed(client: &Client, t: &TableNames) -> Result<()> {
    let build = || -> BuildResult<_> {
        let projection = Projection::builder()
            .projection_type(ProjectionType::Include)
            .non_key_attributes("completed_at")
            .non_key_attributes("greenfield")
            .non_key_attributes("attempts")
            .build();
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(&t.closed_status_index)
            .key_schema(key("labourer_id_task_status", KeyType::Hash)?)
            .key_schema(key("closed_at", KeyType::Range)?)
            .projection(projection)
            .build()?;
        Ok(client
            .create_table()
            .table_name(&t.closed)
            .attribute_definitions(attr("task_id", ScalarAttributeType::S)?)
            .attribute_definitions(attr("labourer_id_task_status", ScalarAttributeType::S)?)
            .attribute_definitions(attr("closed_at", ScalarAttributeType::N)?)
            .key_schema(key("task_id", KeyType::Hash)?)
            .global_secondary_indexes(gsi)
            .billing_mode(BillingMode::PayPerRequest))
    };
    let request = build().map_err(|e| build_error("create table", &t.closed, e))?;
    send_create(request, &t.closed).await
}

async fn create_retry(client: &Client, t: &TableNames) -> Result<()> {
    let build = || -> BuildResult<_> {
        let lsi = LocalSecondaryIndex::builder()
            .index_name(&t.retry_launch_index)
            .key_schema(key("labourer_id", KeyType::Hash)?)
            .key_schema(key("desired_launch_time", KeyType::Range)?)
            .projection(projection_all())
            .build()?;
        Ok(client
            .create_table()
            .table_name(&t.retry)
            .attribute_definitions(attr("labourer_id", ScalarAttributeType::S)?)
            .attribute_definitions(attr("task_id", ScalarAttributeType::S)?)
            .attribute_definitions(attr("desired_launch_time", ScalarAttributeType::N)?)
            .key_schema(key("labourer_id", KeyType::Hash)?)
            .key_schema(key("task_id", KeyType::Range)?)
            .local_secondary_indexes(lsi)
            .billing_mode(BillingMode::PayPerRequest))
    };
    let request = build().map_err(|e| build_error("create table", &t.retry, e))?;
    send_create(request, &t.retry).await
}

/// A table with a string hash key and nothing else (jobs, ecology).
pub(crate) async fn create_hash_only(client: &Client, table: &str, hash: &str) -> Result<()> {
    let build = || -> BuildResult<_> {
        Ok(client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr(hash, ScalarAttributeType::S)?)
            .key_schema(key(hash, KeyType::Hash)?)
            .billing_mode(BillingMode::PayPerRequest))
    };
    let request = build().map_err(|e| build_error("create table", table, e))?;
    send_create(request, table).await
}

pub(crate) async fn send_create(
    request: aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder,
    table: &str,
) -> Result<()> {
    match request.send().await {
        Ok(_) => Ok(()),
        // Already there (or being created): idempotent.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error("create table", table, e)),
    }
}

/// Polls `DescribeTable` until the table and its global indexes are ACTIVE.
pub(crate) async fn wait_active(client: &Client, table: &str) -> Result<()> {
    let deadline = Instant::now() + ACTIVE_TIMEOUT;
    loop {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("create table", table, e))?;
        let desc = out.table;
        let table_active = desc
            .as_ref()
            .is_some_and(|d| d.table_status == Some(TableStatus::Active));
        let indexes_active = desc.as_ref().is_some_and(|d| {
            d.global_secondary_indexes().iter().all(|g| {
                g.index_status
                    .as_ref()
                    .is_none_or(|s| *s == IndexStatus::Active)
            })
        });
        if table_active && indexes_active {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(store_error(
                "create table",
                table,
                true,
                format!("not ACTIVE after {} s", ACTIVE_TIMEOUT.as_secs()),
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

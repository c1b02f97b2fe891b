//! Creating and deleting the lean table (and the job table beside it) for tests and local tooling.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    BillingMode, KeyType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};

use super::super::errors::{build_error, sdk_error};
use super::super::schema::{BuildResult, attr, create_hash_only, key, send_create, wait_active};
use super::{EXPIRES, LeanOptions};
use sosw_core::error::Result;

/// Creates the lean table (hash `pk` S, range `sk` S, no index, on-demand, TTL on `expires_at`, its
/// stream with `NEW_AND_OLD_IMAGES` for the job counts) and the job table, and waits until both are
/// ACTIVE. Tables that exist are left as they are.
pub async fn create_lean_tables(client: &Client, options: &LeanOptions) -> Result<()> {
    create(client, options, true).await
}

/// [`create_lean_tables`] without the stream: for a store that counts jobs per task
/// (`SOSW_LEAN_JOB_COUNTS=immediate`). Tests that only exercise the queue use it: DynamoDB Local
/// records every write to a stream, and several busy tables with streams at once slow it down many
/// times over.
pub async fn create_lean_tables_without_stream(
    client: &Client,
    options: &LeanOptions,
) -> Result<()> {
    create(client, options, false).await
}

async fn create(client: &Client, options: &LeanOptions, stream: bool) -> Result<()> {
    let table = &options.table;
    let build = || -> BuildResult<_> {
        Ok(client
            .create_table()
            .table_name(table)
            .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(if stream {
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?
            } else {
                StreamSpecification::builder()
                    .stream_enabled(false)
                    .build()?
            }))
    };
    let request = build().map_err(|e| build_error("create table", table, e))?;
    send_create(request, table).await?;
    create_hash_only(client, &options.jobs_table, "job_id").await?;
    create_hash_only(client, &options.ecology_table, "labourer_id").await?;
    wait_active(client, table).await?;
    wait_active(client, &options.jobs_table).await?;
    wait_active(client, &options.ecology_table).await?;
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(EXPIRES)
        .build()
        .map_err(|e| build_error("enable TTL", table, e))?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Enabled already (a second call for an existing table).
        Err(e)
            if e.as_service_error()
                .and_then(|s| aws_sdk_dynamodb::error::ProvideErrorMetadata::message(s))
                .is_some_and(|m| m.contains("already enabled")) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error("enable TTL", table, e)),
    }
}

/// Deletes the lean table and the job table. Tables that do not exist are fine.
pub async fn delete_lean_tables(client: &Client, options: &LeanOptions) -> Result<()> {
    for table in [&options.table, &options.jobs_table, &options.ecology_table] {
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

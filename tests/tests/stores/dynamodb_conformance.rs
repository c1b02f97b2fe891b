//! The `TaskStore` and `JobStore` conformance suites against `DynamoTaskStore` on DynamoDB Local: every
//! case on tables of its own. Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing instead when
//! `SOSW_REQUIRE_EMULATORS=1`).

mod dynamodb_local {
    use std::sync::Arc;

    use sosw::aws::config_source::{DynamoConfigSource, create_config_table};
    use sosw::aws::dynamodb::{DynamoTaskStore, create_tables};
    use sosw::store::TableNames;
    use sosw_integration_tests::{dynamodb_client, unique_prefix};

    /// A store on freshly created, uniquely prefixed tables, or `None` to skip.
    async fn store() -> Option<Arc<DynamoTaskStore>> {
        let client = dynamodb_client().await?;
        let tables = TableNames::with_prefix(&unique_prefix());
        create_tables(&client, &tables)
            .await
            .expect("tables created on DynamoDB Local");
        Some(Arc::new(DynamoTaskStore::new(client, tables)))
    }

    /// The config table of a fresh, uniquely prefixed name, for the pauses (`sosw pause`), or `None`.
    async fn control() -> Option<Arc<DynamoConfigSource>> {
        let client = dynamodb_client().await?;
        let table = format!("{}config", unique_prefix());
        create_config_table(&client, &table)
            .await
            .expect("config table created on DynamoDB Local");
        Some(Arc::new(DynamoConfigSource::new(client).with_table(table)))
    }

    sosw::task_store_conformance!(store());
    sosw::job_store_conformance!(store());
    sosw::cancel_conformance!(store());
    sosw::labourer_control_conformance!(control());
}

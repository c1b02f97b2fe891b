//! [`LabourerControl`]: labourers paused by `sosw pause` until `sosw resume`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A paused labourer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedLabourer {
    /// The labourer's id.
    pub labourer_id: String,
    /// When it was paused (Unix seconds).
    pub paused_at: i64,
}

/// Where pauses are kept: the state file's `paused_labourers` table, or on AWS one item of the config
/// table (`sosw_aws::config_source::DynamoConfigSource`). Every orchestrator reads
/// [`LabourerControl::paused_labourers`] at the start of each round and invokes nothing for a paused
/// labourer.
#[async_trait]
pub trait LabourerControl: Send + Sync {
    /// Pauses `labourer_id` at `now`. Returns `false` (and changes nothing) when it is paused already.
    async fn pause_labourer(&self, labourer_id: &str, now: i64) -> Result<bool>;

    /// Resumes `labourer_id`. Returns `false` (and changes nothing) when it was not paused.
    async fn resume_labourer(&self, labourer_id: &str) -> Result<bool>;

    /// Every paused labourer, by id. A strongly consistent read: a pause stored before the call is in
    /// the answer.
    async fn paused_labourers(&self) -> Result<Vec<PausedLabourer>>;
}

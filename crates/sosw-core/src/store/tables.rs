//! Names of the DynamoDB tables and indexes (sosw 0.7's, configurable).

use serde::{Deserialize, Serialize};

/// Table and index names of a DynamoDB deployment. The defaults are sosw 0.7's, so an existing
/// deployment is read as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableNames {
    /// Live tasks (`sosw_tasks`), hash key `task_id`.
    pub tasks: String,
    /// GSI of `tasks`: hash `labourer_id`, range `greenfield` (`sosw_tasks_greenfield`).
    pub tasks_greenfield_index: String,
    /// Closed tasks (`sosw_closed_tasks`), hash key `task_id`.
    pub closed: String,
    /// GSI of `closed`: hash `labourer_id_task_status`, range `closed_at`
    /// (`labourer_task_status_with_time`).
    pub closed_status_index: String,
    /// Tasks waiting for retry (`sosw_retry_tasks`), hash `labourer_id`, range `task_id`.
    pub retry: String,
    /// LSI of `retry`: range `desired_launch_time` (`labourer_id_greenfield`; the name is sosw 0.7's).
    pub retry_launch_index: String,
    /// Job records (`sosw_jobs`, new in this implementation: sosw 0.7 has no job table), hash key
    /// `job_id`. Defaults to `sosw_jobs` when absent from a serialised value.
    #[serde(default = "default_jobs_table")]
    pub jobs: String,
    /// Shared ecology state (`sosw_ecology`, new in this implementation), hash key `labourer_id`: one
    /// item per labourer with its rate log and controller state. Defaults to `sosw_ecology` when
    /// absent from a serialised value.
    #[serde(default = "default_ecology_table")]
    pub ecology: String,
}

fn default_jobs_table() -> String {
    "sosw_jobs".into()
}

fn default_ecology_table() -> String {
    "sosw_ecology".into()
}

impl Default for TableNames {
    fn default() -> Self {
        TableNames {
            tasks: "sosw_tasks".into(),
            tasks_greenfield_index: "sosw_tasks_greenfield".into(),
            closed: "sosw_closed_tasks".into(),
            closed_status_index: "labourer_task_status_with_time".into(),
            retry: "sosw_retry_tasks".into(),
            retry_launch_index: "labourer_id_greenfield".into(),
            jobs: default_jobs_table(),
            ecology: default_ecology_table(),
        }
    }
}

impl TableNames {
    /// The default names with `prefix` in front of every table (not index) name, e.g. `autotest_`.
    pub fn with_prefix(prefix: &str) -> Self {
        let d = TableNames::default();
        TableNames {
            tasks: format!("{prefix}{}", d.tasks),
            closed: format!("{prefix}{}", d.closed),
            retry: format!("{prefix}{}", d.retry),
            jobs: format!("{prefix}{}", d.jobs),
            ecology: format!("{prefix}{}", d.ecology),
            ..d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_applies_to_tables_not_indexes() {
        let t = TableNames::with_prefix("autotest_");
        assert_eq!(t.tasks, "autotest_sosw_tasks");
        assert_eq!(t.closed, "autotest_sosw_closed_tasks");
        assert_eq!(t.retry, "autotest_sosw_retry_tasks");
        assert_eq!(t.jobs, "autotest_sosw_jobs");
        assert_eq!(t.ecology, "autotest_sosw_ecology");
        assert_eq!(t.tasks_greenfield_index, "sosw_tasks_greenfield");
    }

    #[test]
    fn names_serialised_before_the_jobs_table_read_with_its_default() {
        let mut value = serde_json::to_value(TableNames::default()).expect("serialises");
        if let Some(fields) = value.as_object_mut() {
            fields.remove("jobs");
            fields.remove("ecology");
        }
        let names: TableNames = serde_json::from_value(value).expect("deserialises");
        assert_eq!(names.jobs, "sosw_jobs");
        assert_eq!(names.ecology, "sosw_ecology");
    }
}

//! Tasks, labourers and the greenfield state encoding.

pub mod fate;
pub mod greenfield;
mod labourer;
pub mod manager;
mod model;
pub mod python_literal;
pub mod receipt;
pub mod retry;

pub use greenfield::{Markers, TaskState};
pub use labourer::{
    ComparisonOperator, DEFAULT_MAX_ATTEMPTS, HealthMetric, Labourer, MetricDimension, MetricQuery,
    RateLimit, RetryPolicy, Statistic,
};
pub use manager::{TaskInvocation, TaskManager, construct_payload};
pub use model::{MAX_TASK_ID_LEN, Task, TaskId, json_kind};
pub use retry::Jitter;

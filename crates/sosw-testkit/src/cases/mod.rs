//! One async function per behaviour of the store port. Each takes the store under test, runs against
//! ids of its own and panics with a message naming the broken behaviour.
//!
//! Every case has the shape `pub async fn case<S: TaskStore + 'static>(store: Arc<S>)`, so
//! [`task_store_conformance!`](crate::task_store_conformance) can call them all the same way. The job
//! record cases in the `jobs` module have the same shape with `S: JobStore` and are run by
//! [`job_store_conformance!`](crate::job_store_conformance).

mod archive;
mod cancel;
mod claims;
mod ecology;
mod enqueue;
mod fairness;
mod jobs;
mod lifecycle;
mod manager;
mod queue;
mod reports;
mod retries;
mod support;

pub use archive::*;
pub use cancel::*;
pub use claims::*;
pub use ecology::*;
pub use enqueue::*;
pub use fairness::*;
pub use jobs::*;
pub use lifecycle::*;
pub use manager::*;
pub use queue::*;
pub use reports::*;
pub use retries::*;

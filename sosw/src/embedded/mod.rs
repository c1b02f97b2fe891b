//! Embedded adapters for local mode: everything `sosw local` needs on one machine.
//!
//! * [`SqliteTaskStore`]: the [`TaskStore`](crate::store::TaskStore) over one SQLite file (or memory),
//!   with sosw 0.7's three task tables.

mod sqlite;

pub use sqlite::SqliteTaskStore;

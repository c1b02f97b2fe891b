//! The spool: a job's tasks, frozen as chunked, in the blob store, with sosw 0.7's `locked_` protocol.
//!
//! # The file
//!
//! JSON lines. The first line is a [`SpoolHeader`]; every other line is one task row as the chunker
//! made it (sosw 0.7's queue-file rows: `labourer_id` plus the payload keys), in chunk order, the first
//! of them being chunk `next_index`.
//!
//! # The keys
//!
//! For `s3_prefix` `sosw/scheduler`, `queue_file` `tasks_queue.txt` and job `j1`:
//!
//! * remote: `sosw/scheduler/tasks_queue_j1.txt`: tasks handed on, waiting for the next run;
//! * locked: `sosw/scheduler/locked_tasks_queue_j1.txt`: a run is writing these tasks.
//!
//! sosw 0.7 named the file after the Lambda request; here it is named after the job (through
//! [`crate::blob::key_segment`]), so the locked file is also the job's lease: its header says until when
//! the run holding it may live (its Lambda deadline), and another run takes it over only after that.
//!
//! # The protocol
//!
//! 1. A run that spools a job writes the locked file (sosw 0.7: uploaded the local queue file to the
//!    locked key).
//! 2. When it has written every task, it deletes the locked file.
//! 3. When its deadline comes within `shutdown_period`, or a write fails, it writes the tasks not yet
//!    written to the remote key, then deletes the locked file; then (deadline only) it spawns the
//!    continuation. sosw 0.7 spawned before uploading (bug B12).
//! 4. A continuation (or a resubmission of the job) claims the remote file: reads it, writes it as
//!    the locked file with its own lease, deletes the remote one. A locked file whose lease has run out
//!    (its run died) is claimed the same way; one whose lease is alive means another run is on the job.
//!
//! The lease is not a distributed lock: two runs claiming the same file in the same instant can both
//! write the tasks. Task ids are stable, so that rewrites tasks, it never duplicates them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::blob::{BlobStore, check_key, key_segment};
use crate::error::{Error, Result};
use crate::job::TaskPayload;
use crate::task::json_kind;

/// The spool format version written in every header.
pub const SPOOL_FORMAT: u32 = 1;

/// The first line of a spool file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolHeader {
    /// The format version, [`SPOOL_FORMAT`].
    pub sosw_spool: u32,
    /// The job the tasks belong to.
    pub job_id: String,
    /// The labourer of the job.
    pub labourer_id: String,
    /// The chunk index of the first row.
    pub next_index: u64,
    /// How many tasks the whole job has: the rows are chunks `next_index..total`.
    pub total: u64,
    /// Unix seconds until which the run that wrote a locked file may still be writing tasks.
    pub lease_until: i64,
}

/// A spool file read back: its header and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Spool {
    pub header: SpoolHeader,
    pub rows: Vec<TaskPayload>,
}

/// The remote and locked keys of one job's spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolKeys {
    pub remote: String,
    pub locked: String,
}

impl SpoolKeys {
    /// The keys for `job_id` under `prefix`, with the job inserted before `queue_file`'s extension.
    pub fn new(prefix: &str, queue_file: &str, job_id: &str) -> Result<Self> {
        let (stem, ext) = match queue_file.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
            _ => (queue_file, String::new()),
        };
        let name = format!("{stem}_{}{ext}", key_segment(job_id));
        let prefix = prefix.trim_matches('/');
        let at = |file: String| {
            if prefix.is_empty() {
                file
            } else {
                format!("{prefix}/{file}")
            }
        };
        let keys = SpoolKeys {
            remote: at(name.clone()),
            locked: at(format!("locked_{name}")),
        };
        check_key(&keys.remote)?;
        check_key(&keys.locked)?;
        Ok(keys)
    }
}

/// What a run found when it looked for a job's spool.
#[derive(Debug)]
pub(crate) enum Found {
    /// Claimed: the locked file is now this run's, with these rows.
    Claimed(Spool),
    /// Another run holds the job until `lease_until`.
    HeldElsewhere { lease_until: i64 },
    /// No spool.
    Nothing,
}

/// The file's bytes.
pub fn encode(header: &SpoolHeader, rows: &[TaskPayload]) -> Result<Vec<u8>> {
    let mut out = line(header)?;
    for row in rows {
        out.extend(line(row)?);
    }
    Ok(out)
}

fn line<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec(value)
        .map_err(|e| Error::invalid("spool row", format!("cannot encode it: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Reads a spool file of `job_id` found at `key`, checking that it belongs to the job (sosw issue #36)
/// and holds exactly the rows its header announces.
pub fn decode(bytes: &[u8], key: &str, job_id: &str) -> Result<Spool> {
    let bad = |message: String| Error::Decode {
        what: "spool file",
        table: key.to_owned(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines
        .next()
        .ok_or_else(|| bad("the file is empty".into()))?;
    let header: SpoolHeader =
        serde_json::from_str(first).map_err(|e| bad(format!("bad header: {e}")))?;
    if header.sosw_spool != SPOOL_FORMAT {
        return Err(bad(format!(
            "format {} is not {SPOOL_FORMAT}",
            header.sosw_spool
        )));
    }
    if header.job_id != job_id {
        return Err(bad(format!(
            "it belongs to job `{}`, not `{job_id}`",
            header.job_id
        )));
    }
    let rows = lines
        .enumerate()
        .map(|(i, l)| match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(row)) => Ok(row),
            Ok(other) => Err(bad(format!(
                "row {i} is {}, not an object",
                json_kind(&other)
            ))),
            Err(e) => Err(bad(format!("row {i}: {e}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let expected = header.total.checked_sub(header.next_index);
    if expected != u64::try_from(rows.len()).ok() {
        return Err(bad(format!(
            "the header announces chunks {}..{} but there are {} rows",
            header.next_index,
            header.total,
            rows.len()
        )));
    }
    Ok(Spool { header, rows })
}

/// Writes the locked file: this run now holds the job until `header.lease_until`.
pub async fn lock(
    blobs: &dyn BlobStore,
    keys: &SpoolKeys,
    header: &SpoolHeader,
    rows: &[TaskPayload],
) -> Result<()> {
    blobs.put(&keys.locked, encode(header, rows)?).await
}

/// Hands the rows on: writes them to the remote key, then deletes the locked file (in this order, so a
/// crash in between leaves the tasks findable).
pub(crate) async fn hand_on(
    blobs: &dyn BlobStore,
    keys: &SpoolKeys,
    header: &SpoolHeader,
    rows: &[TaskPayload],
) -> Result<()> {
    blobs.put(&keys.remote, encode(header, rows)?).await?;
    blobs.delete(&keys.locked).await
}

/// Looks for the spool of `job_id` and claims it if no live run holds it: first the remote file at
/// `remote` (a hand-on), then a locked file whose lease ended before `now`. A claimed spool is
/// rewritten as the locked file with `lease_until`.
pub(crate) async fn claim(
    blobs: &dyn BlobStore,
    keys: &SpoolKeys,
    remote: &str,
    job_id: &str,
    now: i64,
    lease_until: i64,
) -> Result<Found> {
    if let Some(bytes) = blobs.get(remote).await? {
        let spool = decode(&bytes, remote, job_id)?;
        return take(blobs, keys, spool, lease_until, Some(remote)).await;
    }
    let Some(bytes) = blobs.get(&keys.locked).await? else {
        return Ok(Found::Nothing);
    };
    let spool = decode(&bytes, &keys.locked, job_id)?;
    if spool.header.lease_until > now {
        return Ok(Found::HeldElsewhere {
            lease_until: spool.header.lease_until,
        });
    }
    take(blobs, keys, spool, lease_until, None).await
}

async fn take(
    blobs: &dyn BlobStore,
    keys: &SpoolKeys,
    mut spool: Spool,
    lease_until: i64,
    remote: Option<&str>,
) -> Result<Found> {
    spool.header.lease_until = lease_until;
    lock(blobs, keys, &spool.header, &spool.rows).await?;
    if let Some(remote) = remote {
        blobs.delete(remote).await?;
    }
    Ok(Found::Claimed(spool))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn header(next_index: u64, total: u64) -> SpoolHeader {
        SpoolHeader {
            sosw_spool: SPOOL_FORMAT,
            job_id: "j1".into(),
            labourer_id: "w".into(),
            next_index,
            total,
            lease_until: 100,
        }
    }

    fn rows(n: usize) -> Vec<TaskPayload> {
        (0..n)
            .filter_map(|i| json!({"labourer_id": "w", "i": i}).as_object().cloned())
            .collect()
    }

    #[test]
    fn keys_follow_sosw_07_names_with_the_job_in_place_of_the_request() -> Result<()> {
        let keys = SpoolKeys::new("sosw/scheduler", "tasks_queue.txt", "j1")?;
        assert_eq!(keys.remote, "sosw/scheduler/tasks_queue_j1.txt");
        assert_eq!(keys.locked, "sosw/scheduler/locked_tasks_queue_j1.txt");
        let odd = SpoolKeys::new("/p/", "queue", "a b/c")?;
        assert!(
            odd.remote.starts_with("p/queue_ab") && odd.locked.starts_with("p/locked_queue_ab")
        );
        assert!(SpoolKeys::new("bad prefix", "q.txt", "j").is_err());
        Ok(())
    }

    #[test]
    fn a_spool_round_trips_and_is_checked_against_its_job_and_count() -> Result<()> {
        let bytes = encode(&header(3, 5), &rows(2))?;
        let spool = decode(&bytes, "k", "j1")?;
        assert_eq!(spool.header, header(3, 5));
        assert_eq!(spool.rows, rows(2));
        let other_job = decode(&bytes, "k", "j2")
            .expect_err("not this job's")
            .to_string();
        assert!(other_job.contains("`j1`"), "{other_job}");
        let short = encode(&header(3, 6), &rows(2))?;
        assert!(decode(&short, "k", "j1").is_err());
        for junk in [&b""[..], b"{}", b"not json", b"\xff"] {
            assert!(decode(junk, "k", "j1").is_err());
        }
        let mut row_not_object = encode(&header(0, 1), &[])?;
        row_not_object.extend(b"[1]\n");
        assert!(decode(&row_not_object, "k", "j1").is_err());
        Ok(())
    }
}

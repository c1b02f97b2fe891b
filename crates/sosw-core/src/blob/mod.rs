//! The `BlobStore` port: whole objects by key, for the scheduler's spool files and for task payloads too
//! large for a task row.
//!
//! Two adapters: [`DirBlobStore`] (a directory, for local mode and tests) and
//! `sosw_aws::s3::S3BlobStore` (a bucket). Both accept the same keys ([`check_key`]): `/`-separated
//! segments of ASCII letters, digits, `.`, `_`, `-` and `=`, so a key is a safe relative file path and
//! needs no URL encoding in S3's `CopyObject`. [`key_segment`] turns any text (a job id) into one segment.
//!
//! [`payload_ref`] has the pointer a task carries instead of an oversized payload, and
//! [`resolve_payload`], which the worker side calls to get the payload back.

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

mod dir;
mod payload_ref;

pub use dir::DirBlobStore;
pub use payload_ref::{
    PAYLOAD_REF_KEY, payload_key, payload_ref, payload_ref_key, resolve_payload, store_payload,
};

/// The longest key accepted, in bytes (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// The longest segment [`key_segment`] returns, in bytes (file systems allow 255).
const MAX_SEGMENT_LEN: usize = 120;

/// Objects by key. Writes replace whole objects; there are no partial reads or listings.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Writes `body` at `key`, replacing any object there. A reader sees the old or the new object,
    /// never a mix.
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()>;

    /// The object at `key`, or `None` if there is none.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Copies the object at `from` to `to` (replacing `to`). Returns `false`, copying nothing, when
    /// `from` does not exist.
    async fn copy(&self, from: &str, to: &str) -> Result<bool>;

    /// Deletes the object at `key`. Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
}

/// Checks that `key` is usable by every adapter: non-empty, at most [`MAX_KEY_LEN`] bytes, segments
/// separated by single `/` (none empty, none `.` or `..`), each of ASCII letters, digits, `.`, `_`, `-`
/// and `=`.
pub fn check_key(key: &str) -> Result<()> {
    let problem = if key.is_empty() {
        Some("it is empty".to_owned())
    } else if key.len() > MAX_KEY_LEN {
        Some(format!(
            "it is {} bytes; the limit is {MAX_KEY_LEN}",
            key.len()
        ))
    } else if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-=/".contains(*c)))
    {
        Some(format!(
            "it contains {c:?}; keys use ASCII letters, digits, `.`, `_`, `-`, `=` and `/`"
        ))
    } else if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        Some("it has an empty, `.` or `..` segment".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::invalid("blob key", format!("`{key}`: {problem}"))),
        None => Ok(()),
    }
}

/// `text` as one key segment: itself when it is already a short, safe segment; otherwise its safe
/// characters (at most 40) and 16 hex digits of its SHA-256, so different texts get different segments.
pub fn key_segment(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "._-=".contains(c);
    let plain = !text.is_empty()
        && text.len() <= MAX_SEGMENT_LEN
        && text.chars().all(safe)
        && text != "."
        && text != "..";
    if plain {
        return text.to_owned();
    }
    let kept: String = text
        .chars()
        .filter(|c| safe(*c) && *c != '.')
        .take(40)
        .collect();
    let digest = Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    if kept.is_empty() {
        hex
    } else {
        format!("{kept}-{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_paths_of_safe_characters() {
        for good in ["a", "sosw/scheduler/tasks_queue_j1.txt", "x=1/y-2/z_3.json"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/abs", "a//b", "a/", "../x", "a/./b", "a b", "a\\b", "é", "a?b",
        ] {
            let err = check_key(bad).expect_err(bad).to_string();
            assert!(err.contains("blob key"), "{bad}: {err}");
        }
        assert!(check_key(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn key_segments_keep_safe_ids_and_hash_the_rest_apart() {
        assert_eq!(key_segment("job-1_a.b"), "job-1_a.b");
        let spaced = key_segment("daily report/2026");
        assert!(check_key(&spaced).is_ok(), "{spaced}");
        assert!(spaced.starts_with("dailyreport2026-"), "{spaced}");
        assert_ne!(
            key_segment("a/b"),
            key_segment("a b"),
            "hashes keep them apart"
        );
        for odd in ["", ".", "..", "é", &"x".repeat(300)] {
            let segment = key_segment(odd);
            assert!(check_key(&segment).is_ok(), "{odd:?} -> {segment}");
            assert!(segment.len() <= MAX_SEGMENT_LEN);
        }
    }
}

//! Notifiers for local mode and tests: the log, a JSON-lines file, memory.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Notification, Notifier};
use crate::error::{Error, Result};

/// Writes every notification to the log (`tracing`, `info` level, target `sosw::notify`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn notify(&self, notifications: &[Notification]) -> Result<()> {
        for n in notifications {
            tracing::info!(
                target: "sosw::notify",
                recipient = %n.recipient, subject = %n.subject, attributes = ?n.attributes,
                message = %n.message, "notification"
            );
        }
        Ok(())
    }
}

/// Appends every notification as one JSON line to a file (created if missing).
#[derive(Debug)]
pub struct FileNotifier {
    path: PathBuf,
    // Serialises appends from concurrent notifiers in one process, so lines never interleave.
    lock: Mutex<()>,
}

impl FileNotifier {
    /// A notifier appending to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileNotifier {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    fn append(&self, text: &str) -> std::io::Result<()> {
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(text.as_bytes())
    }
}

#[async_trait]
impl Notifier for FileNotifier {
    async fn notify(&self, notifications: &[Notification]) -> Result<()> {
        let mut text = String::new();
        for n in notifications {
            let line = serde_json::to_string(n)
                .map_err(|e| Error::invalid("notification", e.to_string()))?;
            text.push_str(&line);
            text.push('\n');
        }
        // One small append per commit: cheaper than a hop to a blocking thread.
        self.append(&text).map_err(|source| Error::Io {
            path: self.path.display().to_string(),
            source,
        })
    }
}

/// Keeps every notification in memory: for tests and for embedding sosw in a program that reads them.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notification>>,
}

impl MemoryNotifier {
    /// Everything delivered so far, in order.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .map(|sent| sent.clone())
            .unwrap_or_default()
    }

    /// Removes and returns everything delivered so far.
    pub fn take(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .map(|mut sent| std::mem::take(&mut *sent))
            .unwrap_or_default()
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, notifications: &[Notification]) -> Result<()> {
        let mut sent = self.sent.lock().map_err(|_| {
            Error::invalid(
                "notification",
                "the memory notifier's lock is poisoned by an earlier panic",
            )
        })?;
        sent.extend_from_slice(notifications);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn note(message: &str) -> Notification {
        Notification {
            recipient: "r".into(),
            subject: "s".into(),
            message: message.into(),
            attributes: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn file_notifier_appends_one_json_line_per_notification() {
        let dir = std::env::temp_dir().join(format!("sosw-notify-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("notes.jsonl");
        let n = FileNotifier::new(&path);
        n.notify(&[note("a"), note("b\nc")]).await.expect("writes");
        n.notify(&[note("d")]).await.expect("appends");
        let text = std::fs::read_to_string(&path).expect("reads");
        let back: Vec<Notification> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(back, vec![note("a"), note("b\nc"), note("d")]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[tokio::test]
    async fn file_notifier_reports_an_unwritable_path() {
        let n = FileNotifier::new("/nonexistent-dir-for-sosw/x.jsonl");
        let err = n.notify(&[note("a")]).await.expect_err("no such dir");
        assert!(
            err.to_string().contains("nonexistent-dir-for-sosw"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn memory_and_log_notifiers_accept_everything() {
        let m = MemoryNotifier::default();
        m.notify(&[note("a")]).await.expect("memory");
        assert_eq!(m.take(), vec![note("a")]);
        assert!(m.sent().is_empty());
        LogNotifier.notify(&[note("a")]).await.expect("log");
    }
}

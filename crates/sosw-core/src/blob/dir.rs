//! [`DirBlobStore`]: a directory as a blob store, one file per key.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{BlobStore, check_key};
use crate::error::{Error, Result};

/// A [`BlobStore`] over a directory: key `a/b/c.txt` is the file `<root>/a/b/c.txt`.
///
/// A write goes to a temporary file beside its target (`.<name>.<random>.tmp`) that is then renamed
/// over it, so readers never see half an object. File work runs on tokio's blocking pool.
#[derive(Debug, Clone)]
pub struct DirBlobStore {
    root: PathBuf,
}

impl DirBlobStore {
    /// A store rooted at `root`, created (with its parents) if missing.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| io_error(&root, e))?;
        Ok(DirBlobStore { root })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`, after checking the key.
    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(key.split('/').fold(self.root.clone(), |p, s| p.join(s)))
    }
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<()> {
        let path = self.path_of(key)?;
        blocking(move || write_atomically(&path, &body)).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path_of(key)?;
        blocking(move || read_if_exists(&path)).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<bool> {
        let (from, to) = (self.path_of(from)?, self.path_of(to)?);
        blocking(move || match read_if_exists(&from)? {
            Some(body) => write_atomically(&to, &body).map(|()| true),
            None => Ok(false),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path_of(key)?;
        blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error(&path, e)),
            _ => Ok(()),
        })
        .await
    }
}

/// Runs file work off the async threads.
async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::store("directory blob store", "file work", true, e))?
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(body) => Ok(Some(body)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

fn write_atomically(path: &Path, body: &[u8]) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let temp = parent.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = std::fs::File::create(&temp)
        .and_then(|mut file| file.write_all(body).and_then(|()| file.sync_data()))
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        // Best effort: a leftover temporary file is harmless, the error is what matters.
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(path, e));
    }
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root() -> PathBuf {
        std::env::temp_dir().join(format!("sosw-blob-{}", uuid::Uuid::new_v4().simple()))
    }

    #[tokio::test]
    async fn put_get_copy_delete_round_trip() -> Result<()> {
        let root = temp_root();
        let store = DirBlobStore::new(&root)?;
        assert_eq!(store.get("a/b.txt").await?, None);
        store.put("a/b.txt", b"one".to_vec()).await?;
        store.put("a/b.txt", b"two".to_vec()).await?;
        assert_eq!(store.get("a/b.txt").await?, Some(b"two".to_vec()));
        assert!(store.copy("a/b.txt", "c/locked_b.txt").await?);
        assert_eq!(store.get("c/locked_b.txt").await?, Some(b"two".to_vec()));
        assert!(!store.copy("a/missing.txt", "c/x.txt").await?);
        assert_eq!(store.get("c/x.txt").await?, None);
        store.delete("a/b.txt").await?;
        store.delete("a/b.txt").await?;
        assert_eq!(store.get("a/b.txt").await?, None);
        let leftovers: Vec<_> = std::fs::read_dir(root.join("a"))
            .map_err(|e| io_error(&root, e))?
            .collect();
        assert!(leftovers.is_empty(), "no temporary files stay behind");
        std::fs::remove_dir_all(&root).map_err(|e| io_error(&root, e))?;
        Ok(())
    }

    #[tokio::test]
    async fn keys_cannot_leave_the_root() -> Result<()> {
        let root = temp_root();
        let store = DirBlobStore::new(&root)?;
        for key in ["../escape", "/etc/passwd", "a/../../b"] {
            assert!(store.put(key, vec![1]).await.is_err(), "{key}");
            assert!(store.get(key).await.is_err(), "{key}");
        }
        std::fs::remove_dir_all(&root).map_err(|e| io_error(&root, e))?;
        Ok(())
    }
}

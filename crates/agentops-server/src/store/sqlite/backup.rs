//! An online backup of the database (`agentops backup`), through SQLite's online backup API,
//! while a server may be writing to it.
//!
//! The copy is one consistent snapshot: a read transaction is held on the source for the
//! whole copy, so that writes committed meanwhile (in the WAL, which readers never block) are
//! neither copied halfway nor make the copy start over. The pages go a step at a time, and the
//! copy is written to a new owner-only file beside the destination, checked, then renamed into
//! place: a backup that fails leaves nothing that looks like a backup.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// How far a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupProgress {
    /// Pages copied so far.
    pub copied: u64,
    /// Pages of the database.
    pub total: u64,
}

/// What a finished backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Pages copied.
    pub pages: u64,
    /// Size of the backup file, in bytes.
    pub bytes: u64,
}

/// Pages copied per step by default (4 MiB with SQLite's 4 KiB pages).
pub const DEFAULT_PAGES_PER_STEP: u32 = 1024;

/// Copies the database `source` (which must exist) into the new file `destination` (refused if
/// it exists), `pages_per_step` pages at a time, calling `progress` after each step. The backup
/// is readable and writable by its owner only, and is a valid database of its own (checked with
/// `PRAGMA quick_check` before it is put in place).
pub fn backup(
    source: &Path,
    destination: &Path,
    pages_per_step: u32,
    mut progress: impl FnMut(BackupProgress),
) -> Result<BackupSummary, StoreError> {
    if destination.exists() {
        return Err(StoreError::Config(format!(
            "{} already exists: remove it or choose another file",
            destination.display()
        )));
    }
    let partial = partial_path(destination);
    let result = copy_into(source, &partial, pages_per_step, &mut progress).and_then(|pages| {
        std::fs::rename(&partial, destination)?;
        sync_parent(destination);
        let bytes = std::fs::metadata(destination)?.len();
        Ok(BackupSummary { pages, bytes })
    });
    if result.is_err() {
        for leftover in [partial.clone(), suffixed(&partial, "-journal")] {
            let _ = std::fs::remove_file(leftover);
        }
    }
    result
}

/// The copy into `partial` (created owner-only); the pages copied.
fn copy_into(
    source: &Path,
    partial: &Path,
    pages_per_step: u32,
    progress: &mut impl FnMut(BackupProgress),
) -> Result<u64, StoreError> {
    create_private_file(partial)?;
    // Read-write (WAL readers need the shared-memory file), never created.
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(10))?;
    // One snapshot for the whole copy: the read transaction starts with the first read.
    src.execute_batch("BEGIN")?;
    src.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut dst = Connection::open(partial)?;
    let pages = {
        let backup = Backup::new(&src, &mut dst)?;
        let step = i32::try_from(pages_per_step.max(1)).unwrap_or(i32::MAX);
        loop {
            let state = backup.step(step)?;
            let p = backup.progress();
            let total = u64::try_from(p.pagecount).unwrap_or(0);
            let remaining = u64::try_from(p.remaining).unwrap_or(0);
            progress(BackupProgress {
                copied: total.saturating_sub(remaining),
                total,
            });
            match state {
                StepResult::Done => break total,
                StepResult::More => {}
                // The destination is ours and the source snapshot is held: only a brief lock
                // by another process on the new file could cause these.
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    };
    src.execute_batch("COMMIT")?;
    drop(src);
    let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Corrupt(format!(
            "the backup does not pass quick_check: {check}"
        )));
    }
    drop(dst);
    super::restrict_to_owner(partial)?;
    std::fs::File::open(partial)?.sync_all()?;
    Ok(pages)
}

/// A new file, readable and writable by its owner only, that nothing else uses.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?;
    Ok(())
}

/// Where the copy is made before it is complete: beside `destination`, so that the rename is
/// atomic.
fn partial_path(destination: &Path) -> PathBuf {
    suffixed(destination, &format!(".{}.partial", uuid::Uuid::new_v4()))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Makes the rename durable (best effort: not every platform syncs directories).
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::test_support::{seed_one, temp_store};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{AdminStore, ReadStore};

    #[test]
    fn copies_a_database_into_a_new_private_file_and_refuses_to_overwrite() {
        let (store, dir) = temp_store();
        let project = store.create_project("p").unwrap();
        seed_one(&store, &project);
        let target = dir.join("copy.db");
        let mut steps = Vec::new();
        let summary = backup(&dir.join("agentops.db"), &target, 1, |p| steps.push(p)).unwrap();
        assert!(summary.pages > 1 && steps.len() as u64 >= summary.pages);
        assert_eq!(steps.last().unwrap().copied, summary.pages);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&target).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let copy = SqliteStore::open(&target).unwrap();
        assert_eq!(
            copy.session_detail(&project, "s1")
                .unwrap()
                .unwrap()
                .events
                .len(),
            1
        );
        drop(copy);

        let again = backup(&dir.join("agentops.db"), &target, 1, |_| {}).unwrap_err();
        assert!(again.to_string().contains("already exists"), "{again}");
        let missing = backup(&dir.join("nothing.db"), &dir.join("other.db"), 1, |_| {});
        assert!(missing.is_err());
        // a failed backup leaves nothing behind
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.contains("partial") && n != "other.db"),
            "{names:?}"
        );
        drop(store);
        std::fs::remove_dir_all(dir).ok();
    }
}

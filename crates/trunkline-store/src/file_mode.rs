//! Permissions of the SQLite files: a new database file is created owner-only (0600) before
//! SQLite opens it, and an existing database, `-wal` or `-shm` file that group or others may
//! access is reported with a warning naming the path and the mode. Existing modes are the
//! operator's to change; the store never changes them silently.
//!
//! Why create the file here rather than set a process umask: SQLite gives the `-wal`, `-shm`
//! (and rollback journal) files the mode of the database file itself, so a database file
//! created 0600 makes all three 0600. That keeps the rule where the files are opened, holds for
//! any program that opens a store (the binary, the CLI, tests), and needs neither `unsafe` nor
//! process-wide state that would also apply to every file any other library creates.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Permission bits that make a file reachable by someone other than its owner.
const SHARED_BITS: u32 = 0o077;

/// Creates the database file at `path` with mode 0600 unless it exists, then warns about any
/// of the database's files that group or others may access. Errors are left to SQLite, which
/// reports them (missing directory, no permission) when it opens the file right after.
pub(crate) fn prepare_database_file(path: &Path) {
    if path.as_os_str().is_empty() {
        return;
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => tracing::debug!(path = %path.display(), "created the database file (0600)"),
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(_) => return,
    }
    for file in database_files(path) {
        if let Some(mode) = shared_mode(&file) {
            tracing::warn!(
                path = %file.display(),
                mode = %format_args!("{mode:o}"),
                "database file is accessible to group or others; chmod 600 it"
            );
        }
    }
}

/// The database file and its `-wal` and `-shm` companions.
fn database_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_owned(), with("-wal"), with("-shm")]
}

/// The permission bits of `path` when group or others have any access; `None` when it is
/// owner-only or does not exist.
pub(crate) fn shared_mode(path: &Path) -> Option<u32> {
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & SHARED_BITS != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_the_database_file_owner_only_and_leaves_existing_modes_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.db");
        prepare_database_file(&db);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(shared_mode(&db), None);

        let old = dir.path().join("old.db");
        fs::write(&old, b"").unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o644)).unwrap();
        prepare_database_file(&old);
        assert_eq!(mode(&old), 0o644, "an existing file's mode is not changed");
        assert_eq!(shared_mode(&old), Some(0o644));
    }

    #[test]
    fn names_the_wal_and_shm_files() {
        let [db, wal, shm] = database_files(Path::new("/d/trunkline.db"));
        assert_eq!(db, Path::new("/d/trunkline.db"));
        assert_eq!(wal, Path::new("/d/trunkline.db-wal"));
        assert_eq!(shm, Path::new("/d/trunkline.db-shm"));
    }
}

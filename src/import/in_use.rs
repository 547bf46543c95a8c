//! Whether another process has a SQLite database open, so that `tether
//! import` can warn that a running tether will not see the imported users
//! until it restarts.
//!
//! tether opens its database in WAL mode. There, SQLite's unix VFS has
//! every connection hold a shared POSIX lock on one byte of the `-shm`
//! file (the "dead man switch", byte 128) for as long as it is open. Asking
//! the kernel whether an exclusive lock on that byte would conflict
//! (`F_GETLK`) answers the question without taking any lock. Locks held by
//! this process itself are not reported, which is what a check made before
//! opening the database wants.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Offset of the byte of the `-shm` file that every WAL connection holds a
/// shared lock on (SQLite's `UNIX_SHM_DMS`: 120 + 8).
const SHM_DMS_BYTE: libc::off_t = 128;

fn shm_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

/// Whether another process has the WAL database at `db` open. `false` when
/// it cannot tell (no `-shm` file, or the lock query fails).
pub fn database_in_use(db: &Path) -> bool {
    let Ok(file) = File::open(shm_path(db)) else {
        return false;
    };
    // SAFETY: `struct flock` is plain data; all zeroes is a valid value
    // (some platforms have fields beyond the five set here).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = SHM_DMS_BYTE;
    lock.l_len = 1;
    // SAFETY: `file` is an open descriptor for the duration of the call and
    // `lock` is a valid, initialised `struct flock` the kernel writes into.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    rc == 0 && lock.l_type != libc::F_UNLCK as libc::c_short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_database_is_not_in_use() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!database_in_use(&dir.path().join("none.db")));
    }

    #[test]
    fn shm_path_appends_the_suffix() {
        assert_eq!(
            shm_path(Path::new("/var/lib/tether.db")),
            PathBuf::from("/var/lib/tether.db-shm")
        );
    }
}

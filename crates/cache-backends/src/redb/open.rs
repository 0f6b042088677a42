//! Opening the file: creating it, checking it is ours, and recreating it
//! when asked to and it cannot be read. The writer opens it again the same
//! way after an I/O error.

use std::any::Any;
use std::io::ErrorKind as IoKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;

use ::redb::{Database, DatabaseError, StorageError};
use cache_core::{Error, ErrorKind, Result};

use super::storage::Storage;
use super::tables::Tables;

/// An open file and what the tier needs to know about it.
pub(super) struct Opened {
    pub(super) db: Database,
    pub(super) used_bytes: u64,
    pub(super) next_tick: u64,
}

/// Why an open failed, and whether deleting the file could cure it.
struct Failure {
    error: Error,
    /// The file exists but is not a usable tiercache file (not redb,
    /// corrupted, another layout). Other failures, such as the file being
    /// open in another process or a permission error, are never cured by
    /// deleting it, and deleting would destroy someone else's data.
    curable: bool,
}

/// Everything needed to open the tier's database, kept by the writer so
/// that it can reopen the database after an I/O error.
#[derive(Clone)]
pub(super) struct Opener {
    pub(super) storage: Arc<dyn Storage>,
    /// The tier's path, named in every error.
    pub(super) path: PathBuf,
    pub(super) cache_size: usize,
    pub(super) max_bytes: u64,
    /// Whether storage that cannot be read as this tier's file is erased
    /// and created afresh.
    pub(super) recreate: bool,
}

impl Opener {
    /// Opens (or creates) the database, evicting down to `max_bytes`. With
    /// `recreate`, storage that cannot be read as a tiercache file is
    /// erased and created afresh.
    pub(super) fn open(&self) -> Result<Opened> {
        match self.attempt() {
            Ok(opened) => Ok(opened),
            Err(failure) if self.recreate && failure.curable => {
                self.storage.erase().map_err(|e| {
                    Error::new(
                        ErrorKind::Backend,
                        format!(
                            "cannot delete the unreadable redb file {}",
                            self.path.display()
                        ),
                    )
                    .with_source(e)
                })?;
                self.attempt().map_err(|f| f.error)
            }
            Err(failure) => Err(failure.error),
        }
    }

    /// One try at opening. redb documents that opening a file damaged
    /// outside redb may panic, so a panic is caught and reported as an
    /// unreadable file rather than taking the caller down.
    fn attempt(&self) -> Result<Opened, Failure> {
        match catch_unwind(AssertUnwindSafe(|| self.open_checked())) {
            Ok(outcome) => outcome,
            Err(panic) => Err(Failure {
                error: Error::new(
                    ErrorKind::Backend,
                    format!(
                        "cannot open the redb file {}: redb panicked: {}",
                        self.path.display(),
                        panic_message(&*panic)
                    ),
                ),
                curable: true,
            }),
        }
    }

    /// Opens the database with redb and prepares the tables, naming the
    /// file in any error.
    fn open_checked(&self) -> Result<Opened, Failure> {
        let path = &self.path;
        let mut builder = ::redb::Builder::new();
        builder.set_cache_size(self.cache_size);
        let db = self.storage.create(&builder).map_err(|e| {
            let kind = match e {
                DatabaseError::DatabaseAlreadyOpen => ErrorKind::Unavailable,
                _ => ErrorKind::Backend,
            };
            Failure {
                curable: database_curable(&e),
                error: Error::new(
                    kind,
                    format!("cannot open the redb file {}", path.display()),
                )
                .with_source(e),
            }
        })?;
        let unusable = |source: Box<dyn std::error::Error + Send + Sync>, curable| Failure {
            error: Error::new(
                ErrorKind::Backend,
                format!("cannot use the redb file {}", path.display()),
            )
            .with_shared_source(source.into()),
            curable,
        };
        let (used_bytes, next_tick) = match prepare(&db, self.max_bytes) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Err(unusable(Box::new(ForeignLayout), true)),
            Err(e) => {
                let curable = redb_curable(&e);
                return Err(unusable(Box::new(e), curable));
            }
        };
        Ok(Opened {
            db,
            used_bytes,
            next_tick,
        })
    }
}

/// A file that is a redb database but not one this tier wrote.
#[derive(Debug)]
struct ForeignLayout;

impl std::fmt::Display for ForeignLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("it holds tiercache tables of another layout, or entries it did not write")
    }
}

impl std::error::Error for ForeignLayout {}

/// Creates the tables, checks the layout, and evicts down to `max_bytes`
/// (the bound may have shrunk since the file was written), in one durable
/// commit. Returns the byte total and the next access tick, or `None` if
/// the file is not ours.
fn prepare(db: &Database, max_bytes: u64) -> Result<Option<(u64, u64)>, ::redb::Error> {
    let txn = db.begin_write()?;
    let prepared = {
        let mut tables = Tables::open(&txn)?;
        if !tables.claim_layout()? {
            return Ok(None);
        }
        tables.evict(max_bytes)?;
        let next_tick = tables.next_tick()?;
        let (used_bytes, _, _) = tables.finish()?;
        (used_bytes, next_tick)
    };
    txn.commit()?;
    Ok(Some(prepared))
}

/// Whether redb refused to open the file because of what the file holds,
/// rather than because of where it is or who holds it.
fn database_curable(e: &DatabaseError) -> bool {
    match e {
        DatabaseError::Storage(s) => storage_curable(s),
        DatabaseError::UpgradeRequired(_) | DatabaseError::RepairAborted => true,
        _ => false,
    }
}

/// Whether a storage failure is the file's content (damage, or bytes that
/// are not a redb file: redb reports a wrong magic number as invalid data).
fn storage_curable(e: &StorageError) -> bool {
    match e {
        StorageError::Corrupted(_) => true,
        StorageError::Io(io) => matches!(io.kind(), IoKind::InvalidData | IoKind::UnexpectedEof),
        _ => false,
    }
}

/// Whether an error met while preparing the tables means the file is not
/// ours: a table of the same name but another type, or damaged storage.
fn redb_curable(e: &::redb::Error) -> bool {
    match e {
        ::redb::Error::Corrupted(_)
        | ::redb::Error::TableTypeMismatch { .. }
        | ::redb::Error::TableIsMultimap(_)
        | ::redb::Error::TypeDefinitionChanged { .. } => true,
        ::redb::Error::Io(io) => matches!(io.kind(), IoKind::InvalidData | IoKind::UnexpectedEof),
        _ => false,
    }
}

/// The text of a caught panic, when it carried one.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

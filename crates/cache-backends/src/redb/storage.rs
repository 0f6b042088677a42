//! Where the redb database lives: the file at the tier's path, or a
//! caller's [`StorageBackend`].

use std::fmt;
use std::path::PathBuf;

use ::redb::{Database, DatabaseError, StorageBackend};

/// A place the tier can open its database in, again and again: the tier
/// reopens it after an I/O error, so it needs a way to get fresh storage,
/// not one storage object that the failed database consumed.
pub(super) trait Storage: Send + Sync + 'static {
    /// Opens (or creates) the database with `builder`'s settings.
    fn create(&self, builder: &::redb::Builder) -> Result<Database, DatabaseError>;

    /// Deletes what the storage holds, so that the next
    /// [`create`](Self::create) starts an empty database.
    fn erase(&self) -> std::io::Result<()>;
}

/// The file at a path, opened by redb itself.
pub(super) struct FileStorage(pub(super) PathBuf);

impl Storage for FileStorage {
    fn create(&self, builder: &::redb::Builder) -> Result<Database, DatabaseError> {
        builder.create(&self.0)
    }

    fn erase(&self) -> std::io::Result<()> {
        std::fs::remove_file(&self.0)
    }
}

/// A caller's storage, made fresh for each open by `F`.
pub(super) struct CustomStorage<F>(pub(super) F);

impl<F, B> Storage for CustomStorage<F>
where
    F: Fn() -> std::io::Result<B> + Send + Sync + 'static,
    B: StorageBackend,
{
    fn create(&self, builder: &::redb::Builder) -> Result<Database, DatabaseError> {
        builder.create_with_backend((self.0)()?)
    }

    /// Truncating is the one way to empty a storage that the trait offers;
    /// redb initializes an empty one as a new database.
    fn erase(&self) -> std::io::Result<()> {
        (self.0)()?.set_len(0)
    }
}

/// How a builder prints its storage: the closure itself has nothing to show.
pub(super) struct Described<'a>(pub(super) &'a Option<std::sync::Arc<dyn Storage>>);

impl fmt::Debug for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "custom",
            None => "file",
        })
    }
}

//! The system of record behind the cache, as the read and write paths see
//! it: a store and its write policy (feature `policies`), or nothing.
//!
//! The write path hands each insert and removal here first, under the
//! key's stripe lock: write-through and write-around wait for the store,
//! write-back for the durable log; an error changes no tier. The read path
//! asks here for a dirty key's latest write before it asks the tiers below
//! memory, and loads from the store on a miss everywhere (read-through).
//! Without the feature, `off.rs` answers "no store" to all of it and the
//! paths take their store-less shortcuts.

#[cfg(feature = "policies")]
mod on;
#[cfg(feature = "policies")]
pub(crate) use on::Record;

#[cfg(not(feature = "policies"))]
mod off;
#[cfg(not(feature = "policies"))]
pub(crate) use off::Record;

/// What the tiers do with an insert the system of record accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Staged {
    /// Write the value, as without a store.
    Write,
    /// Remove the key from every tier instead (write-around): the next
    /// read loads it from the store.
    Invalidate,
}

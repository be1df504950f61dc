//! Alerts and traffic history in one redb file.
//!
//! - [`alerts`]: incidents by id, queried newest first.
//! - [`history`]: counter deltas per second and per minute, served as rates.
//! - [`blocks`]: the blocklist, restored on restart.
//! - [`flows`]: flow records, listed newest first with filters.
//! - [`hosts`]: flows added up by host: one host's traffic, top talkers.
//! - [`health`]: failed writes, retries and the alerts waiting for them.
//!
//! The file carries a schema marker (table `nta_meta`) written when nta creates
//! it. Opening checks the marker before touching anything else, so a path that
//! points at some other file fails with an error naming it instead of being
//! reset: the store is the only record of past incidents.

mod alerts;
mod blocks;
mod flows;
mod health;
mod history;
mod hosts;
mod writer;

use std::{
    ffi::OsString,
    fs,
    io::{self, Read},
    path::{Path, PathBuf},
    sync::{
        PoisonError, RwLock, RwLockReadGuard,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
};

use jiff::Timestamp;
use redb::{
    Builder, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTable,
    StorageError, TableDefinition, TableHandle, TransactionError, WriteTransaction,
};

pub use alerts::{AlertJson, AlertPage, AlertQuery, MAX_ALERT_LIMIT};
pub use flows::{FlowPage, FlowQuery, MAX_FLOW_LIMIT, StoredFlow};
pub use health::StoreHealth;
pub use history::{
    HistoryPoint, HistoryQuery, MAX_HISTORY_POINTS, Metric, Retention, UnknownMetric,
};
pub use hosts::{
    Bucket, HOST_TOP_N, HostQuery, HostTotals, HostTraffic, MAX_FLOWS_SCANNED, MAX_SERIES_BUCKETS,
    MAX_TOP_LIMIT, Peer, PortUse, TopBy, TopHosts, TopQuery,
};
pub use writer::{FLOW_QUEUE_MAX, HISTORY_QUEUE_MAX, HealthReport, StoreWriter};

/// Schema marker and small settings that must survive restarts.
const META: TableDefinition<&str, u64> = TableDefinition::new("nta_meta");
/// Key in [`META`] of the layout version of every other table.
const SCHEMA_VERSION_KEY: &str = "schema_version";
/// Layout this build reads and writes; bump it when a table's encoding changes.
const SCHEMA_VERSION: u64 = 1;

/// Memory redb may keep of the file's pages: its default, 1 GiB, would
/// let the agent grow with the store (flow records fill it by the
/// hundred thousand); the kernel's page cache holds the file anyway, and
/// 16 MiB keeps the B-trees' inner pages, which every query touches.
const CACHE_BYTES: usize = 16 << 20;

/// redb's builder with nta's settings.
fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// The first bytes of every redb file. Checked before redb opens a file so
/// that a file that is not a database is reported, not handed to redb's
/// repair logic.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Errors of the store; each names the file and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create directory {} for the store: {source}; create it or choose another store path",
        dir.display()
    )]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error("cannot read store file {}: {source}; check its permissions or choose another store path", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "{} is not an nta store ({reason}); nta leaves it untouched: move it aside or choose another store path",
        path.display()
    )]
    NotAStore { path: PathBuf, reason: String },
    #[error(
        "store {} is corrupted ({reason}); nta leaves it untouched: move it aside (a new store is then created) or restore a backup",
        path.display()
    )]
    Corrupted { path: PathBuf, reason: String },
    #[error("store {} is already open, probably by another nta agent; stop that agent or choose another store path", path.display())]
    AlreadyOpen { path: PathBuf },
    #[error(
        "store {} has schema version {found}, this nta reads version {expected}; run a matching nta or choose another store path",
        path.display()
    )]
    SchemaVersion {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("store {}: {action} failed: {source}; check the disk (space, permissions, I/O errors)", path.display())]
    Database {
        path: PathBuf,
        action: &'static str,
        source: Box<redb::Error>,
    },
    #[error("store {}: flow {id} cannot be decoded: {source}; the file may be damaged", path.display())]
    CorruptFlow {
        path: PathBuf,
        id: u64,
        source: serde_json::Error,
    },
    #[error("store {}: alert {id} cannot be decoded: {source}; the file may be damaged", path.display())]
    CorruptAlert {
        path: PathBuf,
        id: u64,
        source: serde_json::Error,
    },
    #[error("store {}: block {cidr} cannot be encoded or decoded: {source}; the file may be damaged", path.display())]
    CorruptBlock {
        path: PathBuf,
        cidr: String,
        source: serde_json::Error,
    },
    /// A query the store refuses as asked: the caller's to fix, not the
    /// disk's.
    #[error(transparent)]
    Query(#[from] QueryError),
}

/// A query the store cannot answer as asked; each names what to change.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("alert query limit must be between 1 and {MAX_ALERT_LIMIT}, got {limit}")]
    InvalidLimit { limit: usize },
    #[error("history step must be at least 1 second")]
    ZeroStep,
    #[error("history range ends ({until}) before it starts ({since})")]
    UntilBeforeSince { since: Timestamp, until: Timestamp },
    #[error(
        "history query would return {points} points of {step_secs} s, at most {MAX_HISTORY_POINTS}; use a larger step or a shorter range"
    )]
    TooManyPoints { points: u64, step_secs: u64 },
}

impl QueryError {
    /// The part of the query at fault, by the name the API gives it.
    pub fn parameter(&self) -> &'static str {
        match self {
            Self::InvalidLimit { .. } => "limit",
            Self::ZeroStep | Self::TooManyPoints { .. } => "step",
            Self::UntilBeforeSince { .. } => "until",
        }
    }
}

/// nta's persistent state: alerts and traffic history. Cheap to share behind
/// an `Arc`; redb serializes writers and lets readers see committed snapshots.
pub struct Store {
    db: Handle,
    /// Set by any error that leaves redb's handle failed (an I/O error, and
    /// every later operation's `PreviousIo`): [`Store::with_recovery`] then
    /// reopens the file.
    failed: AtomicBool,
    path: PathBuf,
    /// Next alert id to hand out; starts after the largest stored id.
    next_alert_id: AtomicU64,
    /// Likewise for flow records.
    next_flow_id: AtomicU64,
    /// First second from which per-second history is complete: rows before it
    /// were pruned, so older ranges are answered from the per-minute table.
    sec_floor: AtomicI64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// What the tables of a file say about it.
enum Schema {
    /// No tables at all: a file nta (or redb) created but never wrote to, e.g.
    /// after a crash between creating the file and committing the marker.
    /// Adopting it loses nothing.
    Empty,
    Version(u64),
    Foreign(Vec<String>),
}

impl Store {
    /// Opens or creates the store at `path`, creating parent directories.
    ///
    /// A file that is not an nta store (not a redb file, a redb file without
    /// nta's schema marker, a corrupted file, another schema version) is an
    /// error naming the path; it is never reset or overwritten.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        let existing = match fs::metadata(path) {
            Ok(meta) => meta.len() > 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if existing {
            check_magic(path)?;
            // Read-only first: a foreign redb file is then refused without
            // redb writing to it (a read-write open commits, see below).
            check_schema_read_only(path)?;
        }
        // Checking integrity on open verifies every page's checksum, so a
        // damaged file fails here with `Corrupted` instead of panicking or
        // returning garbage later. The file is small (retention bounds the
        // history tables), so reading it whole at startup is cheap.
        let db = builder()
            .set_check_integrity_on_open(true)
            .create(path)
            .map_err(|e| open_error(path, e))?;
        let store = Store {
            db: Handle(RwLock::new(Some(db))),
            failed: AtomicBool::new(false),
            path: path.to_owned(),
            next_alert_id: AtomicU64::new(1),
            next_flow_id: AtomicU64::new(1),
            sec_floor: AtomicI64::new(i64::MIN),
        };
        store.init_tables()?;
        store.load_counters()?;
        Ok(store)
    }

    /// `$XDG_DATA_HOME/nta/nta.redb`, else `$HOME/.local/share/nta/nta.redb`.
    pub fn default_path() -> Option<PathBuf> {
        data_path(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
    }

    /// Size of the file on disk, in bytes (0 if it cannot be read).
    pub fn size_bytes(&self) -> u64 {
        fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the schema marker into a new file, refuses a foreign one and
    /// creates the tables, in one transaction.
    fn init_tables(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(self.db_err("opening"))?;
        let names: Vec<String> = txn
            .list_tables()
            .map_err(self.db_err("listing tables"))?
            .map(|t| t.name().to_owned())
            .collect();
        {
            let mut meta = txn.open_table(META).map_err(self.db_err("opening"))?;
            let schema = if names.iter().any(|n| n == META.name()) {
                let version = meta
                    .get(SCHEMA_VERSION_KEY)
                    .map_err(self.db_err("reading the schema version"))?
                    .map(|v| v.value());
                match version {
                    Some(v) => Schema::Version(v),
                    None => Schema::Foreign(names),
                }
            } else if names.is_empty() {
                Schema::Empty
            } else {
                Schema::Foreign(names)
            };
            match schema {
                Schema::Empty => {
                    meta.insert(SCHEMA_VERSION_KEY, SCHEMA_VERSION)
                        .map_err(self.db_err("writing the schema version"))?;
                }
                other => check_schema(&self.path, other)?,
            }
            txn.open_table(alerts::ALERTS)
                .map_err(self.db_err("creating tables"))?;
            txn.open_table(history::HISTORY_SEC)
                .map_err(self.db_err("creating tables"))?;
            txn.open_table(history::HISTORY_MIN)
                .map_err(self.db_err("creating tables"))?;
            // Added after schema version 1 was released: a new table, so
            // older stores gain it here without a version change.
            txn.open_table(blocks::BLOCKS)
                .map_err(self.db_err("creating tables"))?;
            // Flows came later still, likewise.
            txn.open_table(flows::FLOWS)
                .map_err(self.db_err("creating tables"))?;
            txn.open_table(flows::FLOWS_BY_END)
                .map_err(self.db_err("creating tables"))?;
            txn.open_table(flows::FLOWS_BY_HOST)
                .map_err(self.db_err("creating tables"))?;
        }
        self.index_alerts_by_kind(&txn)?;
        txn.commit().map_err(self.db_err("creating tables"))
    }

    /// Loads the in-memory state kept across restarts: the next alert id and
    /// the per-second history floor.
    fn load_counters(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(self.db_err("opening"))?;
        let alerts = txn
            .open_table(alerts::ALERTS)
            .map_err(self.db_err("reading alerts"))?;
        if let Some((id, _)) = alerts.last().map_err(self.db_err("reading alerts"))? {
            self.next_alert_id
                .store(id.value().saturating_add(1), Ordering::Relaxed);
        }
        let flows = txn
            .open_table(flows::FLOWS)
            .map_err(self.db_err("reading flows"))?;
        if let Some((id, _)) = flows.last().map_err(self.db_err("reading flows"))? {
            self.next_flow_id
                .store(id.value().saturating_add(1), Ordering::Relaxed);
        }
        let meta = txn.open_table(META).map_err(self.db_err("opening"))?;
        if let Some(floor) = meta
            .get(history::SEC_FLOOR_KEY)
            .map_err(self.db_err("reading history settings"))?
        {
            self.sec_floor.store(
                i64::try_from(floor.value()).unwrap_or(i64::MAX),
                Ordering::Relaxed,
            );
        }
        Ok(())
    }

    /// Runs `write`, reopening the file before it if an earlier I/O error
    /// left redb's handle failed, and again after it if it fails that way.
    ///
    /// After an I/O error (a full disk, a read-only or failing filesystem)
    /// redb fails every later operation, reads included, until the file is
    /// closed and opened again; opening repairs what the failed commit left.
    /// Reopening right after a failure keeps reads (the API) working while
    /// the disk stays full; the caller bounds how often it retries.
    pub fn with_recovery<T>(
        &self,
        write: impl FnOnce(&Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.recover()?;
        let result = write(self);
        if result.is_err() {
            // Best effort: if this fails the flag stays set, and the
            // caller's next attempt tries again.
            let _ = self.recover();
        }
        result
    }

    /// Reopens the file if an I/O error left the handle failed.
    fn recover(&self) -> Result<(), StoreError> {
        if !self.failed.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut slot = self.db.0.write().unwrap_or_else(PoisonError::into_inner);
        // The old handle must close first: the file is locked while open.
        // Its error is the failure already reported; a write transaction
        // still running keeps it open, and the open below then fails with
        // `AlreadyOpen` until a later attempt.
        if let Some(old) = slot.take() {
            let _ = old.close();
        }
        // The file as it is, never a new one: if its disk was unmounted,
        // the path may now lead into the empty directory underneath, and a
        // store created there would take the backlog out of sight.
        let db = builder()
            .open(&self.path)
            .map_err(|e| open_error(&self.path, e))?;
        *slot = Some(db);
        self.failed.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// `table` as it is now, for reading, in a transaction of its own;
    /// failures are `action`'s.
    fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        table: TableDefinition<K, V>,
        action: &'static str,
    ) -> Result<Held<'_, redb::ReadOnlyTable<K, V>>, StoreError> {
        let Held {
            value: txn,
            _handle,
        } = self.db.begin_read().map_err(self.db_err(action))?;
        // The table keeps its transaction alive; the handle stays held.
        let table = txn.open_table(table).map_err(self.db_err(action))?;
        Ok(Held {
            value: table,
            _handle,
        })
    }

    /// Maps a redb error to [`StoreError::Database`] for this file, noting
    /// errors that leave the handle failed.
    fn db_err<E: Into<redb::Error>>(&self, action: &'static str) -> impl Fn(E) -> StoreError {
        let to_error = db_error(&self.path, action);
        move |e| {
            let error = to_error(e);
            if error.failed_handle() {
                self.failed.store(true, Ordering::Relaxed);
            }
            error
        }
    }
}

impl StoreError {
    /// Whether redb reported an I/O error, or refuses to work after one:
    /// the store is unavailable until the file can be opened again (a
    /// failing or read-only disk), which the store writer retries.
    pub fn failed_handle(&self) -> bool {
        matches!(
            self,
            StoreError::Database { source, .. }
                if matches!(**source, redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed)
        )
    }
}

/// The open database, or none after a reopen failed.
struct Handle(RwLock<Option<Database>>);

impl Handle {
    fn begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        let db = self.0.read().unwrap_or_else(PoisonError::into_inner);
        db.as_ref().ok_or_else(closed)?.begin_write()
    }

    /// A read transaction, holding the handle: a reopen (which closes the
    /// handle, failing the reads in progress with `DatabaseClosed`) waits
    /// for it to end.
    fn begin_read(&self) -> Result<Held<'_, ReadTransaction>, TransactionError> {
        let db = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let txn = db.as_ref().ok_or_else(closed)?.begin_read()?;
        Ok(Held {
            value: txn,
            _handle: db,
        })
    }
}

/// Something read through the handle, with the handle held until it is
/// dropped (after the value: fields drop in order).
pub(crate) struct Held<'a, T> {
    value: T,
    _handle: RwLockReadGuard<'a, Option<Database>>,
}

impl<T> std::ops::Deref for Held<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// redb's own error for a closed database: what an empty slot reports.
fn closed() -> TransactionError {
    TransactionError::Storage(StorageError::DatabaseClosed)
}

/// Maps a redb error to [`StoreError::Database`] for the file at `path`.
fn db_error<E: Into<redb::Error>>(path: &Path, action: &'static str) -> impl Fn(E) -> StoreError {
    move |e| StoreError::Database {
        path: path.to_owned(),
        action,
        source: Box::new(e.into()),
    }
}

/// The default store path given `$XDG_DATA_HOME` and `$HOME`. Relative values
/// are ignored, as the XDG base directory spec asks.
fn data_path(xdg_data_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let data = xdg_data_home
        .and_then(absolute)
        .or_else(|| home.and_then(absolute).map(|h| h.join(".local/share")))?;
    Some(data.join("nta").join("nta.redb"))
}

/// Refuses a non-empty file that does not start like a redb file.
fn check_magic(path: &Path) -> Result<(), StoreError> {
    let read_err = |source| StoreError::Read {
        path: path.to_owned(),
        source,
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    fs::File::open(path)
        .map_err(read_err)?
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(read_err)?;
    if head != REDB_MAGIC {
        return Err(StoreError::NotAStore {
            path: path.to_owned(),
            reason: "it is not a redb database".into(),
        });
    }
    Ok(())
}

/// Checks the schema marker of an existing file without writing to it.
fn check_schema_read_only(path: &Path) -> Result<(), StoreError> {
    let db = match builder().open_read_only(path) {
        Ok(db) => db,
        // The previous writer did not shut down cleanly; a read-only open
        // cannot repair. The read-write open repairs it and `init_tables`
        // checks the marker then.
        Err(DatabaseError::RepairAborted) => return Ok(()),
        Err(e) => return Err(open_error(path, e)),
    };
    let txn = db.begin_read().map_err(db_error(path, "opening"))?;
    let names: Vec<String> = txn
        .list_tables()
        .map_err(db_error(path, "listing tables"))?
        .map(|t| t.name().to_owned())
        .collect();
    let schema = if names.iter().any(|n| n == META.name()) {
        let meta = txn.open_table(META).map_err(db_error(path, "opening"))?;
        match meta
            .get(SCHEMA_VERSION_KEY)
            .map_err(db_error(path, "reading the schema version"))?
        {
            Some(v) => Schema::Version(v.value()),
            None => Schema::Foreign(names),
        }
    } else if names.is_empty() {
        Schema::Empty
    } else {
        Schema::Foreign(names)
    };
    check_schema(path, schema)
}

fn check_schema(path: &Path, schema: Schema) -> Result<(), StoreError> {
    match schema {
        Schema::Empty => Ok(()),
        Schema::Version(SCHEMA_VERSION) => Ok(()),
        Schema::Version(found) => Err(StoreError::SchemaVersion {
            path: path.to_owned(),
            found,
            expected: SCHEMA_VERSION,
        }),
        Schema::Foreign(names) => Err(StoreError::NotAStore {
            path: path.to_owned(),
            reason: format!(
                "a redb database without nta's schema marker; its tables: {}",
                names.join(", ")
            ),
        }),
    }
}

/// Turns redb's open errors into ones that say what is wrong with the file.
fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    let path = path.to_owned();
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen { path },
        DatabaseError::UpgradeRequired(version) => StoreError::NotAStore {
            path,
            reason: format!("a redb database in the old file format {version}"),
        },
        // redb reports "not a database" as an I/O error of kind InvalidData.
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == io::ErrorKind::InvalidData => {
            StoreError::NotAStore {
                path,
                reason: io.to_string(),
            }
        }
        DatabaseError::Storage(StorageError::Corrupted(reason)) => {
            StoreError::Corrupted { path, reason }
        }
        other => StoreError::Database {
            path,
            action: "opening",
            source: Box::new(other.into()),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A store in a fresh temporary directory (kept alive by the returned guard).
    pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("nta.redb")).expect("open store");
        (dir, store)
    }

    #[test]
    fn open_creates_parent_directories_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/nta.redb");
        drop(Store::open(&path).expect("create"));
        assert!(path.is_file());
        let store = Store::open(&path).expect("reopen");
        assert!(store.size_bytes() > 0);
        assert_eq!(store.path(), path);
    }

    /// A store file holding `bytes`, in a fresh temporary directory.
    fn file_holding(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nta.redb");
        fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// Opening `path` fails (`expected` says why it should), naming the
    /// file and leaving it as it was: the error.
    fn refused(path: &Path, expected: &str) -> StoreError {
        let before = fs::read(path).unwrap();
        let err = Store::open(path).expect_err(expected);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(fs::read(path).unwrap(), before, "file was modified");
        err
    }

    /// [`refused`], as not an nta store, the error mentioning `mentions`.
    fn refused_as_not_a_store(path: &Path, mentions: &str) {
        let err = refused(path, "a file that is not an nta store must not open");
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
        assert!(err.to_string().contains(mentions), "{err}");
    }

    #[test]
    fn garbage_file_is_refused_and_left_untouched() {
        let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
        let (_dir, path) = file_holding(&garbage);
        refused_as_not_a_store(&path, "not an nta store");
    }

    #[test]
    fn garbage_starting_with_the_redb_magic_is_refused_and_left_untouched() {
        let mut bytes = REDB_MAGIC.to_vec();
        bytes.extend((0..8_000u32).map(|i| (i * 13 + 1) as u8));
        let (_dir, path) = file_holding(&bytes);
        refused(&path, "damaged file must not open");
    }

    #[test]
    fn foreign_redb_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let table: TableDefinition<&str, &str> = TableDefinition::new("settings");
                let mut t = txn.open_table(table).unwrap();
                t.insert("colour", "blue").unwrap();
            }
            txn.commit().unwrap();
        }

        refused_as_not_a_store(&path, "settings");
    }

    #[test]
    fn other_schema_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nta.redb");
        drop(Store::open(&path).unwrap());
        {
            let db = Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(SCHEMA_VERSION_KEY, 99)
                .unwrap();
            txn.commit().unwrap();
        }

        let err = refused(&path, "newer schema must not open");
        assert!(
            matches!(err, StoreError::SchemaVersion { found: 99, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_second_open_of_the_same_file_says_it_is_in_use() {
        let (dir, _store) = temp_store();
        let err = Store::open(&dir.path().join("nta.redb")).expect_err("second open");
        assert!(matches!(err, StoreError::AlreadyOpen { .. }), "{err:?}");
    }

    #[test]
    fn default_path_follows_xdg_then_home() {
        assert_eq!(
            data_path(Some("/xdg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/xdg/nta/nta.redb"))
        );
        assert_eq!(
            data_path(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.local/share/nta/nta.redb"))
        );
        assert_eq!(
            data_path(Some("relative".into()), Some("/root".into())),
            Some(PathBuf::from("/root/.local/share/nta/nta.redb"))
        );
        assert_eq!(data_path(None, None), None);
    }
}

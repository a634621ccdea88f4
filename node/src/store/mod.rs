//! The node's store: one RocksDB database holding every inbox, the dump, bot state and counters.
//! The only module that imports `rocksdb`; depends on nothing of ours.
//!
//! * One column family per queue (`inbox:<queue>`), keys are big-endian u64 sequence numbers, so
//!   iteration order is FIFO order. Head and tail are kept in memory; reads start at the head with
//!   an upper bound so deleted entries below the head are never scanned (the "tombstone trap" of
//!   RocksDB queues).
//! * [`Step`] is one processing step: outputs put into every destination inbox, the acks of the
//!   consumed inputs, dump entries, bot state and counters, committed as one `WriteBatch`.
//! * An inbox's acknowledgements move its persisted head (`head:<cf>` in `meta`, one small put per
//!   step) instead of deleting each entry: a point delete is a second skiplist insert per message
//!   (measured: 8% of a pipeline's instructions). Entries below the head are consumed whatever
//!   is still stored; now and then (see [`RANGE_DELETE_EVERY`]) one range delete removes them,
//!   so a memtable holding both the entries and the range still drops them at flush.
//! * Sequence numbers of a commit are assigned under one lock held until the write returns, so
//!   entries become visible in sequence order and a consumer never skips a late writer.
//! * Memory does not grow with the data: all memtables share one write-buffer limit and all column
//!   families one block cache (index and filter blocks included): 64 MB and 32 MB.
//! * Consumed ranges are compacted away: once an inbox has been acknowledged [`COMPACT_EVERY`]
//!   times, or drains after holding a [`BACKLOG`], a background thread compacts its keys below the
//!   head, so the disk space of a drained backlog is given back.
//! * Cross-node queues: a put to a queue another node owns ([`Store::set_remote_queues`]) goes to
//!   `outbox:<queue>` instead, in the same `WriteBatch` as the rest of the step, tagged with the
//!   store's incarnation; it leaves the outbox only when the cluster's forwarder says the broker
//!   confirmed it ([`Store::outbox_confirmed`]).
//! * Durability: the WAL is always on; [`Durability::Always`] fsyncs every commit,
//!   [`Durability::Interval`] fsyncs the WAL in the background (group commit; a process crash
//!   loses nothing because every write reaches the OS before the commit returns),
//!   [`Durability::Never`] leaves fsync to the OS.

mod cf;
mod keys;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocksdb::{
    Cache, ColumnFamilyDescriptor, CompactOptions, DBWithThreadMode, IteratorMode, MultiThreaded, Options, ReadOptions,
    WriteBatch, WriteBufferManager, WriteOptions,
};

type Db = DBWithThreadMode<MultiThreaded>;

/// Errors of the store; each names the queue, bot or path concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source}")]
    Open { path: PathBuf, source: rocksdb::Error },
    #[error("cannot create the store directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("store at {path} has format version {found}, this node understands {expected}")]
    Format { path: PathBuf, found: u64, expected: u64 },
    #[error("unknown queue `{0}`")]
    UnknownQueue(String),
    #[error("store i/o failed: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt store entry in {cf}: {reason}")]
    Corrupt { cf: String, reason: String },
}

/// How hard a commit is pushed to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the WAL on every commit: survives power loss.
    Always,
    /// fsync the WAL every interval (group commit): survives a process crash with zero loss.
    Interval(Duration),
    /// never fsync explicitly: survives a process crash, not power loss.
    Never,
}

/// Counters of one bot, persisted with its commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Messages taken from the inbox (or reports produced, for collectors).
    pub received: u64,
    /// Messages sent to destination queues.
    pub sent: u64,
    /// Messages written to the dump.
    pub dumped: u64,
    /// Failed attempts that were retried.
    pub retries: u64,
}

/// One entry of the dump (a failed message), as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DumpEntry {
    pub bot_id: String,
    pub source_queue: Option<String>,
    /// UTC time of the failure, IntelMQ's dump key format (`2024-05-01T10:00:00.123456`).
    pub time: String,
    /// The error and its context, one line per entry (IntelMQ `traceback`).
    pub traceback: Vec<String>,
    /// The serialised message, or the base64 of undecodable bytes.
    pub message: String,
    /// `"base64"` when `message` holds raw bytes that could not be decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
}

/// A message read from an inbox.
#[derive(Clone, Debug)]
pub struct Queued {
    pub seq: u64,
    pub data: Vec<u8>,
}

/// A message waiting in an outbox for the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    pub seq: u64,
    /// The incarnation of the store that wrote it: with the node id and `seq`, the message's id.
    pub incarnation: u64,
    pub data: Vec<u8>,
}

/// Everything one processing step writes, committed atomically by [`Store::commit`].
///
/// Queue and bot names are kept once per step, and puts, acks and state writes refer to them by
/// index: a step of a thousand messages to one queue holds that queue's name once.
#[derive(Default, Debug)]
pub struct Step {
    /// The queues this step puts into or acknowledges from.
    queues: Vec<String>,
    /// The bots whose state this step writes.
    bots: Vec<String>,
    puts: Vec<(usize, Vec<u8>)>,
    acks: Vec<(usize, u64)>,
    dumps: Vec<DumpEntry>,
    state: Vec<(usize, Vec<u8>, Option<(Vec<u8>, u64)>)>,
    counters: Vec<(String, Counters)>,
    dump_deletes: Vec<u64>,
}

/// The index of `name` in `names`, added when missing (steps name a handful at most).
fn name_index(names: &mut Vec<String>, name: &str) -> usize {
    match names.iter().position(|n| n == name) {
        Some(i) => i,
        None => {
            names.push(name.to_string());
            names.len() - 1
        }
    }
}

impl Step {
    pub fn new() -> Self {
        Step::default()
    }

    /// Appends a message to `queue`.
    pub fn put(&mut self, queue: &str, data: Vec<u8>) {
        let q = name_index(&mut self.queues, queue);
        self.puts.push((q, data));
    }

    /// Acknowledges message `seq` of `queue`: from the commit on, it is consumed (see
    /// [`Store::commit`] for how it leaves the disk).
    pub fn ack(&mut self, queue: &str, seq: u64) {
        let q = name_index(&mut self.queues, queue);
        self.acks.push((q, seq));
    }

    pub fn dump(&mut self, entry: DumpEntry) {
        self.dumps.push(entry);
    }

    /// Removes dump entry `id` (e.g. recovered in the same step).
    pub fn delete_dump(&mut self, id: u64) {
        self.dump_deletes.push(id);
    }

    /// The messages this step puts, with their queue, in order.
    pub fn puts(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.puts.iter().map(|(q, d)| (self.queues[*q].as_str(), d.as_slice()))
    }

    /// Sets a state key of `bot_id`; `expires_at` in unix seconds, 0 = never.
    pub fn state_put(&mut self, bot_id: &str, key: &[u8], value: &[u8], expires_at: u64) {
        let b = name_index(&mut self.bots, bot_id);
        self.state.push((b, key.to_vec(), Some((value.to_vec(), expires_at))));
    }

    pub fn state_delete(&mut self, bot_id: &str, key: &[u8]) {
        let b = name_index(&mut self.bots, bot_id);
        self.state.push((b, key.to_vec(), None));
    }

    /// Records the bot's counters (absolute values).
    pub fn counters(&mut self, bot_id: &str, counters: Counters) {
        self.counters.push((bot_id.to_string(), counters));
    }

    pub fn is_empty(&self) -> bool {
        self.puts.is_empty()
            && self.acks.is_empty()
            && self.dumps.is_empty()
            && self.state.is_empty()
            && self.counters.is_empty()
            && self.dump_deletes.is_empty()
    }

    /// Messages this step puts, per queue.
    pub fn put_counts(&self) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for (q, _) in &self.puts {
            *m.entry(self.queues[*q].as_str()).or_insert(0) += 1;
        }
        m
    }
}

/// The in-memory bookkeeping of one inbox or outbox.
#[derive(Debug, Default)]
struct QueueMeta {
    /// The lowest sequence number that may still be in the queue.
    head: AtomicU64,
    /// The next sequence number to assign.
    tail: AtomicU64,
    /// Messages in the queue.
    len: AtomicU64,
    /// Acknowledgements since the consumed range was last compacted.
    acked_since_compaction: AtomicU64,
    /// The highest length since the consumed range was last compacted.
    peak_len: AtomicU64,
    /// Entries below this have been range-deleted (inboxes; see [`RANGE_DELETE_EVERY`]).
    deleted_below: AtomicU64,
    /// When the last range delete was written (unix milliseconds).
    range_deleted_at: AtomicU64,
}

/// An inbox's consumed entries are range-deleted once this many more have been acknowledged,
/// or [`RANGE_DELETE_AFTER`] after the last range delete, or when it drains after holding a
/// [`BACKLOG`]. Consumed but still stored are thus at most 1023 entries or 100 ms of traffic
/// (big reports, acknowledged one at a time, go at once), and a queue gets at most ten range
/// tombstones a second: few range tombstones keep reads cheap (each read merges the memtable's
/// range tombstones), short stretches keep the consumed entries a flush still writes out few.
pub const RANGE_DELETE_EVERY: u64 = 1024;
/// See [`RANGE_DELETE_EVERY`].
pub const RANGE_DELETE_AFTER: Duration = Duration::from_millis(100);

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// An inbox is compacted below its head after this many acknowledgements ...
pub const COMPACT_EVERY: u64 = 250_000;
/// ... or when it drains after holding at least this many messages (more than its memtables hold,
/// so they reached table files); then every memtable is flushed as well. Queues that only pass
/// bursts along (a parser's report) stay below it.
pub const BACKLOG: u64 = 50_000;

/// A request to the compaction thread: compact column family `cf` below key `below`; once a
/// queue has `drained`, also flush every memtable, so the write-ahead log of the backlog goes too.
struct Compaction {
    cf: String,
    below: u64,
    drained: bool,
}

/// All memtables of all column families together: a flush starts when they reach it.
const WRITE_BUFFERS: usize = 64 << 20;
/// One memtable of one column family at most.
const WRITE_BUFFER_PER_CF: usize = 32 << 20;
/// The block cache shared by every column family (data, index and filter blocks).
const BLOCK_CACHE: usize = 32 << 20;

/// The node's RocksDB store. Cheap to share behind an `Arc`.
pub struct Store {
    db: Arc<Db>,
    path: PathBuf,
    /// Inboxes and outboxes, by column-family name.
    queues: RwLock<HashMap<String, Arc<QueueMeta>>>,
    /// Queues owned by other nodes (queue -> owning node): puts go to their outbox.
    remote: RwLock<HashMap<String, String>>,
    /// Raised each time the store is opened; part of the id of every outbox message.
    incarnation: u64,
    commit_lock: Mutex<u64>,
    durability: Durability,
    dirty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    cache: Cache,
    /// Inboxes to compact below a sequence number, for the compaction thread.
    compact_tx: Mutex<Option<Sender<Compaction>>>,
    compactor: Mutex<Option<JoinHandle<()>>>,
    /// [`RANGE_DELETE_AFTER`] in milliseconds (tests change it).
    range_delete_after_ms: u64,
}

/// Options of every column family. Queue entries live briefly: a message put and deleted within
/// one memtable never reaches disk (the flush drops the put), so memtables are large, and the
/// first two levels are not compressed (mostly tombstones and soon deleted); what stays longer
/// (a backlog, dedup caches) is compressed with LZ4 further down. Bloom filters make the misses of
/// state lookups (dedup caches) cheap, on disk and, for state column families (point lookups of
/// random keys), in the memtable too: a miss there would otherwise walk the skiplist. Blocks,
/// indexes and filters live in the shared cache, so their memory does not grow with the data.
fn cf_options(cache: &Cache, name: &str) -> Options {
    use rocksdb::DBCompressionType::{Lz4, None};
    let mut o = Options::default();
    o.set_write_buffer_size(WRITE_BUFFER_PER_CF);
    o.set_compression_per_level(&[None, None, Lz4, Lz4, Lz4, Lz4, Lz4]);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    o.set_block_based_table_factory(&table);
    if name.starts_with(cf::STATE_PREFIX) {
        o.set_memtable_whole_key_filtering(true);
        o.set_memtable_prefix_bloom_ratio(0.05);
    }
    o
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Store {
    /// Opens (or creates) the store at `path` and makes sure every queue in `queues` has its inbox.
    pub fn open(path: &Path, durability: Durability, queues: &[String]) -> Result<Store, StoreError> {
        Store::open_for(path, durability, queues, &[])
    }

    /// [`Store::open`], also creating the state column family of every bot in `bots` that lacks
    /// one. Created here, they cost one write of RocksDB's OPTIONS file; created on a bot's first
    /// state write, each would rewrite and re-verify that file (some 25 ms with a dozen column
    /// families) while the bot waits.
    pub fn open_for(
        path: &Path,
        durability: Durability,
        queues: &[String],
        bots: &[String],
    ) -> Result<Store, StoreError> {
        std::fs::create_dir_all(path).map_err(|source| StoreError::CreateDir { path: path.to_path_buf(), source })?;
        let cache = Cache::new_lru_cache(BLOCK_CACHE);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager(WRITE_BUFFERS, false));
        opts.set_max_total_wal_size(64 << 20);
        opts.set_keep_log_file_num(3);
        let existing = Db::list_cf(&opts, path).unwrap_or_default();
        let mut names: Vec<String> = existing;
        for fixed in [cf::DEFAULT, cf::DUMP, cf::META, cf::STATS] {
            if !names.iter().any(|n| n == fixed) {
                names.push(fixed.to_string());
            }
        }
        for name in queues.iter().map(|q| cf::inbox(q)).chain(bots.iter().map(|b| cf::state(b))) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        let descriptors = names.iter().map(|n| ColumnFamilyDescriptor::new(n, cf_options(&cache, n)));
        let db = Db::open_cf_descriptors(&opts, path, descriptors)
            .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        let db = Arc::new(db);
        let mut store = Store {
            db: db.clone(),
            path: path.to_path_buf(),
            queues: RwLock::new(HashMap::new()),
            remote: RwLock::new(HashMap::new()),
            incarnation: 0,
            commit_lock: Mutex::new(0),
            durability,
            dirty: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            syncer: Mutex::new(None),
            cache,
            compact_tx: Mutex::new(None),
            compactor: Mutex::new(None),
            range_delete_after_ms: RANGE_DELETE_AFTER.as_millis() as u64,
        };
        store.check_format()?;
        store.incarnation = store.next_incarnation()?;
        let mut dump_seq = 0;
        for name in &names {
            if name.starts_with(cf::INBOX_PREFIX) || name.starts_with(cf::OUTBOX_PREFIX) {
                store.load_queue(name)?;
            }
            if name == cf::DUMP {
                dump_seq = store.last_key(cf::DUMP)?.map(|s| s + 1).unwrap_or(0);
            }
        }
        *store.commit_lock.lock().map_err(|_| poisoned())? = dump_seq;
        if let Durability::Interval(every) = durability {
            let (dirty, stop) = (store.dirty.clone(), store.stop.clone());
            let handle = std::thread::Builder::new()
                .name("store-sync".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        std::thread::sleep(every);
                        if dirty.swap(false, Ordering::AcqRel) {
                            if let Err(e) = db.flush_wal(true) {
                                tracing::error!(error = %e, "wal sync failed");
                            }
                        }
                    }
                })
                .ok();
            *store.syncer.lock().map_err(|_| poisoned())? = handle;
        }
        store.start_compactor()?;
        Ok(store)
    }

    /// The thread that compacts consumed ranges (`compact_range` blocks until it is done).
    fn start_compactor(&self) -> Result<(), StoreError> {
        let (tx, rx) = channel::<Compaction>();
        let (db, path) = (self.db.clone(), self.path.clone());
        let handle = std::thread::Builder::new()
            .name("store-compact".into())
            .spawn(move || {
                let mut opts = CompactOptions::default();
                // Other column families go on compacting meanwhile.
                opts.set_exclusive_manual_compaction(false);
                while let Ok(Compaction { cf, below, drained }) = rx.recv() {
                    let start = std::time::Instant::now();
                    if let Some(handle) = db.cf_handle(&cf) {
                        db.compact_range_cf_opt(&handle, Some(keys::seq_key(0)), Some(keys::seq_key(below)), &opts);
                    }
                    if drained {
                        // A write-ahead log file is deleted once every column family with
                        // entries in it has flushed them.
                        for name in Db::list_cf(&Options::default(), &path).unwrap_or_default() {
                            if let Some(handle) = db.cf_handle(&name) {
                                if let Err(e) = db.flush_cf(&handle) {
                                    tracing::warn!(cf = %name, error = %e, "flush after a drained queue failed");
                                }
                            }
                        }
                    }
                    let took_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                    tracing::debug!(cf = %cf, below, drained, took_ms, "compacted a consumed range");
                }
            })
            .ok();
        *self.compact_tx.lock().map_err(|_| poisoned())? = Some(tx);
        *self.compactor.lock().map_err(|_| poisoned())? = handle;
        Ok(())
    }

    /// Asks the compaction thread to compact inbox or outbox `name` below `below`.
    fn compact_consumed(&self, name: &str, below: u64, drained: bool) {
        if let Ok(tx) = self.compact_tx.lock() {
            if let Some(tx) = tx.as_ref() {
                let _ = tx.send(Compaction { cf: name.to_string(), below, drained });
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_format(&self) -> Result<(), StoreError> {
        let meta = self.cf(cf::META)?;
        match self.db.get_cf(&meta, keys::META_FORMAT_VERSION)? {
            Some(v) => {
                let found = keys::decode_seq(&v).unwrap_or(0);
                if found != keys::FORMAT_VERSION {
                    return Err(StoreError::Format { path: self.path.clone(), found, expected: keys::FORMAT_VERSION });
                }
            }
            None => {
                self.db.put_cf(&meta, keys::META_FORMAT_VERSION, keys::seq_key(keys::FORMAT_VERSION))?;
            }
        }
        Ok(())
    }

    /// Raises the persisted incarnation counter and returns the new value.
    fn next_incarnation(&self) -> Result<u64, StoreError> {
        let meta = self.cf(cf::META)?;
        let last = self.db.get_cf(&meta, keys::META_INCARNATION)?.and_then(|v| keys::decode_seq(&v)).unwrap_or(0);
        let next = last + 1;
        self.db.put_cf(&meta, keys::META_INCARNATION, keys::seq_key(next))?;
        Ok(next)
    }

    /// This opening of the store: larger than every earlier one.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    fn cf(&self, name: &str) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>, StoreError> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::UnknownQueue(name.to_string()))
    }

    /// Returns the handle of a column family, creating it if it does not exist yet.
    fn cf_or_create(&self, name: &str) -> Result<Arc<rocksdb::BoundColumnFamily<'_>>, StoreError> {
        if self.db.cf_handle(name).is_none() {
            self.db.create_cf(name, &cf_options(&self.cache, name))?;
        }
        self.cf(name)
    }

    fn first_key(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let handle = self.cf(name)?;
        let mut it = self.db.iterator_cf(&handle, IteratorMode::Start);
        match it.next() {
            Some(item) => Ok(keys::decode_seq(&item?.0)),
            None => Ok(None),
        }
    }

    fn last_key(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let handle = self.cf(name)?;
        let mut it = self.db.iterator_cf(&handle, IteratorMode::End);
        match it.next() {
            Some(item) => Ok(keys::decode_seq(&item?.0)),
            None => Ok(None),
        }
    }

    /// Loads (or creates) inbox or outbox `name` and counts its messages.
    fn load_queue(&self, name: &str) -> Result<Arc<QueueMeta>, StoreError> {
        self.cf_or_create(name)?;
        let first = self.first_key(name)?;
        let persisted = self.persisted_head(name)?;
        let head = first.unwrap_or(0).max(persisted.unwrap_or(0));
        let tail = self.last_key(name)?.map(|s| s + 1).unwrap_or(head).max(head);
        let handle = self.cf(name)?;
        if let Some(first) = first.filter(|f| *f < head) {
            // Consumed entries not range-deleted before the last stop.
            self.db.delete_range_cf(&handle, keys::seq_key(first), keys::seq_key(head))?;
        }
        let mut len = 0u64;
        // Counting a backlog once must not push the head of every queue out of the cache.
        let mut ro = ReadOptions::default();
        ro.fill_cache(false);
        ro.set_iterate_lower_bound(keys::seq_key(head).to_vec());
        for item in self.db.iterator_cf_opt(&handle, ro, IteratorMode::Start) {
            item?;
            len += 1;
        }
        let meta = Arc::new(QueueMeta {
            head: AtomicU64::new(head),
            tail: AtomicU64::new(tail),
            len: AtomicU64::new(len),
            acked_since_compaction: AtomicU64::new(0),
            peak_len: AtomicU64::new(len),
            deleted_below: AtomicU64::new(head),
            range_deleted_at: AtomicU64::new(0),
        });
        self.queues.write().map_err(|_| poisoned())?.insert(name.to_string(), meta.clone());
        Ok(meta)
    }

    /// The head of inbox `name` as its acknowledgements persisted it, if any.
    fn persisted_head(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let meta = self.cf(cf::META)?;
        Ok(self.db.get_cf(&meta, keys::head_key(name))?.and_then(|v| keys::decode_seq(&v)))
    }

    /// The bookkeeping of inbox or outbox `name`, loading it on first use.
    fn meta(&self, name: &str) -> Result<Arc<QueueMeta>, StoreError> {
        if let Some(m) = self.queues.read().map_err(|_| poisoned())?.get(name) {
            return Ok(m.clone());
        }
        self.load_queue(name)
    }

    /// Makes sure `queue` has an inbox.
    pub fn ensure_queue(&self, queue: &str) -> Result<(), StoreError> {
        self.meta(&cf::inbox(queue)).map(|_| ())
    }

    /// The names of every queue that has an inbox in the store.
    pub fn queue_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .queues
            .read()
            .map(|m| m.keys().filter_map(|n| n.strip_prefix(cf::INBOX_PREFIX)).map(str::to_string).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    fn len_of(&self, name: &str) -> u64 {
        self.queues.read().ok().and_then(|m| m.get(name).map(|q| q.len.load(Ordering::Acquire))).unwrap_or(0)
    }

    /// Messages waiting in `queue`'s inbox (0 for an unknown queue).
    pub fn queue_len(&self, queue: &str) -> u64 {
        self.len_of(&cf::inbox(queue))
    }

    /// Messages for `queue` (owned by another node) not yet confirmed by the broker.
    pub fn outbox_len(&self, queue: &str) -> u64 {
        self.len_of(&cf::outbox(queue))
    }

    /// Messages waiting for `queue` on this node: its inbox, or its outbox when another node owns
    /// it. What backpressure looks at.
    pub fn waiting(&self, queue: &str) -> u64 {
        self.queue_len(queue) + self.outbox_len(queue)
    }

    /// Declares the queues other nodes own (queue -> owning node): from now on a put to one of them
    /// goes to its outbox. Creates the outboxes.
    pub fn set_remote_queues(&self, remote: HashMap<String, String>) -> Result<(), StoreError> {
        for q in remote.keys() {
            self.meta(&cf::outbox(q))?;
        }
        *self.remote.write().map_err(|_| poisoned())? = remote;
        Ok(())
    }

    /// The node owning `queue`, when it is another node.
    pub fn remote_owner(&self, queue: &str) -> Option<String> {
        self.remote.read().ok().and_then(|m| m.get(queue).cloned())
    }

    /// Every queue with an outbox holding messages, with its depth.
    pub fn outboxes(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .queues
            .read()
            .map(|m| {
                m.iter()
                    .filter_map(|(n, meta)| {
                        Some((n.strip_prefix(cf::OUTBOX_PREFIX)?, meta.len.load(Ordering::Acquire)))
                    })
                    .filter(|(_, len)| *len > 0)
                    .map(|(q, len)| (q.to_string(), len))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Up to `max` messages from the head of `queue`, oldest first. Reading does not remove them.
    pub fn read(&self, queue: &str, max: usize) -> Result<Vec<Queued>, StoreError> {
        self.read_cf(&cf::inbox(queue), max)
    }

    /// Up to `max` messages from the head of `queue`'s outbox, oldest first.
    pub fn outbox_read(&self, queue: &str, max: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let name = cf::outbox(queue);
        self.read_cf(&name, max)?
            .into_iter()
            .map(|q| match keys::decode_outbox(&q.data) {
                Some((incarnation, data)) => Ok(OutboxEntry { seq: q.seq, incarnation, data: data.to_vec() }),
                None => Err(StoreError::Corrupt { cf: name.clone(), reason: format!("entry {} too short", q.seq) }),
            })
            .collect()
    }

    /// The broker confirmed these messages of `queue`'s outbox: delete them. `seqs` are the
    /// oldest messages of the outbox, in order (the head moves past them).
    pub fn outbox_confirmed(&self, queue: &str, seqs: &[u64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let name = cf::outbox(queue);
        let handle = self.cf(&name)?;
        let mut batch = WriteBatch::default();
        for seq in seqs {
            batch.delete_cf(&handle, keys::seq_key(*seq));
        }
        self.db.write(batch)?;
        let next_head = seqs.iter().max().map_or(0, |s| s + 1);
        self.note_acked(&name, next_head, seqs.len() as u64)?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// After acknowledgements of `n` messages of inbox or outbox `name` up to `next_head`: moves
    /// the head, counts, and asks for a compaction when one is due.
    fn note_acked(&self, name: &str, next_head: u64, n: u64) -> Result<(), StoreError> {
        let meta = self.meta(name)?;
        let head = meta.head.fetch_max(next_head, Ordering::AcqRel).max(next_head);
        let before =
            meta.len.fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| Some(l.saturating_sub(n))).unwrap_or(0);
        let since = meta.acked_since_compaction.fetch_add(n, Ordering::AcqRel) + n;
        let drained = before <= n && meta.peak_len.load(Ordering::Acquire) >= BACKLOG;
        if drained {
            meta.peak_len.store(0, Ordering::Release);
        }
        if since >= COMPACT_EVERY || drained {
            meta.acked_since_compaction.store(0, Ordering::Release);
            self.compact_consumed(name, head, drained);
        }
        Ok(())
    }

    /// Up to `max` entries of inbox or outbox `name` from its head.
    fn read_cf(&self, name: &str, max: usize) -> Result<Vec<Queued>, StoreError> {
        let meta = self.meta(name)?;
        let head = meta.head.load(Ordering::Acquire);
        let tail = meta.tail.load(Ordering::Acquire);
        if head >= tail || max == 0 {
            return Ok(Vec::new());
        }
        let handle = self.cf(name)?;
        let mut ro = ReadOptions::default();
        ro.set_iterate_lower_bound(keys::seq_key(head).to_vec());
        ro.set_iterate_upper_bound(keys::seq_key(tail).to_vec());
        let mut out = Vec::with_capacity(max.min(1024));
        for item in self.db.iterator_cf_opt(&handle, ro, IteratorMode::Start) {
            let (k, v) = item?;
            let seq = keys::decode_seq(&k).ok_or_else(|| StoreError::Corrupt {
                cf: name.to_string(),
                reason: format!("key of {} bytes", k.len()),
            })?;
            out.push(Queued { seq, data: v.into_vec() });
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Commits a step atomically. Returns once the write is in the WAL (and fsynced with
    /// [`Durability::Always`]). Acknowledgements move the inbox's persisted head; the entries
    /// below it are range-deleted now and then (see the module notes).
    pub fn commit(&self, step: Step) -> Result<(), StoreError> {
        if step.is_empty() {
            return Ok(());
        }
        // Sized up front: a parser's chunk of events is a megabyte or two, and growing the batch
        // by doubling would map fresh pages several times over.
        let size: usize = step.puts.iter().map(|(_, d)| d.len() + 24).sum::<usize>()
            + step.acks.len() * 16
            + step
                .state
                .iter()
                .map(|(_, k, v)| k.len() + v.as_ref().map_or(0, |(v, _)| v.len() + 8) + 16)
                .sum::<usize>()
            + step.counters.len() * 128
            + step.dumps.iter().map(|d| d.message.len() + 256).sum::<usize>()
            + 64;
        let mut batch = WriteBatch::with_capacity_bytes(size);
        // Per queue of the step: the next head after its acks and how many there are.
        let mut acked: Vec<Option<(u64, u64)>> = vec![None; step.queues.len()];
        for (q, seq) in &step.acks {
            let e = acked[*q].get_or_insert((0, 0));
            e.0 = e.0.max(*seq + 1);
            e.1 += 1;
        }
        for (i, q) in step.queues.iter().enumerate() {
            if let Some((next_head, n)) = &mut acked[i] {
                let seqs = step.acks.iter().filter(|(a, _)| *a == i).map(|(_, s)| *s);
                *next_head = self.ack_into(&mut batch, &cf::inbox(q), seqs, *next_head, *n)?;
            }
        }
        let mut state_handles = Vec::with_capacity(step.bots.len());
        for bot in &step.bots {
            state_handles.push(self.cf_or_create(&cf::state(bot))?);
        }
        for (bot, key, value) in &step.state {
            let handle = &state_handles[*bot];
            match value {
                Some((v, expires_at)) => batch.put_cf(handle, key, keys::encode_state(*expires_at, v)),
                None => batch.delete_cf(handle, key),
            }
        }
        if !step.counters.is_empty() {
            let handle = self.cf(cf::STATS)?;
            for (bot, c) in &step.counters {
                let v = serde_json::to_vec(c)
                    .map_err(|e| StoreError::Corrupt { cf: cf::STATS.into(), reason: e.to_string() })?;
                batch.put_cf(&handle, bot.as_bytes(), v);
            }
        }
        // Resolve queue metadata and handles before taking the commit lock. A queue another node
        // owns is written to its outbox, each message tagged with this incarnation.
        let mut targets: Vec<Option<Target<'_>>> = Vec::with_capacity(step.queues.len());
        {
            let remote = self.remote.read().map_err(|_| poisoned())?;
            for (i, q) in step.queues.iter().enumerate() {
                if !step.puts.iter().any(|(p, _)| *p == i) {
                    targets.push(None);
                    continue;
                }
                let outbox = remote.contains_key(q.as_str());
                let name = if outbox { cf::outbox(q) } else { cf::inbox(q) };
                targets.push(Some(Target { meta: self.meta(&name)?, handle: self.cf(&name)?, outbox }));
            }
        }
        let dump_handle =
            if step.dumps.is_empty() && step.dump_deletes.is_empty() { None } else { Some(self.cf(cf::DUMP)?) };
        if let Some(handle) = &dump_handle {
            for id in &step.dump_deletes {
                batch.delete_cf(handle, keys::seq_key(*id));
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.durability == Durability::Always);

        let mut dump_seq = self.commit_lock.lock().map_err(|_| poisoned())?;
        // Per queue of the step: the first sequence number of its puts and how many there are.
        let mut added: Vec<(u64, u64)> =
            targets.iter().map(|t| (t.as_ref().map_or(0, |t| t.meta.tail.load(Ordering::Acquire)), 0)).collect();
        for (q, data) in &step.puts {
            let Some(t) = &targets[*q] else { continue };
            let a = &mut added[*q];
            if t.outbox {
                batch.put_cf(&t.handle, keys::seq_key(a.0 + a.1), keys::encode_outbox(self.incarnation, data));
            } else {
                batch.put_cf(&t.handle, keys::seq_key(a.0 + a.1), data);
            }
            a.1 += 1;
        }
        if let Some(handle) = &dump_handle {
            for d in &step.dumps {
                let v = serde_json::to_vec(d)
                    .map_err(|e| StoreError::Corrupt { cf: cf::DUMP.into(), reason: e.to_string() })?;
                batch.put_cf(handle, keys::seq_key(*dump_seq), v);
                *dump_seq += 1;
            }
        }
        self.db.write_opt(batch, &wo)?;
        for (t, (start, n)) in targets.iter().zip(&added) {
            let Some(t) = t else { continue };
            t.meta.tail.store(start + n, Ordering::Release);
            let len = t.meta.len.fetch_add(*n, Ordering::AcqRel) + n;
            t.meta.peak_len.fetch_max(len, Ordering::AcqRel);
        }
        drop(dump_seq);
        for (q, acked) in step.queues.iter().zip(acked) {
            if let Some((next_head, n)) = acked {
                self.note_acked(&cf::inbox(q), next_head, n)?;
            }
        }
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Writes the acknowledgement of `n` entries `seqs` of inbox `name` (the highest + 1:
    /// `next_head`) into `batch`, and returns the head after it. The usual case, entries from the
    /// head on without a gap, moves the persisted head (and now and then range-deletes what lies
    /// below it); anything else deletes each entry and leaves the head.
    fn ack_into(
        &self,
        batch: &mut WriteBatch,
        name: &str,
        seqs: impl Iterator<Item = u64> + Clone,
        next_head: u64,
        n: u64,
    ) -> Result<u64, StoreError> {
        let handle = self.cf(name)?;
        let queue = self.meta(name)?;
        let head = queue.head.load(Ordering::Acquire);
        let from_head = seqs.clone().min() == Some(head) && next_head - head == n;
        if !from_head {
            for seq in seqs {
                batch.delete_cf(&handle, keys::seq_key(seq));
            }
            return Ok(head);
        }
        batch.put_cf(&self.cf(cf::META)?, keys::head_key(name), keys::seq_key(next_head));
        let deleted_below = queue.deleted_below.load(Ordering::Acquire);
        // A drained backlog goes at once, so that its compaction leaves nothing behind.
        let drains_backlog =
            next_head >= queue.tail.load(Ordering::Acquire) && queue.peak_len.load(Ordering::Acquire) >= BACKLOG;
        let now = now_millis();
        let due = now.saturating_sub(queue.range_deleted_at.load(Ordering::Acquire)) >= self.range_delete_after_ms;
        if next_head - deleted_below >= RANGE_DELETE_EVERY || ((due || drains_backlog) && next_head > deleted_below) {
            batch.delete_range_cf(&handle, keys::seq_key(deleted_below), keys::seq_key(next_head));
            queue.deleted_below.store(next_head, Ordering::Release);
            queue.range_deleted_at.store(now, Ordering::Release);
        }
        Ok(next_head)
    }

    /// Deletes every message of `queue`; returns how many there were.
    pub fn clear_queue(&self, queue: &str) -> Result<u64, StoreError> {
        let name = cf::inbox(queue);
        let meta = self
            .queues
            .read()
            .map_err(|_| poisoned())?
            .get(&name)
            .cloned()
            .ok_or_else(|| StoreError::UnknownQueue(queue.to_string()))?;
        let _guard = self.commit_lock.lock().map_err(|_| poisoned())?;
        let handle = self.cf(&name)?;
        let tail = meta.tail.load(Ordering::Acquire);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(&handle, keys::seq_key(0), keys::seq_key(tail));
        batch.put_cf(&self.cf(cf::META)?, keys::head_key(&name), keys::seq_key(tail));
        self.db.write(batch)?;
        meta.head.store(tail, Ordering::Release);
        meta.deleted_below.store(tail, Ordering::Release);
        meta.acked_since_compaction.store(0, Ordering::Release);
        meta.peak_len.store(0, Ordering::Release);
        self.compact_consumed(&name, tail, true);
        Ok(meta.len.swap(0, Ordering::AcqRel))
    }

    /// A state value of `bot_id`, if set and not expired.
    pub fn state_get(&self, bot_id: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(handle) = self.db.cf_handle(&cf::state(bot_id)) else {
            return Ok(None);
        };
        let now = now_secs();
        Ok(self.db.get_pinned_cf(&handle, key)?.and_then(|v| keys::decode_state(&v, now).map(<[u8]>::to_vec)))
    }

    /// Removes the expired state entries of `bot_id`; returns how many.
    pub fn purge_expired(&self, bot_id: &str) -> Result<u64, StoreError> {
        let Some(handle) = self.db.cf_handle(&cf::state(bot_id)) else {
            return Ok(0);
        };
        let now = now_secs();
        let mut batch = WriteBatch::default();
        let mut n = 0;
        for item in self.db.iterator_cf(&handle, IteratorMode::Start) {
            let (k, v) = item?;
            if keys::decode_state(&v, now).is_none() {
                batch.delete_cf(&handle, k);
                n += 1;
            }
        }
        if n > 0 {
            self.db.write(batch)?;
        }
        Ok(n)
    }

    /// The persisted counters of `bot_id`.
    pub fn counters(&self, bot_id: &str) -> Result<Counters, StoreError> {
        let handle = self.cf(cf::STATS)?;
        match self.db.get_cf(&handle, bot_id.as_bytes())? {
            Some(v) => serde_json::from_slice(&v)
                .map_err(|e| StoreError::Corrupt { cf: cf::STATS.into(), reason: e.to_string() }),
            None => Ok(Counters::default()),
        }
    }

    /// Every dump entry with its id, oldest first; only those of `bot_id` when given.
    pub fn dumps(&self, bot_id: Option<&str>) -> Result<Vec<(u64, DumpEntry)>, StoreError> {
        let handle = self.cf(cf::DUMP)?;
        let mut out = Vec::new();
        for item in self.db.iterator_cf(&handle, IteratorMode::Start) {
            let (k, v) = item?;
            let id = keys::decode_seq(&k).unwrap_or(0);
            let entry: DumpEntry = serde_json::from_slice(&v)
                .map_err(|e| StoreError::Corrupt { cf: cf::DUMP.into(), reason: format!("entry {id}: {e}") })?;
            if bot_id.is_none_or(|b| b == entry.bot_id) {
                out.push((id, entry));
            }
        }
        Ok(out)
    }

    /// One dump entry by id.
    pub fn dump_entry(&self, id: u64) -> Result<Option<DumpEntry>, StoreError> {
        let handle = self.cf(cf::DUMP)?;
        match self.db.get_cf(&handle, keys::seq_key(id))? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt { cf: cf::DUMP.into(), reason: format!("entry {id}: {e}") }),
            None => Ok(None),
        }
    }

    /// Replaces dump entry `id`.
    pub fn put_dump(&self, id: u64, entry: &DumpEntry) -> Result<(), StoreError> {
        let handle = self.cf(cf::DUMP)?;
        let v = serde_json::to_vec(entry)
            .map_err(|e| StoreError::Corrupt { cf: cf::DUMP.into(), reason: e.to_string() })?;
        self.db.put_cf(&handle, keys::seq_key(id), v)?;
        Ok(())
    }

    /// Deletes dump entries by id.
    pub fn delete_dumps(&self, ids: &[u64]) -> Result<(), StoreError> {
        let handle = self.cf(cf::DUMP)?;
        let mut batch = WriteBatch::default();
        for id in ids {
            batch.delete_cf(&handle, keys::seq_key(*id));
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// Forces the WAL to disk (used at shutdown).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.db.flush_wal(true)?;
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Ok(mut h) = self.syncer.lock() {
            if let Some(h) = h.take() {
                let _ = h.join();
            }
        }
        // Closing the channel ends the compaction thread after the compaction it is running.
        if let Ok(mut tx) = self.compact_tx.lock() {
            tx.take();
        }
        if let Ok(mut h) = self.compactor.lock() {
            if let Some(h) = h.take() {
                let _ = h.join();
            }
        }
        let _ = self.db.flush_wal(true);
    }
}

/// Where a commit writes the messages of one queue.
struct Target<'a> {
    meta: Arc<QueueMeta>,
    handle: Arc<rocksdb::BoundColumnFamily<'a>>,
    /// The queue is owned by another node: its outbox, values tagged with the incarnation.
    outbox: bool,
}

fn poisoned() -> StoreError {
    StoreError::Corrupt { cf: "-".into(), reason: "a store lock was poisoned by a panic".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path, queues: &[&str]) -> Store {
        let qs: Vec<String> = queues.iter().map(|s| s.to_string()).collect();
        Store::open(dir, Durability::Interval(Duration::from_millis(5)), &qs).expect("open")
    }

    fn bodies(v: &[Queued]) -> Vec<String> {
        v.iter().map(|q| String::from_utf8_lossy(&q.data).into_owned()).collect()
    }

    #[test]
    fn queue_is_fifo_and_ack_removes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path(), &["a"]);
        let mut step = Step::new();
        for i in 0..5 {
            step.put("a", format!("m{i}").into_bytes());
        }
        s.commit(step).expect("commit");
        assert_eq!(s.queue_len("a"), 5);
        let got = s.read("a", 3).expect("read");
        assert_eq!(bodies(&got), ["m0", "m1", "m2"]);
        let mut step = Step::new();
        for q in &got {
            step.ack("a", q.seq);
        }
        s.commit(step).expect("ack");
        assert_eq!(s.queue_len("a"), 2);
        assert_eq!(bodies(&s.read("a", 10).expect("read")), ["m3", "m4"]);
    }

    /// Entries stored in `queue`'s inbox, consumed or not.
    fn stored_entries(s: &Store, queue: &str) -> u64 {
        let handle = s.cf(&cf::inbox(queue)).expect("inbox");
        s.db.iterator_cf(&handle, IteratorMode::Start).map(|item| item.expect("entry")).count() as u64
    }

    /// Reads and acknowledges `n` messages of `queue`, `per_step` at a time.
    fn consume(s: &Store, queue: &str, n: usize, per_step: usize) {
        let mut left = n;
        while left > 0 {
            let got = s.read(queue, per_step.min(left)).expect("read");
            assert!(!got.is_empty(), "{left} messages short");
            let mut step = Step::new();
            for q in &got {
                step.ack(queue, q.seq);
            }
            s.commit(step).expect("ack");
            left -= got.len();
        }
    }

    #[test]
    fn acknowledged_entries_go_in_ranges_and_stay_consumed_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let total = 2 * RANGE_DELETE_EVERY + 10;
        {
            let mut s = open(dir.path(), &["q"]);
            // By count only here.
            s.range_delete_after_ms = u64::MAX;
            let mut step = Step::new();
            for i in 0..total {
                step.put("q", i.to_string().into_bytes());
            }
            s.commit(step).expect("commit");
            consume(&s, "q", RANGE_DELETE_EVERY as usize + 76, 100);
            assert_eq!(s.queue_len("q"), total - RANGE_DELETE_EVERY - 76);
            // The step that crossed RANGE_DELETE_EVERY removed everything below its head.
            assert_eq!(stored_entries(&s, "q"), total - RANGE_DELETE_EVERY - 76);
            consume(&s, "q", 50, 25);
            // Acknowledged since: consumed, still stored.
            assert_eq!(s.queue_len("q"), total - RANGE_DELETE_EVERY - 126);
            assert_eq!(stored_entries(&s, "q"), total - RANGE_DELETE_EVERY - 76);
        }
        let s = open(dir.path(), &[]);
        let next = RANGE_DELETE_EVERY + 126;
        assert_eq!(s.queue_len("q"), total - next);
        assert_eq!(stored_entries(&s, "q"), total - next, "the consumed rest goes at the restart");
        let got = s.read("q", 1).expect("read");
        assert_eq!((got[0].seq, bodies(&got)), (next, vec![next.to_string()]));
    }

    #[test]
    fn acknowledged_entries_go_after_a_while_however_few() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = open(dir.path(), &["reports"]);
        s.range_delete_after_ms = 0;
        let mut step = Step::new();
        for _ in 0..3 {
            step.put("reports", vec![b'r'; 100_000]);
        }
        s.commit(step).expect("commit");
        consume(&s, "reports", 1, 1);
        assert_eq!(stored_entries(&s, "reports"), 2, "the one report acknowledged is gone");
        consume(&s, "reports", 2, 1);
        assert_eq!(stored_entries(&s, "reports"), 0);
    }

    #[test]
    fn acknowledgements_out_of_order_delete_each_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path(), &["q"]);
        let mut step = Step::new();
        for b in ["a", "b", "c"] {
            step.put("q", b.as_bytes().to_vec());
        }
        s.commit(step).expect("commit");
        let got = s.read("q", 3).expect("read");
        let mut step = Step::new();
        step.ack("q", got[1].seq);
        s.commit(step).expect("ack");
        assert_eq!(stored_entries(&s, "q"), 2, "b is deleted, not passed by the head");
        assert_eq!(bodies(&s.read("q", 3).expect("read")), ["a", "c"]);
    }

    #[test]
    fn reopen_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let s = open(dir.path(), &["a", "b"]);
            let mut step = Step::new();
            step.put("a", b"x".to_vec());
            step.put("a", b"y".to_vec());
            step.put("b", b"z".to_vec());
            s.commit(step).expect("commit");
            let first = s.read("a", 1).expect("read");
            let mut step = Step::new();
            step.ack("a", first[0].seq);
            step.put("b", b"x-processed".to_vec());
            step.state_put("bot", b"k", b"v", 0);
            step.counters("bot", Counters { received: 1, sent: 1, ..Counters::default() });
            s.commit(step).expect("commit");
        }
        let s = open(dir.path(), &[]);
        assert_eq!(bodies(&s.read("a", 10).expect("read")), ["y"]);
        assert_eq!(bodies(&s.read("b", 10).expect("read")), ["z", "x-processed"]);
        assert_eq!(s.queue_len("b"), 2);
        assert_eq!(s.state_get("bot", b"k").expect("state"), Some(b"v".to_vec()));
        assert_eq!(s.counters("bot").expect("counters").sent, 1);
        // New messages continue after the old tail.
        let mut step = Step::new();
        step.put("a", b"w".to_vec());
        s.commit(step).expect("commit");
        assert_eq!(bodies(&s.read("a", 10).expect("read")), ["y", "w"]);
    }

    #[test]
    fn expired_state_is_invisible_and_purged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path(), &[]);
        let mut step = Step::new();
        step.state_put("dedup", b"old", b"1", 1);
        step.state_put("dedup", b"new", b"1", now_secs() + 3600);
        s.commit(step).expect("commit");
        assert_eq!(s.state_get("dedup", b"old").expect("get"), None);
        assert!(s.state_get("dedup", b"new").expect("get").is_some());
        assert_eq!(s.purge_expired("dedup").expect("purge"), 1);
    }

    #[test]
    fn dumps_are_listed_per_bot_and_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path(), &[]);
        let entry = |bot: &str| DumpEntry {
            bot_id: bot.into(),
            source_queue: Some(format!("{bot}-queue")),
            time: "2024-01-01T00:00:00.000000".into(),
            traceback: vec!["invalid value".into()],
            message: "{}".into(),
            message_type: None,
        };
        let mut step = Step::new();
        step.dump(entry("p1"));
        step.dump(entry("p2"));
        step.dump(entry("p1"));
        s.commit(step).expect("commit");
        let p1 = s.dumps(Some("p1")).expect("dumps");
        assert_eq!(p1.len(), 2);
        s.delete_dumps(&[p1[0].0]).expect("delete");
        assert_eq!(s.dumps(None).expect("dumps").len(), 2);
        drop(s);
        let s = open(dir.path(), &[]);
        let mut step = Step::new();
        step.dump(entry("p3"));
        s.commit(step).expect("commit");
        let ids: Vec<u64> = s.dumps(None).expect("dumps").iter().map(|d| d.0).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "dump ids stay unique after reopen: {ids:?}");
    }

    #[test]
    fn clear_queue_empties_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path(), &["q"]);
        let mut step = Step::new();
        step.put("q", b"1".to_vec());
        step.put("q", b"2".to_vec());
        s.commit(step).expect("commit");
        assert_eq!(s.clear_queue("q").expect("clear"), 2);
        assert!(s.read("q", 10).expect("read").is_empty());
        assert!(matches!(s.clear_queue("nope"), Err(StoreError::UnknownQueue(_))));
    }

    fn remote(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(q, n)| (q.to_string(), n.to_string())).collect()
    }

    #[test]
    fn a_put_to_a_remote_queue_lands_in_its_outbox_in_the_same_write_as_the_ack() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let s = open(dir.path(), &["in", "far"]);
            s.set_remote_queues(remote(&[("far", "node-b")])).expect("remote");
            let mut step = Step::new();
            step.put("in", b"report".to_vec());
            s.commit(step).expect("commit");
            let got = s.read("in", 1).expect("read");
            let mut step = Step::new();
            step.ack("in", got[0].seq);
            step.put("far", b"event-1".to_vec());
            step.put("far", b"event-2".to_vec());
            s.commit(step).expect("commit");
            assert_eq!(s.queue_len("in"), 0);
            assert_eq!(s.queue_len("far"), 0, "nothing goes to the local inbox of a remote queue");
            assert_eq!(s.outbox_len("far"), 2);
            assert_eq!(s.waiting("far"), 2);
            assert_eq!(s.outboxes(), vec![("far".to_string(), 2)]);
            assert_eq!(s.remote_owner("far").as_deref(), Some("node-b"));
            // A step that cannot be written leaves neither its ack nor its outbox entry behind.
            let mut step = Step::new();
            step.ack("no-such-queue", 0);
            step.put("far", b"never".to_vec());
            assert!(s.commit(step).is_err());
            assert_eq!(s.outbox_len("far"), 2);
        }
        let s = open(dir.path(), &[]);
        let entries = s.outbox_read("far", 10).expect("outbox");
        let bodies: Vec<&[u8]> = entries.iter().map(|e| e.data.as_slice()).collect();
        assert_eq!(bodies, [&b"event-1"[..], &b"event-2"[..]]);
        assert!(s.read("in", 10).expect("read").is_empty(), "the ack survived with the outbox entries");
    }

    #[test]
    fn outbox_entries_leave_only_when_confirmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path(), &["far"]);
        s.set_remote_queues(remote(&[("far", "node-b")])).expect("remote");
        let mut step = Step::new();
        for i in 0..3 {
            step.put("far", format!("m{i}").into_bytes());
        }
        s.commit(step).expect("commit");
        let entries = s.outbox_read("far", 10).expect("outbox");
        // Reading sends nothing away: read again, the same entries.
        assert_eq!(s.outbox_read("far", 10).expect("outbox"), entries);
        s.outbox_confirmed("far", &[entries[0].seq]).expect("confirm");
        let left = s.outbox_read("far", 10).expect("outbox");
        assert_eq!(left.len(), 2);
        assert_eq!(left[0].data, b"m1");
        assert_eq!(s.outbox_len("far"), 2);
        s.outbox_confirmed("far", &[left[0].seq, left[1].seq]).expect("confirm");
        assert_eq!(s.outbox_len("far"), 0);
        assert!(s.outboxes().is_empty());
    }

    #[test]
    fn outbox_entries_keep_the_incarnation_that_wrote_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = {
            let s = open(dir.path(), &["far"]);
            s.set_remote_queues(remote(&[("far", "node-b")])).expect("remote");
            let mut step = Step::new();
            step.put("far", b"old".to_vec());
            s.commit(step).expect("commit");
            s.incarnation()
        };
        let s = open(dir.path(), &[]);
        assert!(s.incarnation() > first);
        s.set_remote_queues(remote(&[("far", "node-b")])).expect("remote");
        let old = s.outbox_read("far", 10).expect("outbox");
        s.outbox_confirmed("far", &[old[0].seq]).expect("confirm");
        let mut step = Step::new();
        step.put("far", b"new".to_vec());
        s.commit(step).expect("commit");
        let new = s.outbox_read("far", 10).expect("outbox");
        assert_eq!(old[0].incarnation, first);
        assert_eq!(new[0].incarnation, s.incarnation());
        // (incarnation, seq) tells the two apart even when the sequence starts again.
        assert_ne!((old[0].incarnation, old[0].seq), (new[0].incarnation, new[0].seq));
    }

    /// Bytes of `queue`'s inbox in table files.
    fn inbox_file_bytes(s: &Store, queue: &str) -> u64 {
        let handle = s.cf(&cf::inbox(queue)).expect("inbox");
        s.db.property_int_value_cf(&handle, "rocksdb.total-sst-files-size").expect("property").unwrap_or(0)
    }

    #[test]
    fn a_drained_backlog_is_compacted_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(dir.path(), &["q"]);
        let total = BACKLOG + 1000;
        for _ in 0..total / 1000 {
            let mut step = Step::new();
            for _ in 0..1000 {
                step.put("q", vec![b'x'; 100]);
            }
            s.commit(step).expect("commit");
        }
        s.db.flush_cf(&s.cf(&cf::inbox("q")).expect("inbox")).expect("flush");
        assert!(inbox_file_bytes(&s, "q") > total * 100 / 2, "the backlog is in table files");
        loop {
            let got = s.read("q", 1000).expect("read");
            if got.is_empty() {
                break;
            }
            let mut step = Step::new();
            for q in &got {
                step.ack("q", q.seq);
            }
            s.commit(step).expect("ack");
        }
        let start = std::time::Instant::now();
        while inbox_file_bytes(&s, "q") > 0 {
            assert!(start.elapsed() < Duration::from_secs(30), "{} bytes left after 30 s", inbox_file_bytes(&s, "q"));
            std::thread::sleep(Duration::from_millis(20));
        }
        // The queue goes on where it stopped.
        let mut step = Step::new();
        step.put("q", b"after".to_vec());
        s.commit(step).expect("commit");
        let got = s.read("q", 10).expect("read");
        assert_eq!(bodies(&got), ["after"]);
        assert_eq!(got[0].seq, total);
    }

    #[test]
    fn concurrent_producers_never_lose_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Arc::new(open(dir.path(), &["q"]));
        let producers: Vec<_> = (0..4)
            .map(|p| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..250 {
                        let mut step = Step::new();
                        step.put("q", format!("{p}-{i}").into_bytes());
                        s.commit(step).expect("commit");
                    }
                })
            })
            .collect();
        let mut seen = 0;
        let mut done = false;
        while !done {
            done = producers.iter().all(|h| h.is_finished());
            let got = s.read("q", 64).expect("read");
            let mut step = Step::new();
            for q in &got {
                step.ack("q", q.seq);
            }
            seen += got.len();
            s.commit(step).expect("ack");
        }
        for h in producers {
            h.join().expect("join");
        }
        seen += s.read("q", 10_000).expect("read").len();
        assert_eq!(seen, 1000);
    }
}

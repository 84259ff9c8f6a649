import type { SettingKind } from '@koan/core';
import type { JsonEncoding } from './line-format.js';
import type { EntitySchema } from './schema.js';
import type { DataRecord, KeyValue } from './types.js';

/**
 * What an adapter can do. The core branches on these flags, never on a provider's name.
 */
export interface AdapterCapabilities {
  /** Writes inside `transaction()` are atomic: all or nothing. */
  readonly transactions: boolean;
  /** `readSnapshot()` gives a point-in-time view across every entity of the source. */
  readonly snapshotReads: boolean;
  /** `importBatch(..., { mode: 'upsert' })` is one native statement, not read-then-write. */
  readonly nativeUpsert: boolean;
  /** `importBatch(..., { bulk: true })` has a faster path (COPY, LOAD DATA, prepared bulk insert). */
  readonly bulkLoad: boolean;
  /** `exportEntity()` streams in key order (keyset paging). */
  readonly orderedStreaming: boolean;
  /** Entities can be partitioned into named sets. */
  readonly sets: boolean;
  /** `introspect()` lists tables/collections no code declares. */
  readonly introspection: boolean;
  /** Records can carry a time to live, preserved by backup and restore. */
  readonly ttl: boolean;
  /**
   * `number` fields keep `NaN`, `Infinity`, `-Infinity` and `-0` exactly. Absent means false: such values may be
   * rejected or changed by the store (e.g. MySQL DOUBLE has no NaN), so backups of them are not portable there.
   */
  readonly nonFiniteNumbers?: boolean;
  /**
   * Writes `dynamic` fields (SQLite literals of values of any type, see `FieldSpec.dynamic`) as the values they
   * spell. Absent means false: a restore of such a field into this store is refused, naming it.
   */
  readonly dynamicValues?: boolean;
}

export interface ExportOptions {
  /** Records per yielded batch. Default 1000. */
  readonly batchSize?: number;
  /**
   * Bytes per yielded batch, as archive-encoded lines (see `recordBytes`): a batch is closed once its records reach
   * this size, so it holds at most one record past it, and stores that page read about this much per page.
   * `exportJsonLines` chunks hold less than this before their last line. Default `DEFAULT_BATCH_BYTES` (1 MiB).
   */
  readonly batchBytes?: number;
  readonly signal?: AbortSignal;
  /**
   * Give json fields as a `JsonText` holding the store's exact text (numbers of any precision, key order, duplicate
   * keys), instead of JavaScript values. Backups ask for it; stores that keep JSON as JavaScript values ignore it.
   */
  readonly exactJson?: boolean;
}

/** `upsert` replaces records with the same key; `insert` fails on an existing key. */
export type ImportMode = 'upsert' | 'insert';

export interface ImportOptions {
  readonly mode: ImportMode;
  /** Use the bulk-load fast path where the adapter has one. */
  readonly bulk?: boolean;
  readonly signal?: AbortSignal;
  /**
   * How the lines given to `importJsonLines`/`importJsonLineStream` spell json fields: `text` (archive line format 2,
   * the default) or `nested` (format 1 archives). See `JsonEncoding`.
   */
  readonly json?: JsonEncoding;
}

export interface ImportResult {
  readonly inserted: number;
  /** Existing records replaced (upsert). Adapters that cannot tell report them as inserted and say so in docs. */
  readonly updated: number;
  /** Records not written because they had already expired (a TTL in the past; stores with `ttl` only). */
  readonly expired?: number;
}

/** The schema of an entity as the store itself reports it. */
export interface StoreDescription {
  readonly provider: string;
  /** Physical table/collection/key-prefix name. */
  readonly location: string;
  readonly exists: boolean;
  readonly columns: readonly { readonly name: string; readonly storeType: string; readonly nullable: boolean }[];
  readonly primaryKey: readonly string[];
  readonly foreignKeys?: readonly {
    readonly columns: readonly string[];
    readonly references: string;
    readonly referencedColumns: readonly string[];
    readonly name?: string;
  }[];
  /** Anything else worth keeping: vector dimension and metric, TTL scheme, collation, engine... */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** A table introspection could not turn into an entity, and why: a backup fails naming it unless it is excluded. */
export interface SkippedTable {
  /** The table (`namespace.table` outside the source's default namespace). */
  readonly table: string;
  readonly reason: string;
}

/** An object of the store that holds no data of its own (a view, a partition backed up through its parent...). */
export interface NotDataObject {
  /** Its name (`namespace.name` outside the source's default namespace). */
  readonly name: string;
  /** `view`, `materialized view`, `foreign table`, `partition`... */
  readonly kind: string;
  /** Why it is not backed up as data, or where its rows are. */
  readonly note: string;
}

/** What introspection found: entities for the tables it can back up, and every other table or view, named. */
export interface IntrospectionResult {
  readonly entities: EntitySchema[];
  /** Tables holding data that could not be introspected. Never silent: backups fail naming them unless excluded. */
  readonly skipped: SkippedTable[];
  /** Views and other objects that are not data: listed so that nothing is absent without a word. */
  readonly notData: NotDataObject[];
}

/**
 * One object of a source's native structure (its DDL) as captured by a backup, so a restore into the same kind of
 * store recreates tables exactly: native column types, defaults, identity/serial/AUTO_INCREMENT, generated columns,
 * checks, keys, indexes, foreign keys, enums and domains.
 */
export interface StructureObject {
  /** `schema`, `type`, `domain`, `sequence`, `table`, `index`, `constraint`, `foreign-key`, `view`, `comment`... */
  readonly kind: string;
  /** Its name, qualified where the store has namespaces (for messages and matching). */
  readonly name: string;
  /**
   * The table it belongs to, as `namespace.table` (or `table` in the source's default namespace); absent for objects
   * tables share (schemas, types, domains, standalone sequences).
   */
  readonly table?: string;
  /** `pre-data`: created before rows are written (types, tables); `post-data`: after (indexes, foreign keys...). */
  readonly phase: 'pre-data' | 'post-data';
  /** The statements that create it, in order, in the store's own dialect. */
  readonly sql: readonly string[];
  /** Tables it needs besides its own (`namespace.table`): a foreign key's parent, a view's tables. */
  readonly requires?: readonly string[];
}

/** The native structure of the tables a backup holds, captured from the store (see {@link StructureFacet}). */
export interface NativeStructure {
  /** The provider that captured it; only a store of the same provider replays it. */
  readonly provider: string;
  /** The server's version, for messages (e.g. `PostgreSQL 15.19`, `10.11.19-MariaDB`). */
  readonly serverVersion?: string;
  /** In creation order. */
  readonly objects: readonly StructureObject[];
  /** What the source has that is not recreated (functions, triggers, policies, grants...): named, never silent. */
  readonly notCaptured: readonly { readonly kind: string; readonly name: string; readonly reason: string }[];
}

/** A target table of a restore that replays a {@link NativeStructure}: the archived entity set. */
export interface StructureTarget {
  readonly entity: EntitySchema;
  readonly set: string;
}

/**
 * Optional facet of SQL adapters: the store's own DDL, captured by backups and replayed by restores into the same kind
 * of store, so a copy is identical in structure (same column types, sequences advanced, indexes and foreign keys).
 */
export interface StructureFacet {
  /** The structure of the tables of `targets` (and what they depend on), as the store describes them now. */
  capture(targets: readonly StructureTarget[]): Promise<NativeStructure>;
  /**
   * Before rows are written, inside the restore's transaction `tx` where DDL is transactional (else on its own
   * connection, then undone by {@link StructureFacet.discardCreated} if the restore fails): creates the tables of
   * `targets` that do not exist, exactly as captured, with the schemas, types, domains and sequences they need.
   * Tables that exist are left as they are. Returns the tables created (`namespace.table`).
   */
  createMissing(tx: DataWriter, structure: NativeStructure, targets: readonly StructureTarget[]): Promise<string[]>;
  /**
   * After every row of the transaction is written. With a `structure`: the post-data objects of the tables `created`
   * from it (secondary indexes, unique constraints, foreign keys whose tables exist, comments), and their sequences and
   * AUTO_INCREMENT counters set to the captured values. Always, for every table of `targets` (created or not, whatever
   * the backup's provider): sequences and counters that feed their columns advanced past the restored values, so the
   * application's next insert with a default id does not collide.
   */
  finish(
    tx: DataWriter,
    structure: NativeStructure | undefined,
    targets: readonly StructureTarget[],
    created: readonly string[],
  ): Promise<void>;
  /**
   * Before anything is written: for each of `targets` whose captured structure needs another table (a foreign key's
   * parent), the tables it needs that are neither among `targets` (every table the restore writes in this store) nor
   * in the store. Such a table could not be recreated as captured: the engine refuses it, naming what is missing,
   * rather than create it without its foreign keys.
   */
  unmetRequirements(
    structure: NativeStructure,
    targets: readonly StructureTarget[],
  ): Promise<{ readonly target: StructureTarget; readonly missing: readonly string[] }[]>;
  /** After a failed restore: drops what `createMissing` made where the store could not roll it back (MySQL DDL). */
  discardCreated?(created: readonly string[]): Promise<void>;
}

/** Consistency of a read: `snapshot` is point in time, `fuzzy` may mix moments (e.g. Redis SCAN). */
export type Consistency = 'snapshot' | 'fuzzy';

/** Reads that may run inside a snapshot. */
export interface DataReader {
  /**
   * Streams the records of one entity set in key order, in batches, with keyset paging (never OFFSET). A batch holds at
   * most `batchSize` records and is closed once they reach `batchBytes`; what the adapter holds while reading is
   * bounded by that too (pages sized by the rows read so far), however wide the rows.
   * Stopping early (`break`, `return`, an abort) releases every resource the stream holds.
   */
  exportEntity(entity: EntitySchema, set: string, options?: ExportOptions): AsyncIterable<DataRecord[]>;
  /**
   * Optional fast path: the same records as `exportEntity`, in the same order, already encoded as archive
   * JSON Lines (`encodeRecordLine(entity, record) + '\n'` each) by the store itself. Each chunk holds whole
   * lines (UTF-8, `\n`-terminated; count records by counting `\n`). Lines decode to records equal to
   * `exportEntity`'s; adapters document where bytes may differ while values are equal (e.g. key order
   * inside json fields). `batchSize` is the page size where the store pages, else ignored; `batchBytes` bounds every
   * chunk (less than that before its last line). Stopping early releases every resource, as for `exportEntity`.
   *
   * @example
   * if (reader.exportJsonLines) for await (const chunk of reader.exportJsonLines(User.schema, 'root')) gzip.write(chunk);
   */
  exportJsonLines?(entity: EntitySchema, set: string, options?: ExportOptions): AsyncIterable<Uint8Array>;
  /**
   * Whether the JSON-lines fast paths (`exportJsonLines`, `importJsonLines`) serve this entity exactly.
   * Absent means they serve every entity. Callers use `exportEntity`/`importBatch` when it says false.
   */
  jsonLinesSupported?(entity: EntitySchema): boolean;
  count(entity: EntitySchema, set: string): Promise<number>;
}

/** Writes that may run inside a transaction. */
export interface DataWriter {
  importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult>;
  /** Removes every record of the set; returns how many were removed (where the store can tell, else -1). */
  clear(entity: EntitySchema, set: string): Promise<number>;
  remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number>;
  /**
   * Optional, on the writer of `transaction()` only: postpones the store's foreign-key checks to the end of the
   * transaction, so rows that reference each other (a cycle, a self-reference to a later row) load in any order.
   * Before committing, the adapter checks the foreign keys of every table written (and cleared) in the transaction;
   * a row whose parent is missing fails the commit with `DataError` `FOREIGN_KEY_VIOLATION`, whose message and
   * `details` name the entity, the record key and the constraint. What "postpone" means is per provider (SQLite
   * `defer_foreign_keys`, PostgreSQL `SET CONSTRAINTS ALL DEFERRED` for DEFERRABLE constraints, MySQL checks off
   * then an explicit check); see docs/type-mapping.md.
   *
   * @example
   * await adapter.transaction(async (tx) => { await tx.deferConstraints?.(); await tx.importBatch(...); });
   */
  deferConstraints?(): Promise<void>;
  /**
   * Optional fast path for restores: writes archive-encoded JSON lines (as `encodeRecordLine` makes them,
   * without the newline) and lets the store parse them, with the same semantics and result as
   * `importBatch` of the decoded records. Only for entities where `jsonLinesSupported` is true.
   * A malformed line fails the call; nothing of the batch stays.
   */
  importJsonLines?(
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult>;
  /**
   * Optional, with `importJsonLines`: every batch of one entity in one call, so the store can ingest while the
   * caller reads the next lines (PostgreSQL: one COPY for the whole entity). Same semantics and result as
   * `importJsonLines` of each batch in turn; a failure leaves nothing of the call (run it in a transaction).
   * A failure about one line carries `details.line`, the 0-based line of the stream, when the store can tell.
   */
  importJsonLineStream?(
    entity: EntitySchema,
    set: string,
    batches: AsyncIterable<readonly string[]>,
    options: ImportOptions,
  ): Promise<ImportResult>;
  jsonLinesSupported?(entity: EntitySchema): boolean;
}

/** Options of {@link DataAdapter.transaction}. */
export interface TransactionOptions {
  /** Aborting stops the statement in flight where the store can (see `transaction`); the transaction rolls back. */
  readonly signal?: AbortSignal;
}

/**
 * The data adapter contract. One adapter instance serves one source (a database, a file folder...).
 * Lifecycle: the runtime calls `init()` once before first use and `close()` once at the end.
 *
 * Values cross this boundary in their runtime form (strings for decimals and datetimes, bigint, Uint8Array,
 * Float32Array); adapters convert to and from their store's types without losing precision.
 *
 * @example
 * const adapter = createSqliteAdapter({ path: 'app.db' });
 * await adapter.init();
 * for await (const batch of adapter.exportEntity(User.schema, 'root', { batchSize: 500 })) { ... }
 * await adapter.close();
 */
export interface DataAdapter extends DataReader, DataWriter {
  /** Provider kind: `sqlite`, `postgres`, `mysql`, `redis`, `lancedb`, `json`, `memory`. */
  readonly provider: string;
  readonly capabilities: AdapterCapabilities;
  init(): Promise<void>;
  close(): Promise<void>;
  /** Creates the table/collection for the entity set if it does not exist. Idempotent. */
  ensureEntity(entity: EntitySchema, set: string): Promise<void>;
  /**
   * Optional: removes the table/collection of the entity set (nothing when it does not exist). A restore that created a
   * table and then failed drops it again, so a failed restore leaves no empty table behind.
   */
  dropEntity?(entity: EntitySchema, set: string): Promise<void>;
  get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined>;
  /** Records for the keys that exist, in the order of `keys`. */
  getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]>;
  /** The sets of this entity that exist in the store (always including `root` once created). */
  listSets(entity: EntitySchema): Promise<string[]>;
  describe(entity: EntitySchema, set: string): Promise<StoreDescription>;
  /**
   * Optional: the table or collection the store keeps an entity set in, spelled so that two entity sets the store
   * would keep in the same one get the same text: PostgreSQL `schema.table` (its namespace, else the source's schema;
   * names truncated to 63 bytes as the server does), MySQL/MariaDB the table name (lower-cased where
   * `lower_case_table_names` makes names case-insensitive), SQLite the table name with ASCII letters lower-cased
   * (SQLite compares table names ignoring ASCII case). No round trip (after `init()`). A restore refuses to write two
   * archived entity sets into one location (`TARGET_COLLISION`); without this method it takes
   * `physicalName(entity, set)` (`table#set`, the namespace ignored).
   */
  locationOf?(entity: EntitySchema, set: string): string;
  /**
   * Runs `fn` with a reader that sees one consistent moment of the whole source where
   * `capabilities.snapshotReads` is true; otherwise `fn` gets plain reads and `consistency` is `fuzzy`.
   */
  readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: Consistency }) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in one transaction where `capabilities.transactions` is true: if it throws, nothing it wrote stays.
   * Without transactions `fn` runs directly and earlier writes stay (documented per adapter).
   * With `options.signal`, an abort also stops the statement the server is running for `fn` (one waiting on a lock,
   * say) where the store has statements that can wait (PostgreSQL, MySQL/MariaDB): `fn` then fails and the
   * transaction rolls back. In-process stores finish the call in flight; `fn` checks the signal between calls.
   */
  transaction<T>(fn: (writer: DataWriter) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * The tables of the store as entities, with every table that could not be introspected and every view named
   * (only when `capabilities.introspection`). Discovery registers the entities no code declares.
   */
  introspect?(): Promise<IntrospectionResult>;
  /** Optional: the store's native DDL, for exact same-provider restores (see {@link StructureFacet}). */
  readonly structure?: StructureFacet;
  /**
   * Optional: whether the set holds any record, answered without counting them (an exact `count` is a full scan on
   * some stores, InnoDB among them). A missing table holds none. Callers fall back to `count(...) > 0`.
   */
  hasRecords?(entity: EntitySchema, set: string): Promise<boolean>;
  /**
   * Optional: the store's own estimate of the set's record count, from its statistics (no scan), or `undefined` when
   * it has none yet. Not exact, possibly stale: for progress totals only. A missing table holds none.
   */
  estimateCount?(entity: EntitySchema, set: string): Promise<number | undefined>;
  /**
   * How many of `records` have a key that exists in the set, matched by the whole key (every column of a composite
   * one), the way an upsert of them would match: a restore's dry run counts its updates and clashes with it. Records
   * of one call have distinct keys; a missing table holds none. Required of an adapter that stores composite keys
   * (`getMany` addresses the first key column only); without it the dry run looks single keys up with `getMany`.
   */
  countExisting?(entity: EntitySchema, set: string, records: readonly DataRecord[]): Promise<number>;
}

/** What a provider setting holds, so text from the environment (`Koan__...` variables) is converted to it. */
export type { SettingKind };

/** A provider: how to build an adapter for a source from its settings. */
export interface DataProvider<Settings = Record<string, unknown>> {
  readonly name: string;
  /**
   * The settings the provider reads and what each holds. The runtime matches configured keys to these ignoring case,
   * turns text into numbers and booleans where a setting is one, and refuses a value of the wrong kind naming the
   * setting; settings not listed are passed as they are.
   */
  readonly settings?: Readonly<Record<string, SettingKind>>;
  create(settings: Settings, context: { readonly source: string; readonly cwd: string }): DataAdapter;
}

import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  ConfigError,
  type DataAdapter,
  DataError,
  type DataRecord,
  type EntitySchema,
  type KeyValue,
} from '@koan/data';
import {
  type AdapterCapabilities,
  boundLineChunks,
  byteBatches,
  type Consistency,
  checkBatchBytes,
  cutLineChunk,
  type DataReader,
  type DataWriter,
  decodeArchiveLines,
  describeKey,
  type ExportOptions,
  encodeRecordLine,
  type ImportOptions,
  type ImportResult,
  type IntrospectionResult,
  keyFieldsOf,
  pagedRecords,
  physicalName,
  ROOT_SET,
  recordBytes,
  STREAM_PIECE_BYTES,
  type StoreDescription,
  type StructureFacet,
  setFromPhysicalName,
  throwIfAborted,
} from '@koan/data/adapter-kit';
import Database from 'better-sqlite3';
import { SnapshotWorker } from './snapshot-worker.js';
import { introspectDatabase, KOAN_META_TABLE } from './sqlite-introspector.js';
import { SqliteStructure, type SuspendedTrigger } from './sqlite-structure.js';
import {
  countExistingKeys,
  createTableSql,
  type ForeignKey,
  foreignKeyViolation,
  holdsNothing,
  removeDatabaseFiles,
  rowidAlias,
  tableColumns,
  tableShape,
} from './sqlite-tables.js';
import {
  ABSENT_COLUMN,
  isMisfitError,
  jsonLinesSql,
  lineRows,
  quoteIdent,
  type RowCodec,
  rowCodec,
  type TableShape,
} from './sqlite-types.js';

export const PROVIDER_NAME = 'sqlite';

/**
 * Rows bound per INSERT statement by bulk writes, and the parameters such a statement may take (999 is the lowest
 * `SQLITE_MAX_VARIABLE_NUMBER` any SQLite build has had). One statement per ~100 rows instead of one per row
 * made the insert loop of a 1M-row restore ~15% faster (bench/RESULTS.md).
 */
const ROWS_PER_INSERT = 100;
const PARAMS_PER_INSERT = 999;

export interface SqliteSettings {
  /** Database file, relative to the runtime's cwd; `:memory:` for a private in-memory database. */
  readonly path: string;
  /**
   * Write-ahead logging (with `synchronous=NORMAL`), which lets snapshot reads run beside writes. Unset (the
   * default), a new or empty database file is put in WAL mode and an existing database keeps its journal mode (a
   * backup never changes a file it reads): its snapshot reads then hold a read lock, so writers wait until they end.
   * `true` switches an existing database to WAL as well (a lasting change of the file); `false` never does, and
   * snapshot reads are then plain reads of the main connection (`fuzzy`).
   */
  readonly walMode?: boolean;
  /**
   * How long a statement waits for another connection's lock, in milliseconds.
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
  /**
   * Enforce `FOREIGN KEY` constraints declared in the database (`PRAGMA foreign_keys = ON` on the connection).
   * SQLite's own default is off; tables `ensureEntity` creates declare none.
   * @default true
   */
  readonly foreignKeys?: boolean;
}

/** What one `transaction()` (and its nested savepoints) did: deferred constraint checks, tables written. */
interface TransactionState {
  deferred: boolean;
  readonly written: Map<string, { entity: EntitySchema; set: string }>;
  /** Triggers the structure facet dropped for the restore, created again before it commits. */
  readonly suspended: SuspendedTrigger[];
}

type Db = Database.Database;
type Statement = Database.Statement<unknown[], unknown>;

/** One connection and its prepared statements. */
class Connection {
  readonly db: Db;
  readonly #statements = new Map<string, Statement>();

  constructor(db: Db) {
    this.db = db;
  }

  prepare(sql: string): Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<unknown[], unknown>(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /** Rows as arrays, integers as bigint when the codec needs them. */
  rows(sql: string, codec: RowCodec): Statement {
    return this.prepare(sql).raw(true).safeIntegers(codec.safeIntegers);
  }
}

/** A key value as text, to compare keys read back with keys bound (numbers and bigints alike; bytes as hex). */
function keyText(v: unknown): string {
  return v instanceof Uint8Array ? `x${Buffer.from(v).toString('hex')}` : String(v);
}

/** `UNSUPPORTED_KEY` for an operation by key on a table without a primary key. */
function noKey(entity: EntitySchema, set: string, operation: string): DataError {
  return new DataError(
    'UNSUPPORTED_KEY',
    `[sqlite] ${entity.name} has no primary key: ${operation} by key is not possible. Read it with exportEntity.`,
    { details: { entity: entity.name, set } },
  );
}

function isMissingTable(e: unknown): boolean {
  return e instanceof Database.SqliteError && /no such table/.test(e.message);
}

/** Reads of a set that does not exist yet see an empty set. */
function orEmpty<T>(fn: () => T, empty: T): T {
  try {
    return fn();
  } catch (e) {
    if (isMissingTable(e)) return empty;
    throw e;
  }
}

class Reads implements DataReader {
  readonly #conn: () => Connection;

  constructor(conn: () => Connection) {
    this.#conn = conn;
  }

  async *exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncGenerator<DataRecord[]> {
    const size = options.batchSize ?? 1000;
    if (!Number.isInteger(size) || size <= 0) throw new TypeError(`batchSize must be a positive integer, got ${size}`);
    const budget = checkBatchBytes(options.batchBytes);
    const shape = tableShape(this.#conn().db, physicalName(entity, set));
    const codec = rowCodec(entity, shape);
    const { first, next, keyIndexes } = rowPageSql(entity, set, codec, shape);
    const exact = options.exactJson === true;
    let last: unknown[] | undefined;
    // Each page is read whole (`all`), so no statement stays open between yields: breaking out holds nothing. A page
    // asks for the rows that fill what is left of the batch's byte budget.
    const read = (limit: number) => {
      const conn = this.#conn();
      const rows = orEmpty(
        () =>
          (last === undefined
            ? conn.rows(first, codec).all(limit)
            : conn.rows(next, codec).all(...last, limit)) as unknown[][],
        [],
      );
      const lastRow = rows[rows.length - 1];
      if (lastRow) last = keyIndexes.map((i) => lastRow[i]);
      return rows;
    };
    yield* pagedRecords(read, (r) => codec.fromRow(r, exact), size, budget, options.signal);
  }

  jsonLinesSupported(entity: EntitySchema): boolean {
    return jsonLinesSql(entity) !== undefined;
  }

  /**
   * SQLite renders each line with json_object, so no record object is built in JS. Pages are keyset
   * pages as in `exportEntity`, each read whole so nothing stays open between yields.
   */
  async *exportJsonLines(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncGenerator<Uint8Array> {
    const sql = jsonLinesSql(entity);
    const budget = checkBatchBytes(options.batchBytes);
    const shape = tableShape(this.#conn().db, physicalName(entity, set));
    if (!sql || !rowCodec(entity, shape).natural) {
      yield* boundLineChunks(recordLines(this.exportEntity(entity, set, options), entity), budget);
      return;
    }
    // SQLite renders each line (json_object) and joins a page of them; the next page starts after its last key.
    const size = options.batchSize ?? 1000;
    const pieceBytes = Math.min(STREAM_PIECE_BYTES, budget);
    const { first, next } = linePageSql(entity, set, sql.render);
    let last: unknown;
    let bytes = 0;
    let rows = 0;
    for (;;) {
      throwIfAborted(options.signal);
      const conn = this.#conn();
      const limit = linePageRows(size, pieceBytes, bytes, rows);
      let page: Buffer | null;
      let lastKey: unknown;
      let count: number;
      try {
        // Integers as bigints: the page's last key (a bigint key beyond 2^53) must be exact for the next page.
        let rows: bigint;
        [page, lastKey, rows] = orEmpty(
          () =>
            (last === undefined
              ? conn.prepare(first).raw(true).safeIntegers(true).get(limit)
              : conn.prepare(next).raw(true).safeIntegers(true).get(last, limit)) as [Buffer | null, unknown, bigint],
          [null, null, 0n] as [Buffer | null, unknown, bigint],
        );
        count = Number(rows);
      } catch (e) {
        throw isMisfitError(e) ? await nameMisfit(this, entity, set, e) : e;
      }
      if (!page || count === 0) return;
      // A page of rows wider than the rows before it can pass the budget: cut at its lines.
      yield* cutLineChunk(page, budget);
      bytes += page.length;
      rows += count;
      last = lastKey;
      if (count < limit) return;
    }
  }

  async count(entity: EntitySchema, set: string): Promise<number> {
    const sql = `SELECT count(*) FROM ${quoteIdent(physicalName(entity, set))}`;
    return orEmpty(() => Number(this.#conn().prepare(sql).pluck(true).safeIntegers(false).get()), 0);
  }
}

/** Archive lines (format 2) of exported records, a batch per chunk. */
async function* recordLines(batches: AsyncIterable<DataRecord[]>, entity: EntitySchema): AsyncGenerator<Uint8Array> {
  for await (const batch of batches) {
    let text = '';
    for (const r of batch) text += `${encodeRecordLine(entity, r, 'text')}\n`;
    yield Buffer.from(text, 'utf8');
  }
}

/**
 * A page SQLite rendered failed on a stored value its field cannot carry ({@link MISFIT_SQL}): the same rows read
 * through `exportEntity` name the table, column, key and value.
 */
async function nameMisfit(reader: DataReader, entity: EntitySchema, set: string, cause: unknown): Promise<unknown> {
  try {
    for await (const _ of reader.exportEntity(entity, set, { batchSize: 1000 }));
  } catch (e) {
    return e;
  }
  return cause;
}

/**
 * Keyset pages of raw rows in key order; a composite key pages on the row value `(a, b) > (?, ?)`; a table without a
 * primary key pages on its rowid, selected after the columns (the rowid is not data: restores insert the rows anew).
 */
function rowPageSql(
  entity: EntitySchema,
  set: string,
  codec: RowCodec,
  shape: TableShape | undefined,
): { first: string; next: string; keyIndexes: number[] } {
  const table = quoteIdent(physicalName(entity, set));
  const select = `SELECT ${codec.columns.map(quoteIdent).join(', ')}`;
  if (entity.keyless) {
    const rowid = rowidAlias(shape ?? new Map());
    if (!rowid)
      throw new DataError(
        'UNSUPPORTED_KEY',
        `[sqlite] Table ${physicalName(entity, set)} has no primary key and columns named rowid, _rowid_ and oid: its rows cannot be read in a stable order. Exclude it, or add a primary key.`,
        { details: { entity: entity.name, set } },
      );
    const r = quoteIdent(rowid);
    return {
      first: `${select}, ${r} FROM ${table} ORDER BY ${r} LIMIT ?`,
      next: `${select}, ${r} FROM ${table} WHERE ${r} > ? ORDER BY ${r} LIMIT ?`,
      keyIndexes: [codec.columns.length],
    };
  }
  const keys = keyFieldsOf(entity);
  const order = keys.map(quoteIdent).join(', ');
  const after = keys.length === 1 ? `${order} > ?` : `(${order}) > (${keys.map(() => '?').join(', ')})`;
  return {
    first: `${select} FROM ${table} ORDER BY ${order} LIMIT ?`,
    next: `${select} FROM ${table} WHERE ${after} ORDER BY ${order} LIMIT ?`,
    keyIndexes: keys.map((k) => codec.columns.indexOf(k)),
  };
}

/**
 * Keyset pages of JSON lines rendered by SQLite, each page one BLOB of newline-ended lines (no string per row in JS,
 * no UTF-8 conversion either way), with the page's last key and its row count: `[bytes | null, lastKey, count]`.
 * The page's rows come from a subquery in key order, and `group_concat` takes them in the order it is given them
 * (an `ORDER BY` inside `group_concat` would sort every page again: ~45% slower); `max(k)` says where the next page
 * starts whatever that order, so no row is skipped or read twice.
 */
function linePageSql(entity: EntitySchema, set: string, render: string): { first: string; next: string } {
  const table = quoteIdent(physicalName(entity, set));
  const key = quoteIdent(entity.key);
  const page = (where: string) =>
    `SELECT CAST(group_concat(l, char(10)) || char(10) AS BLOB), max(k), count(*) FROM (SELECT ${render} AS l, ${key} AS k FROM ${table} ${where} ORDER BY ${key} LIMIT ?)`;
  return { first: page(''), next: page(`WHERE ${key} > ?`) };
}

/**
 * Rows per line page: enough for about `pieceBytes` ({@link STREAM_PIECE_BYTES}, or a smaller byte budget) at the
 * size of the rows read so far (the first page reads 16), at most `limit`.
 */
function linePageRows(limit: number, pieceBytes: number, bytes = 0, rows = 0): number {
  if (rows === 0) return Math.min(limit, 16);
  return Math.max(1, Math.min(limit, Math.floor(pieceBytes / Math.max(1, bytes / rows))));
}

/**
 * The reader of `readSnapshot`: the snapshot's connection lives on a worker thread, which renders the
 * next page while this thread hashes and compresses the previous one.
 */
class WorkerReads implements DataReader {
  readonly consistency = 'snapshot' as const;
  readonly #worker: SnapshotWorker;
  /** The shape of a table, read on the main connection (the snapshot's tables have the same columns). */
  readonly #shape: (physical: string) => TableShape | undefined;

  constructor(worker: SnapshotWorker, shape: (physical: string) => TableShape | undefined) {
    this.#worker = worker;
    this.#shape = shape;
  }

  jsonLinesSupported(): boolean {
    return true;
  }

  async count(entity: EntitySchema, set: string): Promise<number> {
    return this.#worker.count(`SELECT count(*) FROM ${quoteIdent(physicalName(entity, set))}`);
  }

  async *exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncGenerator<DataRecord[]> {
    const size = options.batchSize ?? 1000;
    if (!Number.isInteger(size) || size <= 0) throw new TypeError(`batchSize must be a positive integer, got ${size}`);
    const budget = checkBatchBytes(options.batchBytes);
    const shape = this.#shape(physicalName(entity, set));
    const codec = rowCodec(entity, shape);
    const { first, next, keyIndexes } = rowPageSql(entity, set, codec, shape);
    const exact = options.exactJson === true;
    const safe = codec.safeIntegers;
    const cursor = await this.#worker.cursor({ kind: 'rows', first, next, size, budget, safe, keyIndexes });
    const { signal } = options;
    async function* pages() {
      for (;;) {
        throwIfAborted(signal);
        const page = await cursor.next();
        if (page.done || !page.rows) return;
        yield page.rows.map((r) => codec.fromRow(r, exact));
      }
    }
    try {
      yield* byteBatches(pages(), recordBytes, size, budget);
    } finally {
      cursor.close();
    }
  }

  async *exportJsonLines(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncGenerator<Uint8Array> {
    const sql = jsonLinesSql(entity);
    const budget = checkBatchBytes(options.batchBytes);
    if (!sql || !rowCodec(entity, this.#shape(physicalName(entity, set))).natural) {
      yield* boundLineChunks(recordLines(this.exportEntity(entity, set, options), entity), budget);
      return;
    }
    const { first, next } = linePageSql(entity, set, sql.render);
    const cursor = await this.#worker.cursor({
      kind: 'pages',
      first,
      next,
      size: options.batchSize ?? 1000,
      budget,
    });
    try {
      for (;;) {
        throwIfAborted(options.signal);
        let page: Awaited<ReturnType<typeof cursor.next>>;
        try {
          page = await cursor.next();
        } catch (e) {
          throw isMisfitError(e) ? await nameMisfit(this, entity, set, e) : e;
        }
        if (page.done || !page.chunks) return;
        for (const chunk of page.chunks) yield* cutLineChunk(chunk, budget);
      }
    } finally {
      cursor.close();
    }
  }
}

/**
 * The SQLite adapter (better-sqlite3). One table per entity set, named by `physicalName`; see
 * `sqlite-types.ts` for the column types. better-sqlite3 is synchronous: each call runs to completion,
 * and an async `transaction()` holds the connection's write lock for its duration (other writers wait).
 */
export class SqliteAdapter implements DataAdapter {
  readonly provider = PROVIDER_NAME;
  readonly capabilities: AdapterCapabilities;
  readonly path: string;
  readonly source: string;
  readonly #settings: Required<Omit<SqliteSettings, 'path' | 'walMode'>> & { readonly walMode: boolean | 'new' };
  #conn: Connection | undefined;
  readonly #reads = new Reads(() => this.#connection());
  readonly #inTransaction = new AsyncLocalStorage<{ depth: number; state: TransactionState }>();
  /** Triggers suspended outside a transaction (a caller that runs the structure facet without one). */
  readonly #suspended: SuspendedTrigger[] = [];
  /** SQLite's own DDL, captured by backups and replayed by restores into SQLite (see `sqlite-structure.ts`). */
  readonly structure: StructureFacet = new SqliteStructure({
    db: (write) => {
      if (write) this.#materialize();
      return this.#connection().db;
    },
    suspended: () => this.#inTransaction.getStore()?.state.suspended ?? this.#suspended,
    recordDeclared: (entity, physical) => {
      const conn = this.#connection();
      this.#ensureMeta(conn);
      conn
        .prepare(`INSERT OR REPLACE INTO ${KOAN_META_TABLE} (physical, entity, schema) VALUES (?, ?, ?)`)
        .run(physical, entity.name, JSON.stringify(entity));
    },
  });
  #writeLock: Promise<void> = Promise.resolve();
  #atomic: ((fn: () => unknown) => unknown) | undefined;
  #metaReady = false;
  /** The file did not exist at `init()`: an empty stand-in in memory serves reads until the first write. */
  #absent = false;
  /** This adapter created the file (at its first write), and the folder made for it if any: see `#discardIfEmpty`. */
  #created: { readonly folder: string | undefined } | undefined;

  constructor(settings: SqliteSettings, context: { readonly cwd?: string; readonly source?: string } = {}) {
    if (typeof settings?.path !== 'string' || !settings.path)
      throw new ConfigError(
        'INVALID_SETTINGS',
        '[sqlite] Missing required setting `path` (a database file, or ":memory:").',
      );
    this.path = settings.path === ':memory:' ? ':memory:' : resolve(context.cwd ?? process.cwd(), settings.path);
    this.source = context.source ?? 'default';
    this.#settings = Object.freeze({
      walMode: settings.walMode ?? 'new',
      busyTimeoutMs: settings.busyTimeoutMs ?? 5000,
      foreignKeys: settings.foreignKeys ?? true,
    });
    this.capabilities = Object.freeze({
      transactions: true,
      // A second connection can only see the same database through a file: beside writers in WAL mode, with a read
      // lock that makes writers wait in the other journal modes.
      snapshotReads: this.path !== ':memory:' && this.#settings.walMode !== false,
      nativeUpsert: true,
      // Measured: deferring WAL checkpoints during loads only moved the work to the end; no real bulk path exists.
      bulkLoad: false,
      orderedStreaming: true,
      sets: true,
      introspection: true,
      ttl: false,
      nonFiniteNumbers: true,
      dynamicValues: true,
    });
  }

  /** The better-sqlite3 database (after `init()`), for what the contract does not cover; creates a missing file (removed again at `close()` if nothing was created in it). */
  getInstance(): Db {
    this.#materialize();
    return this.#connection().db;
  }

  #connection(): Connection {
    if (!this.#conn)
      throw new DataError(
        'NOT_INITIALIZED',
        `[sqlite] ${this.path} is not open: call init() first (or it was closed).`,
      );
    return this.#conn;
  }

  /**
   * Opens the database. A file that does not exist yet is not created here: until the first write (`ensureEntity`,
   * `transaction`, `getInstance`) reads see an empty database, so reading (a backup, a restore's dry run, discovery)
   * never leaves a file or folder behind.
   */
  async init(): Promise<void> {
    if (this.#conn) return;
    this.#absent = this.path !== ':memory:' && !existsSync(this.path);
    this.#open(this.#absent ? ':memory:' : this.path);
  }

  /** Opens `path`; returns the first folder it had to create for it, if any. */
  #open(path: string): string | undefined {
    const folder = path !== ':memory:' ? mkdirSync(dirname(path), { recursive: true }) : undefined;
    const existing = path !== ':memory:' && (statSync(path, { throwIfNoEntry: false })?.size ?? 0) > 0;
    const db = new Database(path);
    try {
      db.pragma(`busy_timeout = ${this.#settings.busyTimeoutMs}`);
      db.pragma(`foreign_keys = ${this.#settings.foreignKeys ? 'ON' : 'OFF'}`);
      if (path !== ':memory:') {
        const wal = this.#settings.walMode === true || (this.#settings.walMode === 'new' && !existing);
        if (wal) db.pragma('journal_mode = WAL');
        // Safe in WAL mode: a power loss may lose the last commits but never corrupts the file.
        if (db.pragma('journal_mode', { simple: true }) === 'wal') db.pragma('synchronous = NORMAL');
      }
    } catch (e) {
      db.close();
      throw e;
    }
    this.#conn = new Connection(db);
    this.#atomic = db.transaction((fn: () => unknown) => fn());
    this.#metaReady = false;
    return folder;
  }

  /** Creates the file that did not exist at `init()` (and its folder), before the first write. */
  #materialize(): void {
    if (!this.#absent) return;
    this.#connection().db.close();
    this.#absent = false;
    this.#created = { folder: this.#open(this.path) };
  }

  /**
   * A file this adapter created that holds nothing after all (a restore refused or rolled back, the tables it made
   * dropped again) is removed, with its WAL files and the folders made for it, and the in-memory stand-in serves
   * reads again: a failed write leaves no empty database behind. A file that existed before is never removed.
   */
  #discardIfEmpty(): void {
    if (!this.#created || this.#absent || this.#inTransaction.getStore()) return;
    const db = this.#connection().db;
    if (!holdsNothing(db)) return;
    db.close();
    removeDatabaseFiles(this.path, this.#created.folder);
    this.#created = undefined;
    this.#absent = true;
    this.#open(':memory:');
  }

  async close(): Promise<void> {
    await this.#writeLock;
    if (this.#conn) this.#discardIfEmpty();
    this.#conn?.db.close();
    this.#conn = undefined;
  }

  /** Writes wait for an open transaction unless they are part of it. */
  async #exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.#inTransaction.getStore()) return fn();
    const previous = this.#writeLock;
    let release!: () => void;
    this.#writeLock = new Promise((r) => {
      release = r;
    });
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #atomically<T>(fn: () => T): T {
    this.#connection();
    return this.#atomic!(fn) as T;
  }

  #table(entity: EntitySchema, set: string): string {
    return quoteIdent(physicalName(entity, set));
  }

  #writeError(e: unknown, entity: EntitySchema, set: string, record?: DataRecord): unknown {
    if (!(e instanceof Database.SqliteError)) return e;
    const details = {
      entity: entity.name,
      set,
      ...(record ? { key: keyFieldsOf(entity).length > 1 ? describeKey(entity, record) : record[entity.key] } : {}),
    };
    if (e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || (e.code === 'SQLITE_CONSTRAINT_UNIQUE' && record))
      return new DataError(
        'DUPLICATE_KEY',
        `${entity.name}: a record with key ${JSON.stringify(record ? describeKey(entity, record) : 'undefined')} already exists in set "${set}". Use upsert to replace it.`,
        { cause: e, details },
      );
    if (isMissingTable(e))
      return new DataError(
        'TABLE_MISSING',
        `[sqlite] ${entity.name} set "${set}" has no table: call ensureEntity(entity, "${set}") before writing.`,
        {
          cause: e,
          details,
        },
      );
    if (/has no column named/.test(e.message))
      return new DataError(
        'SCHEMA_MISMATCH',
        `[sqlite] ${e.message}: the table of ${entity.name} predates a field; add the column or migrate the table.`,
        {
          cause: e,
          details,
        },
      );
    if (e.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' && record) {
      const conn = this.#connection();
      // The failed row was not written: find the reference of this record whose parent row is missing.
      for (const fk of this.#foreignKeys(conn, physicalName(entity, set))) {
        const values = fk.columns.map((c) => record[c]);
        if (values.some((v) => v === null || v === undefined)) continue;
        const where = fk.parentColumns.map((c) => `${quoteIdent(c)} = ?`).join(' AND ');
        const found = conn
          .prepare(`SELECT 1 FROM ${quoteIdent(fk.parent)} WHERE ${where} LIMIT 1`)
          .get(...values.map((v) => (typeof v === 'boolean' ? Number(v) : v)));
        if (found === undefined) return foreignKeyViolation(entity, set, describeKey(entity, record), fk, values, e);
      }
    }
    if (e.code.startsWith('SQLITE_CONSTRAINT'))
      return new DataError('CONSTRAINT_VIOLATION', `[sqlite] ${entity.name}: ${e.message}`, { cause: e, details });
    return e;
  }

  #foreignKeys(conn: Connection, physical: string): ForeignKey[] {
    const rows = conn
      .prepare(`PRAGMA foreign_key_list(${quoteIdent(physical)})`)
      .safeIntegers(false)
      .all() as { id: number; table: string; from: string; to: string | null }[];
    const byId = new Map<number, { parent: string; columns: string[]; parentColumns: (string | null)[] }>();
    for (const r of rows) {
      const fk = byId.get(r.id) ?? { parent: r.table, columns: [], parentColumns: [] };
      fk.columns.push(r.from);
      fk.parentColumns.push(r.to);
      byId.set(r.id, fk);
    }
    return [...byId.values()].map((fk) => {
      // `REFERENCES P` without columns means P's primary key.
      const parentColumns = fk.parentColumns.every((c) => c !== null)
        ? (fk.parentColumns as string[])
        : this.#columns(conn, fk.parent)
            .filter((c) => c.pk > 0)
            .sort((a, b) => a.pk - b.pk)
            .map((c) => c.name);
      const constraint = `FOREIGN KEY (${fk.columns.join(', ')}) REFERENCES ${fk.parent} (${parentColumns.join(', ')})`;
      return { constraint, parent: fk.parent, columns: fk.columns, parentColumns };
    });
  }

  /**
   * Before a transaction with deferred constraints commits: the first row of a written table whose parent is
   * missing, named by entity, key and constraint (COMMIT itself would only say "FOREIGN KEY constraint failed").
   */
  #checkDeferred(state: TransactionState): void {
    const conn = this.#connection();
    if (!conn.db.pragma('foreign_keys', { simple: true })) return;
    for (const [physical, { entity, set }] of state.written) {
      const keys = keyFieldsOf(entity);
      for (const fk of this.#foreignKeys(conn, physical)) {
        const child = (c: string) => `c.${quoteIdent(c)}`;
        const sql =
          `SELECT ${[...keys, ...fk.columns].map(child).join(', ')} FROM ${quoteIdent(physical)} c ` +
          `WHERE ${fk.columns.map((c) => `${child(c)} IS NOT NULL`).join(' AND ')} AND NOT EXISTS (SELECT 1 FROM ${quoteIdent(fk.parent)} p ` +
          `WHERE ${fk.parentColumns.map((pc, i) => `p.${quoteIdent(pc)} = ${child(fk.columns[i]!)}`).join(' AND ')}) LIMIT 1`;
        const row = conn.prepare(sql).raw(true).safeIntegers(false).get() as unknown[] | undefined;
        if (!row) continue;
        const record = Object.fromEntries(keys.map((k, i) => [k, row[i]]));
        throw foreignKeyViolation(entity, set, describeKey(entity, record), fk, row.slice(keys.length));
      }
    }
    // Tables not written here (a cleared parent's other children) are left to COMMIT, which names no row.
    const other = conn.prepare('PRAGMA foreign_key_check').raw(true).get() as unknown[] | undefined;
    if (other)
      throw new DataError(
        'FOREIGN_KEY_VIOLATION',
        `[sqlite] ${String(other[0])} row ${String(other[1])} references a missing ${String(other[2])} row: the transaction was rolled back.`,
        { details: { table: other[0], rowid: other[1], references: other[2] } },
      );
  }

  /**
   * Postpones foreign-key checks to the end of the current `transaction()` (`PRAGMA defer_foreign_keys`); before
   * it commits, every table written in it is checked and a violation is named (see `DataWriter.deferConstraints`).
   * Outside a transaction it does nothing.
   */
  async deferConstraints(): Promise<void> {
    const current = this.#inTransaction.getStore();
    if (!current) return;
    this.#connection().db.pragma('defer_foreign_keys = ON');
    current.state.deferred = true;
  }

  async dropEntity(entity: EntitySchema, set: string): Promise<void> {
    await this.#exclusive(() => {
      if (this.#absent) return; // the file was never written: there is nothing to drop
      const conn = this.#connection();
      const physical = physicalName(entity, set);
      this.#atomically(() => {
        conn.db.exec(`DROP TABLE IF EXISTS ${quoteIdent(physical)}`);
        if (tableColumns(conn.db, KOAN_META_TABLE).length)
          conn.prepare(`DELETE FROM ${KOAN_META_TABLE} WHERE physical = ?`).run(physical);
      });
      this.#discardIfEmpty();
    });
  }

  async ensureEntity(entity: EntitySchema, set: string): Promise<void> {
    await this.#exclusive(() => {
      this.#materialize();
      const conn = this.#connection();
      const physical = physicalName(entity, set);
      const existing = tableColumns(conn.db, physical);
      if (existing.length) {
        const missing = Object.keys(entity.fields).filter((f) => !existing.some((c) => c.name === f));
        if (missing.length)
          throw new DataError(
            'SCHEMA_MISMATCH',
            `[sqlite] Table ${physical} lacks column(s) ${missing.join(', ')} of ${entity.name}: add them (ALTER TABLE ... ADD COLUMN) or migrate the table.`,
            { details: { entity: entity.name, set, missing } },
          );
        return;
      }
      this.#atomically(() => {
        conn.db.exec(createTableSql(entity, physical));
        if (entity.origin === 'declared') {
          this.#ensureMeta(conn);
          conn
            .prepare(`INSERT OR REPLACE INTO ${KOAN_META_TABLE} (physical, entity, schema) VALUES (?, ?, ?)`)
            .run(physical, entity.name, JSON.stringify(entity));
        }
      });
    });
  }

  #ensureMeta(conn: Connection): void {
    if (this.#metaReady) return;
    conn.db.exec(
      `CREATE TABLE IF NOT EXISTS ${KOAN_META_TABLE} (physical TEXT NOT NULL PRIMARY KEY, entity TEXT NOT NULL, schema TEXT NOT NULL)`,
    );
    this.#metaReady = true;
  }

  #columns(conn: Connection, physical: string): { name: string; type: string; notnull: number; pk: number }[] {
    return conn
      .prepare(`PRAGMA table_info(${quoteIdent(physical)})`)
      .safeIntegers(false)
      .all() as {
      name: string;
      type: string;
      notnull: number;
      pk: number;
    }[];
  }

  async importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    if (records.length === 0) return { inserted: 0, updated: 0 };
    return this.#writeRows(
      entity,
      set,
      records.length,
      (codec) => (i) => codec.toRow(records[i]!),
      (i) => records[i],
      options,
    );
  }

  /**
   * The rows, inserted (or upserted) atomically. `rowsOf(codec)(i)` is the bound row in `codec.writeColumns` order
   * (the table's generated columns are never written); `recordAt(i)` names the record of a failure. Writes bind up
   * to {@link ROWS_PER_INSERT} rows per statement; an upsert into a set that holds records first asks which of the
   * statement's keys exist, to count updates (row by row for composite keys). A table without a primary key only
   * takes inserts.
   */
  #writeRows(
    entity: EntitySchema,
    set: string,
    count: number,
    rowsOf: (codec: RowCodec) => (i: number) => unknown[],
    recordAt: (i: number) => DataRecord | undefined,
    options: ImportOptions,
  ): Promise<ImportResult> {
    return this.#exclusive(() => {
      const conn = this.#connection();
      const physical = physicalName(entity, set);
      const codec = rowCodec(entity, tableShape(conn.db, physical));
      const rowAt = rowsOf(codec);
      const table = this.#table(entity, set);
      const cols = codec.writeColumns.map(quoteIdent);
      const keyCols = keyFieldsOf(entity).map(quoteIdent);
      const keyIndexes = keyFieldsOf(entity).map((f) => codec.writeColumns.indexOf(f));
      const key = keyCols.join(', ');
      let sql = `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
      const upsert = options.mode === 'upsert';
      if (upsert && entity.keyless)
        throw new DataError(
          'UNSUPPORTED_KEY',
          `[sqlite] ${entity.name} has no primary key: an upsert cannot match its rows. Insert (mode "insert"), or empty the set first.`,
          { details: { entity: entity.name, set } },
        );
      if (upsert) {
        const others = cols.filter((c) => !keyCols.includes(c));
        sql += others.length
          ? ` ON CONFLICT(${key}) DO UPDATE SET ${others.map((c) => `${c} = excluded.${c}`).join(', ')}`
          : ` ON CONFLICT(${key}) DO NOTHING`;
      }
      let current = -1;
      this.#inTransaction.getStore()?.state.written.set(physical, { entity, set });
      try {
        const insert = conn.prepare(sql);
        return this.#atomically(() => {
          // Upserts into an empty table (a restore's first batch) skip the existence probe.
          const probing = upsert && conn.prepare(`SELECT 1 FROM ${table} LIMIT 1`).get() !== undefined;
          const probe = probing
            ? conn.prepare(`SELECT 1 FROM ${table} WHERE ${keyCols.map((c) => `${c} = ?`).join(' AND ')}`).pluck(true)
            : undefined;
          let updated = 0;
          let i = 0;
          // Rows go in by the statement-full (one call into SQLite per ~100 rows, not per row); an upsert into a set
          // that holds records first asks which keys of the statement exist (one IN query), to count updates.
          const width = cols.length;
          const singleKey = keyIndexes.length === 1 ? keyIndexes[0]! : -1;
          const perStatement =
            probing && singleKey < 0 ? 1 : Math.min(ROWS_PER_INSERT, Math.floor(PARAMS_PER_INSERT / width));
          if (perStatement > 1 && count >= perStatement) {
            const one = `(${cols.map(() => '?').join(', ')})`;
            const many = conn.prepare(sql.replace(one, Array(perStatement).fill(one).join(', ')));
            const existing = probing
              ? conn
                  .prepare(
                    `SELECT ${keyCols[0]} FROM ${table} WHERE ${keyCols[0]} IN (${Array(perStatement).fill('?').join(', ')})`,
                  )
                  .pluck(true)
                  .safeIntegers(true)
              : undefined;
            const params: unknown[] = new Array(perStatement * width);
            const keys: unknown[] = new Array(perStatement);
            for (; i + perStatement <= count; i += perStatement) {
              for (let j = 0; j < perStatement; j++) {
                current = i + j;
                const row = rowAt(i + j);
                for (let c = 0; c < width; c++) params[j * width + c] = row[c];
                if (existing) keys[j] = row[singleKey];
              }
              if (existing) {
                // As row by row: a key that exists, or that an earlier row of the statement wrote, is an update.
                const seen = new Set((existing.all(...keys) as unknown[]).map(keyText));
                for (const key of keys) {
                  const k = keyText(key);
                  if (seen.has(k)) updated++;
                  else seen.add(k);
                }
              }
              try {
                many.run(params);
              } catch (e) {
                // The failed statement left nothing behind: insert its rows one by one to name the one at fault.
                for (let j = 0; j < perStatement; j++) {
                  current = i + j;
                  insert.run(rowAt(i + j));
                }
                current = -1;
                throw e;
              }
            }
          }
          for (; i < count; i++) {
            current = i;
            const row = rowAt(i);
            if (probe && probe.get(...keyIndexes.map((k) => row[k])) !== undefined) updated++;
            insert.run(row);
          }
          return { inserted: count - updated, updated };
        });
      } catch (e) {
        if (e instanceof DataError) throw e; // a line that does not decode, a refused value: named already
        let record: DataRecord | undefined;
        try {
          record = current >= 0 ? recordAt(current) : undefined;
        } catch {
          record = undefined;
        }
        throw this.#writeError(e, entity, set, record);
      }
    });
  }

  async clear(entity: EntitySchema, set: string): Promise<number> {
    return this.#exclusive(() => {
      this.#inTransaction.getStore()?.state.written.set(physicalName(entity, set), { entity, set });
      try {
        return this.#connection()
          .prepare(`DELETE FROM ${this.#table(entity, set)}`)
          .run().changes;
      } catch (e) {
        throw this.#writeError(e, entity, set);
      }
    });
  }

  async remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    if (entity.keyless) throw noKey(entity, set, 'remove');
    if (keys.length === 0) return 0;
    return this.#exclusive(() => {
      try {
        const del = this.#connection().prepare(
          `DELETE FROM ${this.#table(entity, set)} WHERE ${quoteIdent(entity.key)} = ?`,
        );
        return this.#atomically(() => {
          let removed = 0;
          for (const key of keys) removed += del.run(key).changes;
          return removed;
        });
      } catch (e) {
        throw this.#writeError(e, entity, set);
      }
    });
  }

  jsonLinesSupported(entity: EntitySchema): boolean {
    return jsonLinesSql(entity) !== undefined;
  }

  exportJsonLines(entity: EntitySchema, set: string, options?: ExportOptions): AsyncIterable<Uint8Array> {
    return this.#reads.exportJsonLines(entity, set, options);
  }

  /**
   * Restore fast path: each archive line becomes a bound row without `JSON.parse` or a record object when it is
   * canonical (`lineRows`), then the prepared INSERT of `importBatch` runs, with its semantics and counts. A line
   * that does not decode fails the batch (`DataError` `INVALID_VALUE`, `details.line`); nothing of it stays.
   */
  async importJsonLines(
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    if (lines.length === 0) return { inserted: 0, updated: 0 };
    const json = options.json ?? 'text';
    return this.#writeRows(
      entity,
      set,
      lines.length,
      (codec) => {
        const toRow = lineRows(entity, json, codec);
        return (i) => toRow(lines[i]!, i);
      },
      (i) => decodeArchiveLines(entity, [lines[i]!], json, i)[0],
      options,
    );
  }

  exportEntity(entity: EntitySchema, set: string, options?: ExportOptions): AsyncIterable<DataRecord[]> {
    return this.#reads.exportEntity(entity, set, options);
  }

  count(entity: EntitySchema, set: string): Promise<number> {
    return this.#reads.count(entity, set);
  }

  async get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined> {
    return (await this.getMany(entity, set, [key]))[0];
  }

  async getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]> {
    // No row of a table without a primary key has a key: a lookup finds none (a restore's dry run counts inserts).
    if (entity.keyless) return [];
    const codec = rowCodec(entity, tableShape(this.#connection().db, physicalName(entity, set)));
    const sql = `SELECT ${codec.columns.map(quoteIdent).join(', ')} FROM ${this.#table(entity, set)} WHERE ${quoteIdent(entity.key)} = ?`;
    return orEmpty(() => {
      const stmt = this.#connection().rows(sql, codec);
      const out: DataRecord[] = [];
      for (const key of keys) {
        const row = stmt.get(key) as unknown[] | undefined;
        if (row) out.push(codec.fromRow(row));
      }
      return out;
    }, []);
  }

  /** See `DataAdapter.countExisting`. */
  async countExisting(entity: EntitySchema, set: string, records: readonly DataRecord[]): Promise<number> {
    return countExistingKeys(this.#connection().db, entity, set, records);
  }

  async listSets(entity: EntitySchema): Promise<string[]> {
    const names = this.#connection()
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
      .pluck(true)
      .all() as string[];
    const sets = names.map((n) => setFromPhysicalName(entity, n)).filter((s): s is string => s !== undefined);
    return sets.sort((a, b) => (a === ROOT_SET ? -1 : b === ROOT_SET ? 1 : a < b ? -1 : a > b ? 1 : 0));
  }

  /** The table name with ASCII letters lower-cased: SQLite compares table names so (see `DataAdapter.locationOf`). */
  locationOf(entity: EntitySchema, set: string): string {
    return physicalName(entity, set).replace(/[A-Z]+/g, (c) => c.toLowerCase());
  }

  async describe(entity: EntitySchema, set: string): Promise<StoreDescription> {
    const conn = this.#connection();
    const physical = physicalName(entity, set);
    const columns = tableColumns(conn.db, physical);
    const fks = conn
      .prepare(`PRAGMA foreign_key_list(${quoteIdent(physical)})`)
      .safeIntegers(false)
      .all() as {
      id: number;
      table: string;
      from: string;
      to: string | null;
    }[];
    const grouped = new Map<number, { columns: string[]; references: string; referencedColumns: string[] }>();
    for (const fk of fks) {
      const g = grouped.get(fk.id) ?? { columns: [], references: fk.table, referencedColumns: [] };
      g.columns.push(fk.from);
      if (fk.to) g.referencedColumns.push(fk.to);
      grouped.set(fk.id, g);
    }
    const sql = conn
      .prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`)
      .pluck(true)
      .get(physical) as string | undefined;
    return {
      provider: this.provider,
      location: `${this.path} table ${quoteIdent(physical)}`,
      exists: columns.length > 0,
      columns: columns
        .filter((c) => c.name !== ABSENT_COLUMN)
        .map((c) => ({ name: c.name, storeType: c.type, nullable: c.notnull === 0 && c.pk === 0 })),
      primaryKey: columns
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name),
      foreignKeys: [...grouped.values()],
      extra: {
        absentColumn: columns.some((c) => c.name === ABSENT_COLUMN),
        generated: columns
          .filter((c) => c.hidden === 2 || c.hidden === 3)
          .map((c) => ({ name: c.name, kind: c.hidden === 2 ? 'virtual' : 'stored' })),
        withoutRowid: sql ? /WITHOUT\s+ROWID\s*$/i.test(sql.trim()) : false,
      },
    };
  }

  async readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: Consistency }) => Promise<T>): Promise<T> {
    if (!this.capabilities.snapshotReads)
      return fn(Object.assign(new Reads(() => this.#connection()), { consistency: 'fuzzy' as const }));
    this.#connection();
    if (this.#absent) {
      // No file yet: the database at this moment is empty, and stays so for this snapshot whatever fn writes.
      const empty = new Connection(new Database(':memory:'));
      try {
        return await fn(Object.assign(new Reads(() => empty), { consistency: 'snapshot' as const }));
      } finally {
        empty.db.close();
      }
    }
    // The worker opens a read-only connection and starts a deferred transaction with a first read, so
    // the snapshot is taken before `open` returns and later writes stay invisible to every read in `fn`.
    const worker = await SnapshotWorker.open(this.path, this.#settings.busyTimeoutMs);
    try {
      return await fn(new WorkerReads(worker, (physical) => tableShape(this.#connection().db, physical)));
    } finally {
      await worker.end();
    }
  }

  async transaction<T>(fn: (writer: DataWriter) => Promise<T>): Promise<T> {
    const outer = this.#inTransaction.getStore();
    if (outer) return this.#savepoint(outer.depth + 1, outer.state, fn);
    const state: TransactionState = { deferred: false, written: new Map(), suspended: [] };
    return this.#exclusive(async () => {
      try {
        return await this.#inTransaction.run({ depth: 0, state }, async () => {
          this.#materialize();
          const db = this.#connection().db;
          db.exec('BEGIN IMMEDIATE');
          try {
            const result = await fn(this);
            if (state.deferred) this.#checkDeferred(state);
            db.exec('COMMIT');
            return result;
          } catch (e) {
            if (db.inTransaction) db.exec('ROLLBACK');
            throw e;
          }
        });
      } catch (e) {
        this.#discardIfEmpty(); // rolled back into a file it created: nothing of it stays
        throw e;
      }
    });
  }

  async #savepoint<T>(depth: number, state: TransactionState, fn: (writer: DataWriter) => Promise<T>): Promise<T> {
    const db = this.#connection().db;
    const name = `koan_tx_${depth}`;
    db.exec(`SAVEPOINT ${name}`);
    try {
      const result = await this.#inTransaction.run({ depth, state }, () => fn(this));
      db.exec(`RELEASE ${name}`);
      return result;
    } catch (e) {
      if (db.inTransaction) db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      throw e;
    }
  }

  /** The tables as entities, with the tables it had to leave out and why, and the views (see `DataAdapter.introspect`). */
  async introspect(): Promise<IntrospectionResult> {
    return introspectDatabase(this.#connection().db, this.source);
  }
}

import { Readable } from 'node:stream';
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
  abortedOr,
  byteBatches,
  type Consistency,
  checkBatchBytes,
  type DataReader,
  type DataWriter,
  decodeArchiveLines,
  describeKey,
  type ExportOptions,
  fieldNote,
  type ImportOptions,
  type ImportResult,
  type IntrospectionResult,
  importEachBatch,
  keyFieldsOf,
  keySpec,
  lineTranscoder,
  PageSizer,
  physicalName,
  ROOT_SET,
  recordBytes,
  rowBytes,
  type StoreDescription,
  type StructureFacet,
  setFromPhysicalName,
  type TransactionOptions,
  throwIfAborted,
  transcodedPieces,
} from '@koan/data/adapter-kit';
import {
  createConnection,
  createPool,
  type Pool,
  type PoolConnection,
  type PoolOptions,
  type ResultSetHeader,
  escape as sqlEscape,
} from 'mysql2/promise';
import { LineChunks, type RowValues, rowLines, rowLinesSupported } from './line-render.js';
import {
  assertKeyed,
  duplicateKeyError,
  ER_DUP_ENTRY,
  ER_NO_REFERENCED_ROW,
  type ForeignKeyRow,
  foreignKeyViolation,
  isNoSuchTable,
} from './mysql-errors.js';
import { describeTable, ENTITY_COMMENT_PREFIX, introspectDatabase } from './mysql-introspector.js';
import { type NativeColumn, nativeTable } from './mysql-native.js';
import { type TablePlan, tablePlan } from './mysql-plan.js';
import { streamRows } from './mysql-stream.js';
import { MysqlStructure } from './mysql-structure.js';
import { ABSENT_COLUMN, ambiguousFields, columnType, keyColumnLengths, quoteId, tsvText } from './mysql-types.js';
import { refusalOfLine } from './mysql-values.js';

const absentTsv = (v: unknown) => (v === null || v === undefined ? '\\N' : tsvText(String(v)));

/** Settings of a MySQL/MariaDB source. */
export interface MysqlSettings {
  /** `mysql://user:password@host:port/database`; the separate fields below override its parts. */
  readonly uri?: string;
  /** @default '127.0.0.1' (when no `uri`) */
  readonly host?: string;
  /** @default 3306 */
  readonly port?: number;
  /** @default 'root' (when no `uri`) */
  readonly user?: string;
  readonly password?: string;
  /** Required, here or in `uri`. */
  readonly database?: string;
  /** Connections in the pool. @default 4 */
  readonly poolSize?: number;
}

const CAPABILITIES: AdapterCapabilities = Object.freeze({
  transactions: true,
  snapshotReads: true,
  nativeUpsert: true,
  bulkLoad: true,
  orderedStreaming: true,
  sets: true,
  introspection: true,
  ttl: false,
  nonFiniteNumbers: false,
});

/**
 * Strict: a value a column cannot hold is an error, not a warning and a changed value. Zero dates (`0000-00-00`,
 * `2024-00-15`) are values like any other (NO_ZERO_DATE and NO_ZERO_IN_DATE are not set), so a source's zero dates are
 * written back as they are. NO_AUTO_VALUE_ON_ZERO keeps a restored id 0 in an AUTO_INCREMENT column 0 instead of
 * taking the next number (what mysqldump sets too).
 */
export const SESSION_SQL =
  "SET SESSION time_zone = '+00:00', SESSION sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO'";
const MAX_STATEMENT_BYTES = 4 * 1024 * 1024;
const KEYS_PER_STATEMENT = 1000;
/** Chunks of exported lines read ahead of the consumer before the connection pauses (~4 x 60 KiB). */
const EXPORT_CHUNKS_AHEAD = 4;

/** Where an operation runs: on a pooled connection of its own, or on the connection of a transaction/snapshot. */
interface Session {
  readonly conn?: PoolConnection;
  /** Set on the session of `transaction()`: tables written, and whether foreign-key checks are deferred. */
  readonly state?: { deferred: boolean; readonly written: Map<string, { entity: EntitySchema; set: string }> };
  /** The native columns of the tables this transaction or snapshot used, by table (read once per session). */
  readonly natives?: Map<string, ReadonlyMap<string, NativeColumn>>;
}

const POOLED: Session = Object.freeze({});

/**
 * The MySQL/MariaDB adapter. One pool per source; each export holds one connection for its whole
 * stream and gives it back in `finally`.
 */
export class MysqlAdapter implements DataAdapter {
  readonly provider = 'mysql';
  readonly capabilities = CAPABILITIES;
  readonly #options: PoolOptions;
  readonly #source: string;
  #pool: Pool | undefined;
  #ready = new WeakSet<object>();
  /** The connection of each writer `transaction()` made, for the structure facet's `finish`. */
  #writerConnections = new WeakMap<DataWriter, PoolConnection>();
  /** See `StructureFacet` and `mysql-structure.ts`. */
  readonly structure: StructureFacet = new MysqlStructure({
    acquire: () => this.#acquire(),
    connectionOf: (tx) => {
      const conn = this.#writerConnections.get(tx);
      if (!conn) throw new DataError('NOT_IN_TRANSACTION', '[mysql] structure.finish needs a writer of transaction()');
      return conn;
    },
    mariadb: () => this.#mariadb,
    ensureEntity: (entity, set) => this.ensureEntity(entity, set),
  });
  #binaryCollation = 'utf8mb4_bin';
  #localInfile = false;
  #mariadb = false;
  #maxStatementBytes = MAX_STATEMENT_BYTES;
  #caseInsensitiveTables = false;

  constructor(settings: MysqlSettings = {}, context: { readonly source?: string } = {}) {
    this.#source = context.source ?? 'default';
    const fromUri = settings.uri ? new URL(settings.uri) : undefined;
    const database = settings.database ?? (fromUri ? decodeURIComponent(fromUri.pathname.slice(1)) : undefined);
    if (!database)
      throw new ConfigError(
        'MISSING_SETTING',
        '[koan] [mysql] Missing required setting `database` (or a `uri` ending in /database).',
      );
    this.#options = Object.freeze({
      host: settings.host ?? (fromUri?.hostname || '127.0.0.1'),
      port: settings.port ?? (fromUri?.port ? Number(fromUri.port) : 3306),
      user: settings.user ?? (fromUri?.username ? decodeURIComponent(fromUri.username) : 'root'),
      password: settings.password ?? (fromUri?.password ? decodeURIComponent(fromUri.password) : ''),
      database,
      connectionLimit: settings.poolSize ?? 4,
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
      decimalNumbers: false,
      jsonStrings: true,
      // mysql2 parses DOUBLE text with its own digit loop, which is not correctly rounded (9.142857551574707 comes
      // back as 9.142857551574709): the server's shortest text is parsed by Number(), which is exact.
      typeCast: exactDoubles,
      timezone: 'Z',
      charset: 'utf8mb4',
      // Without FOUND_ROWS, ON DUPLICATE KEY UPDATE reports 2 per changed row, which tells updates from inserts.
      flags: ['-FOUND_ROWS', 'LOCAL_FILES'],
    });
  }

  async init(): Promise<void> {
    this.#pool ??= createPool(this.#options);
    const [rows] = await this.#pool.query<never[]>({
      sql: 'SELECT VERSION(), @@local_infile, @@max_allowed_packet, @@lower_case_table_names',
      rowsAsArray: true,
    });
    const [version, localInfile, maxPacket, lowerCase] = (rows as unknown[][])[0] as [string, ...unknown[]];
    this.#caseInsensitiveTables = Number(lowerCase) !== 0; // 1, 2: names compared lower-cased; 0: as given
    const mysqlMajor = Number(/^(\d+)/.exec(version)?.[1] ?? 0);
    this.#mariadb = /mariadb/i.test(version);
    if (this.#mariadb) this.#binaryCollation = 'utf8mb4_nopad_bin';
    else if (mysqlMajor >= 8) this.#binaryCollation = 'utf8mb4_0900_bin';
    this.#localInfile = Number(localInfile) === 1;
    // Statements are measured in UTF-16 units; one unit is at most 3 UTF-8 bytes.
    this.#maxStatementBytes = Math.max(16 * 1024, Math.min(MAX_STATEMENT_BYTES, (Number(maxPacket) - 64 * 1024) / 3));
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  /** Whether `importBatch(..., { bulk: true })` can use `LOAD DATA LOCAL INFILE` (server `local_infile`). */
  get usesLoadData(): boolean {
    return this.#localInfile;
  }

  async #acquire(): Promise<PoolConnection> {
    if (!this.#pool) throw new DataError('NOT_INITIALIZED', '[koan] [mysql] Call init() before using the adapter.');
    const conn = await this.#pool.getConnection();
    if (!this.#ready.has(conn.connection)) {
      try {
        await conn.query(SESSION_SQL);
      } catch (e) {
        conn.release();
        throw e;
      }
      this.#ready.add(conn.connection);
    }
    return conn;
  }

  /**
   * While `signal` is live, an abort stops the statement `conn` is running when `running()` says it is ours
   * (`KILL QUERY` from a connection of its own): a query waiting on a lock stops with ER_QUERY_INTERRUPTED instead of
   * waiting on (and a closed client's query would wait on the server until `lock_wait_timeout`). The connection,
   * and its transaction, stay usable. Returns the function that stops listening and waits for a KILL already sent
   * (it lands later, on its own connection: the connection must take no other statement before).
   */
  #killOnAbort(conn: PoolConnection, signal: AbortSignal | undefined, running: () => boolean): () => Promise<void> {
    if (!signal) return async () => {};
    const { connectionLimit: _, ...options } = this.#options;
    const threadId = conn.threadId;
    let kill: Promise<unknown> | undefined;
    const onAbort = () => {
      if (!running()) return;
      kill = createConnection(options)
        .then((killer) => killer.query(`KILL QUERY ${Number(threadId)}`).finally(() => killer.end()))
        .catch(() => {}); // the query's own error (or its end) is what the export reports
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return async () => {
      signal.removeEventListener('abort', onAbort);
      await kill;
    };
  }

  async #use<T>(session: Session, fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
    if (session.conn) return fn(session.conn);
    const conn = await this.#acquire();
    try {
      return await fn(conn);
    } finally {
      conn.release();
    }
  }

  /**
   * The plan of an entity set on `conn`, from its table's native columns: read once per transaction or snapshot,
   * else per call, so a table created or altered in between is planned as it is now.
   */
  async #planOn(conn: PoolConnection, session: Session, schema: EntitySchema, set: string): Promise<TablePlan> {
    const table = physicalName(schema, set);
    let native = session.natives?.get(table);
    if (!native) {
      native = await nativeTable(conn, table);
      // A table that does not exist yet may be created later in the session: only tables found are kept.
      if (native.size) session.natives?.set(table, native);
    }
    return tablePlan(schema, set, native, this.#mariadb);
  }

  /** The table name, lower-cased where the server's `lower_case_table_names` compares names so (see `DataAdapter`). */
  locationOf(entity: EntitySchema, set: string): string {
    return this.#caseInsensitiveTables ? physicalName(entity, set).toLowerCase() : physicalName(entity, set);
  }

  async dropEntity(entity: EntitySchema, set: string): Promise<void> {
    await this.#use(POOLED, (conn) => conn.query(`DROP TABLE IF EXISTS ${quoteId(physicalName(entity, set))}`));
  }

  async ensureEntity(entity: EntitySchema, set: string): Promise<void> {
    const table = physicalName(entity, set);
    if (!entity.keyless) keySpec(entity);
    const keys = keyFieldsOf(entity);
    for (const name of keys) {
      const type = entity.fields[name]?.type;
      if (type === undefined || type === 'json' || type === 'vector')
        throw new DataError(
          'INVALID_KEY',
          `${entity.name}: key field "${name}" cannot be a key (${type ?? 'missing'})`,
        );
    }
    const lengths = keyColumnLengths(entity, keys);
    const columns = Object.entries(entity.fields).map(([name, spec]) => {
      const isKey = keys.includes(name);
      const nullable = !isKey && (spec.nullable || spec.optional);
      // The note names the field the column holds (see fieldNote): introspection reads the exact schema back.
      return `${quoteId(name)} ${columnType(spec, isKey, this.#binaryCollation, lengths.get(name))} ${nullable ? 'NULL' : 'NOT NULL'} COMMENT ${sqlEscape(fieldNote(spec))}`;
    });
    if (ambiguousFields(entity).length) columns.push(`${quoteId(ABSENT_COLUMN)} TEXT CHARACTER SET utf8mb4 NULL`);
    if (keys.length) columns.push(`PRIMARY KEY (${keys.map(quoteId).join(', ')})`);
    const comment = entity.origin === 'declared' ? ` COMMENT=${sqlEscape(ENTITY_COMMENT_PREFIX + entity.name)}` : '';
    await this.#use(POOLED, (conn) =>
      conn.query(
        `CREATE TABLE IF NOT EXISTS ${quoteId(table)} (${columns.join(', ')}) ` +
          `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${this.#binaryCollation}${comment}`,
      ),
    );
  }

  exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<DataRecord[]> {
    return this.#export(POOLED, entity, set, options);
  }

  /**
   * On MariaDB, declared entities whose every field's text can be written exactly (see `rowLinesSupported`): the
   * archive's JSON lines are written from the columns' raw text, without record objects.
   */
  jsonLinesSupported(entity: EntitySchema): boolean {
    return this.#mariadb && rowLinesSupported(entity);
  }

  exportJsonLines(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<Buffer> {
    return this.#exportLines(POOLED, entity, set, options);
  }

  /**
   * JSON lines in key order from one streaming query (the server renders while this side compresses; paging
   * would leave it idle for every page's round trip), in chunks of about `STREAM_PIECE_BYTES` of whole lines.
   * Rows are taken from the query's row events, not through an object stream: a million rows cost ~0.25 s less
   * CPU without a promise per row. At most {@link EXPORT_CHUNKS_AHEAD} chunks wait; then the connection pauses.
   * Stopping early closes a pooled connection; a snapshot's connection reads the rest, so its transaction stays
   * usable.
   */
  async *#exportLines(
    session: Session,
    entity: EntitySchema,
    set: string,
    options: ExportOptions,
  ): AsyncGenerator<Buffer> {
    if (!this.#mariadb || !rowLinesSupported(entity))
      throw new DataError(
        'UNSUPPORTED',
        `[mysql] ${entity.name}: its JSON lines cannot be written from the columns' text (MariaDB only; no DOUBLE or optional nullable fields); use exportEntity`,
        {
          details: { entity: entity.name },
        },
      );
    const { signal } = options;
    const chunks = new LineChunks(checkBatchBytes(options.batchBytes));
    throwIfAborted(signal);
    const conn = session.conn ?? (await this.#acquire());
    let plan: TablePlan;
    try {
      plan = await this.#planOn(conn, session, entity, set);
    } catch (e) {
      if (!session.conn) conn.release();
      throw e;
    }
    const lines = rowLines(
      entity,
      plan.codecs.map((c) => c.select),
      { table: plan.table, set },
    );
    const sql = `SELECT ${lines.select} FROM ${quoteId(plan.table)}${plan.orderBy}`;
    // The core (callback) connection under the promise wrapper streams rows.
    const core = conn.connection as unknown as import('mysql2').Connection;
    // Each column arrives as its text's bytes (in the connection's charset, utf8mb4), or null.
    const typeCast = (field: { buffer(): Buffer | null }) => field.buffer();
    const query = core.query({ sql, rowsAsArray: true, typeCast });
    const ready = chunks.full;
    let ended = false;
    let failure: unknown;
    let paused = false;
    let discard = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const fail = (e: unknown) => {
      failure ??= e;
      discard = true;
      notify();
    };
    query.on('result', (row: unknown) => {
      if (discard) return;
      try {
        lines.render(row as RowValues, chunks);
      } catch (e) {
        return fail(e);
      }
      if (ready.length === 0) return;
      if (ready.length >= EXPORT_CHUNKS_AHEAD && !paused) {
        paused = true;
        core.pause();
      }
      notify();
    });
    query.on('error', (e: unknown) => {
      failure ??= e;
      ended = true;
      notify();
    });
    query.on('end', () => {
      if (!discard) chunks.end();
      ended = true;
      notify();
    });
    signal?.addEventListener('abort', notify);
    const stopKill = this.#killOnAbort(conn, signal, () => !ended);
    let finished = false;
    try {
      for (;;) {
        throwIfAborted(signal);
        if (failure !== undefined) {
          if (isNoSuchTable(failure)) {
            finished = true;
            return;
          }
          throw failure;
        }
        const chunk = ready.shift();
        if (chunk) {
          if (paused && ready.length <= 1) {
            paused = false;
            core.resume();
          }
          yield chunk;
          continue;
        }
        if (ended) break;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      finished = true;
    } finally {
      signal?.removeEventListener('abort', notify);
      await stopKill();
      if (finished) {
        if (!session.conn) conn.release();
      } else if (session.conn) {
        // Read what the server still sends: the snapshot's connection must stay usable. A query that already
        // failed has nothing left to read, and its error is the one being thrown.
        discard = true;
        ready.length = 0;
        if (paused) core.resume();
        if (!ended)
          await new Promise<void>((resolve) => {
            query.once('end', () => resolve());
            query.once('error', () => resolve());
          });
      } else conn.destroy();
    }
  }

  async *#export(
    session: Session,
    entity: EntitySchema,
    set: string,
    options: ExportOptions,
  ): AsyncGenerator<DataRecord[]> {
    const batchSize = Math.max(1, Math.floor(options.batchSize ?? 1000));
    const batchBytes = checkBatchBytes(options.batchBytes);
    const exact = options.exactJson === true;
    const pages = this.#pages(session, entity, set, batchSize, batchBytes, options.signal);
    const records = async function* () {
      for await (const { plan, rows } of pages) yield rows.map((row) => plan.read(row, exact));
    };
    yield* byteBatches(records(), recordBytes, batchSize, batchBytes);
  }

  /**
   * Keyset paging in key order; the next page is fetched while the consumer handles the current one, each page sized
   * to about `pageBytes` at the size of the rows read so far (at most `pageSize` rows). A table without a primary key
   * has nothing to page by: its rows come from one streaming query, in the server's scan order.
   */
  async *#pages(
    session: Session,
    entity: EntitySchema,
    set: string,
    pageSize: number,
    pageBytes: number,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<{ plan: TablePlan; rows: unknown[][] }> {
    throwIfAborted(signal);
    const conn = session.conn ?? (await this.#acquire());
    let pending: Promise<unknown[][]> | undefined;
    let streaming = false;
    let finished = false;
    const stopKill = this.#killOnAbort(conn, signal, () => pending !== undefined || streaming);
    try {
      const plan = await this.#planOn(conn, session, entity, set);
      const base = `SELECT ${plan.selectList} FROM ${quoteId(plan.table)}`;
      if (plan.keys.length === 0) {
        streaming = true;
        for await (const rows of streamRows(conn, base, pageSize, pageBytes, !session.conn, signal))
          yield { plan, rows };
        streaming = false;
        finished = true;
        return;
      }
      const sizer = new PageSizer(pageSize, pageBytes);
      let limit = 0;
      // A composite key pages on the row constructor `(a, b) > (x, y)`, the order of ORDER BY a, b.
      const page = (last: readonly unknown[] | undefined) => {
        limit = sizer.next();
        const where = last === undefined ? '' : ` WHERE ${plan.after(last)}`;
        const sql = `${base}${where}${plan.orderBy} LIMIT ${limit}`;
        return conn.query({ sql, rowsAsArray: true }).then(([rows]) => rows as unknown as unknown[][]);
      };
      pending = page(undefined);
      while (pending) {
        const rows: unknown[][] = await pending;
        pending = undefined;
        if (rows.length === 0) break;
        sizer.seen(
          rows.length,
          rows.reduce((n: number, row) => n + rowBytes(row), 0),
        );
        if (rows.length === limit) pending = page(rows[rows.length - 1]!);
        throwIfAborted(signal);
        yield { plan, rows };
      }
      finished = true;
    } catch (e) {
      if (isNoSuchTable(e)) {
        finished = true;
        return;
      }
      throw abortedOr(e, signal);
    } finally {
      // A page still in flight must finish before the connection is reused.
      await pending?.catch(() => undefined);
      await stopKill();
      // A stream stopped early cannot be cut short: its pooled connection is closed instead of given back.
      if (!session.conn) {
        if (streaming && !finished) conn.destroy();
        else conn.release();
      }
    }
  }

  count(entity: EntitySchema, set: string): Promise<number> {
    return this.#count(POOLED, entity, set);
  }

  /** See `DataAdapter.estimateCount`: `information_schema.TABLES.TABLE_ROWS` (InnoDB's sampled estimate). */
  async estimateCount(entity: EntitySchema, set: string): Promise<number | undefined> {
    const table = physicalName(entity, set);
    return this.#use(POOLED, async (conn) => {
      const [rows] = await conn.query({
        sql: 'SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
        values: [table],
        rowsAsArray: true,
      });
      const row = (rows as unknown as unknown[][])[0];
      if (!row) return 0;
      return row[0] === null || row[0] === undefined ? undefined : Number(row[0]);
    });
  }

  /** See `DataAdapter.hasRecords`: the first row of the clustered index instead of a count (a full scan on InnoDB). */
  async hasRecords(entity: EntitySchema, set: string): Promise<boolean> {
    const table = physicalName(entity, set);
    return this.#use(POOLED, async (conn) => {
      try {
        const [rows] = await conn.query({ sql: `SELECT 1 FROM ${quoteId(table)} LIMIT 1`, rowsAsArray: true });
        return (rows as unknown as unknown[][]).length > 0;
      } catch (e) {
        if (isNoSuchTable(e)) return false;
        throw e;
      }
    });
  }

  async #count(session: Session, entity: EntitySchema, set: string): Promise<number> {
    const table = physicalName(entity, set);
    return this.#use(session, async (conn) => {
      try {
        const [rows] = await conn.query({ sql: `SELECT COUNT(*) FROM ${quoteId(table)}`, rowsAsArray: true });
        return Number((rows as unknown as unknown[][])[0]![0]);
      } catch (e) {
        if (isNoSuchTable(e)) return 0;
        throw e;
      }
    });
  }

  importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    return this.#import(POOLED, entity, set, records, options);
  }

  /** Imports of lines take the LOAD DATA fast path for entities without optional nullable fields (their absence needs the record form). */
  #linesLoadable(entity: EntitySchema): boolean {
    return ambiguousFields(entity).length === 0;
  }

  /**
   * Restore fast path: in `insert` mode with `bulk` (and `local_infile`), archive lines become `LOAD DATA` text
   * without record objects (`lineTranscoder`); otherwise the decoded records go through `importBatch`.
   */
  importJsonLines(
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    return this.#importLines(POOLED, entity, set, lines, options);
  }

  /**
   * Every batch of an entity in one `LOAD DATA` (insert mode, bulk, `local_infile`), so the server loads while the
   * next lines are converted; otherwise batch by batch. A row the server refuses fails the call with `details.line`
   * (0-based line of the stream) when MySQL names the row.
   */
  importJsonLineStream(
    entity: EntitySchema,
    set: string,
    batches: AsyncIterable<readonly string[]>,
    options: ImportOptions,
  ): Promise<ImportResult> {
    return this.#importLineStream(POOLED, entity, set, batches, options);
  }

  #streams(entity: EntitySchema, options: ImportOptions): boolean {
    return options.bulk === true && this.#localInfile && options.mode === 'insert' && this.#linesLoadable(entity);
  }

  async #importLines(
    session: Session,
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    if (lines.length === 0) return { inserted: 0, updated: 0 };
    if (this.#streams(entity, options))
      return this.#importLineStream(
        session,
        entity,
        set,
        (async function* () {
          yield lines;
        })(),
        options,
      );
    return this.#import(session, entity, set, decodeArchiveLines(entity, lines, options.json ?? 'text'), options);
  }

  async #importLineStream(
    session: Session,
    entity: EntitySchema,
    set: string,
    batches: AsyncIterable<readonly string[]>,
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    if (!this.#streams(entity, options))
      return importEachBatch(batches, (lines) => this.#importLines(session, entity, set, lines, options));
    session.state?.written.set(physicalName(entity, set), { entity, set });
    const json = options.json ?? 'text';
    const { signal } = options;
    let count = 0;
    const inTransaction = session.conn !== undefined;
    try {
      return await this.#use(session, async (conn) => {
        const plan = await this.#planOn(conn, session, entity, set);
        const transcoder = lineTranscoder(entity, plan.target, json);
        // A line that fails (a value the table cannot hold, a malformed line, an abort) ends the data the server
        // reads, and fails the call once the LOAD is over: erroring the file stream itself would leave mysql2's
        // listeners on the connection's socket (it only removes them when a LOAD ends well).
        let failure: unknown;
        const body = async function* () {
          try {
            for await (const lines of batches) {
              throwIfAborted(signal);
              // A value the table cannot hold: named with its record's key, from the line.
              const refusal = (e: unknown, part: readonly string[], first: number) =>
                refusalOfLine(e, entity, part, first, json);
              for (const piece of transcodedPieces(transcoder, lines, count, refusal)) yield Buffer.from(piece);
              count += lines.length;
            }
          } catch (e) {
            failure = e;
          }
        };
        return this.#atomic(conn, inTransaction, async () => {
          // A stream that fails midway ends the LOAD with the rows sent so far, and a refused row is a warning:
          // inside a caller's transaction a savepoint takes them back, so nothing of the call stays.
          if (inTransaction) await conn.query('SAVEPOINT koan_lines');
          try {
            const r = await this.#load(
              conn,
              entity,
              set,
              plan,
              plan.table,
              () => Readable.from(body()),
              () => count,
            );
            if (failure !== undefined) throw failure;
            if (inTransaction) await conn.query('RELEASE SAVEPOINT koan_lines');
            return r;
          } catch (e) {
            if (inTransaction) await conn.query('ROLLBACK TO SAVEPOINT koan_lines').catch(() => undefined);
            throw failure ?? e;
          }
        });
      });
    } catch (e) {
      if ((e as { errno?: number }).errno !== ER_NO_REFERENCED_ROW) throw e;
      throw await this.#missingParent(session, entity, set, [], e as Error);
    }
  }

  async #import(
    session: Session,
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    if (records.length === 0) return { inserted: 0, updated: 0 };
    session.state?.written.set(physicalName(entity, set), { entity, set });
    try {
      return await this.#importRows(session, entity, set, records, options);
    } catch (e) {
      if ((e as { errno?: number }).errno !== ER_NO_REFERENCED_ROW) throw e;
      throw await this.#missingParent(session, entity, set, records, e as Error);
    }
  }

  /** Names the record of a batch whose parent row is missing, from MySQL's error 1452 (which names the constraint only). */
  async #missingParent(
    session: Session,
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    e: Error,
  ): Promise<DataError> {
    const m = /CONSTRAINT `((?:[^`]|``)+)` FOREIGN KEY \((.+?)\) REFERENCES `((?:[^`]|``)+)` \((.+?)\)/.exec(e.message);
    if (!m)
      return new DataError('FOREIGN_KEY_VIOLATION', `[mysql] ${entity.name}: ${e.message}`, {
        cause: e,
        details: { entity: entity.name, set },
      });
    const names = (list: string) => [...list.matchAll(/`((?:[^`]|``)+)`/g)].map((x) => x[1]!.replaceAll('``', '`'));
    const fk = {
      constraint: m[1]!.replaceAll('``', '`'),
      columns: names(m[2]!),
      parent: m[3]!.replaceAll('``', '`'),
      parentColumns: names(m[4]!),
    };
    const candidates = records.filter((r) => fk.columns.every((c) => r[c] !== null && r[c] !== undefined));
    const found = new Set<string>();
    const tuple = (values: unknown[]) => JSON.stringify(values.map(String));
    await this.#use(session, async (conn) => {
      for (let i = 0; i < candidates.length; i += KEYS_PER_STATEMENT) {
        const chunk = candidates.slice(i, i + KEYS_PER_STATEMENT).map((r) => fk.columns.map((c) => r[c]));
        const [rows] = await conn.query({
          sql: `SELECT ${fk.parentColumns.map(quoteId).join(', ')} FROM ${quoteId(fk.parent)} WHERE (${fk.parentColumns.map(quoteId).join(', ')}) IN (?)`,
          values: [chunk],
          rowsAsArray: true,
        });
        for (const row of rows as unknown as unknown[][]) found.add(tuple(row));
      }
    });
    const record = candidates.find((r) => !found.has(tuple(fk.columns.map((c) => r[c]))));
    const values = record ? fk.columns.map((c) => JSON.stringify(record[c])).join(', ') : '?';
    return foreignKeyViolation(entity.name, set, record ? describeKey(entity, record) : undefined, fk, values, e);
  }

  async #importRows(
    session: Session,
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    // A table without a primary key has nothing an upsert could match: its rows are inserted (the restore engine
    // refuses a merge into such a table that holds rows, before writing).
    const upsert = options.mode === 'upsert' && !entity.keyless;
    return this.#use(session, async (conn) => {
      const plan = await this.#planOn(conn, session, entity, set);
      plan.assertStorable(records, (r) => describeKey(entity, r));
      if (options.bulk && this.#localInfile)
        return this.#atomic(conn, session.conn !== undefined, () =>
          upsert
            ? this.#loadUpsert(conn, entity, set, plan, records)
            : this.#loadData(conn, entity, set, plan, plan.table, records),
        );
      const statements = this.#insertStatements(plan, records, upsert);
      return this.#atomic(conn, session.conn !== undefined || statements.length === 1, async () => {
        let inserted = 0;
        let updated = 0;
        for (const { sql, rows } of statements) {
          throwIfAborted(options.signal);
          let header: ResultSetHeader;
          try {
            [header] = await conn.query<ResultSetHeader>(sql);
          } catch (e) {
            if ((e as { errno?: number }).errno === ER_DUP_ENTRY)
              throw duplicateKeyError(entity, set, (e as Error).message, e);
            throw e;
          }
          // Per row: 1 inserted, 2 changed, 0 unchanged; `Duplicates` in info counts changed rows.
          const changed = Number(
            /Duplicates: (\d+)/.exec(header.info ?? '')?.[1] ?? (header.affectedRows === 2 ? 1 : 0),
          );
          const ins = header.affectedRows - 2 * changed;
          inserted += ins;
          updated += rows - ins;
        }
        return { inserted, updated };
      });
    });
  }

  /** Runs `fn` in a transaction on `conn` unless the caller already holds one (or one statement is atomic anyway). */
  async #atomic<T>(conn: PoolConnection, already: boolean, fn: () => Promise<T>): Promise<T> {
    if (already) return fn();
    await conn.query('START TRANSACTION');
    try {
      const out = await fn();
      await conn.query('COMMIT');
      return out;
    } catch (e) {
      await conn.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  #insertStatements(plan: TablePlan, records: readonly DataRecord[], upsert: boolean): { sql: string; rows: number }[] {
    const head = `INSERT INTO ${quoteId(plan.table)} (${plan.insertColumnList}) VALUES `;
    const tail = upsert ? ` ${plan.upsertClause}` : '';
    const out: { sql: string; rows: number }[] = [];
    let parts: string[] = [];
    let bytes = head.length + tail.length;
    for (const record of records) {
      const tuple = plan.tuple(record);
      if (parts.length > 0 && bytes + tuple.length + 1 > this.#maxStatementBytes) {
        out.push({ sql: head + parts.join(',') + tail, rows: parts.length });
        parts = [];
        bytes = head.length + tail.length;
      }
      parts.push(tuple);
      bytes += tuple.length + 1;
    }
    if (parts.length) out.push({ sql: head + parts.join(',') + tail, rows: parts.length });
    return out;
  }

  /** Bulk upsert: LOAD DATA into a temporary copy, then one INSERT ... SELECT ... ON DUPLICATE KEY UPDATE. */
  async #loadUpsert(
    conn: PoolConnection,
    entity: EntitySchema,
    set: string,
    plan: TablePlan,
    records: readonly DataRecord[],
  ): Promise<ImportResult> {
    const stage = quoteId(`koan_stage_${plan.table}`.slice(0, 64));
    await conn.query(`CREATE TEMPORARY TABLE IF NOT EXISTS ${stage} LIKE ${quoteId(plan.table)}`);
    try {
      await conn.query(`DELETE FROM ${stage}`);
      // REPLACE into the stage: a key repeated within the batch keeps its last record, as row-by-row upserts would.
      await this.#loadData(conn, entity, set, plan, `koan_stage_${plan.table}`.slice(0, 64), records, true);
      const [header] = await conn.query<ResultSetHeader>(
        `INSERT INTO ${quoteId(plan.table)} (${plan.insertColumnList}) SELECT ${plan.insertColumnList} FROM ${stage} ${plan.upsertClause}`,
      );
      const changed = Number(/Duplicates: (\d+)/.exec(header.info ?? '')?.[1] ?? 0);
      const inserted = header.affectedRows - 2 * changed;
      return { inserted, updated: records.length - inserted };
    } finally {
      await conn.query(`DROP TEMPORARY TABLE IF EXISTS ${stage}`).catch(() => undefined);
    }
  }

  async #loadData(
    conn: PoolConnection,
    entity: EntitySchema,
    set: string,
    plan: TablePlan,
    into: string,
    records: readonly DataRecord[],
    replace = false,
  ): Promise<ImportResult> {
    function* chunks(): Generator<Buffer> {
      let text = '';
      for (const record of records) {
        text += `${plan.tsvRow(record, absentTsv)}\n`;
        if (text.length >= 256 * 1024) {
          yield Buffer.from(text);
          text = '';
        }
      }
      if (text) yield Buffer.from(text);
    }
    return this.#load(
      conn,
      entity,
      set,
      plan,
      into,
      () => Readable.from(chunks()),
      () => records.length,
      replace,
    );
  }

  /** One `LOAD DATA LOCAL INFILE` of the rows `source` streams; `expected` is their number once it has ended. */
  async #load(
    conn: PoolConnection,
    entity: EntitySchema,
    set: string,
    plan: TablePlan,
    into: string,
    source: () => Readable,
    expected: () => number,
    replace = false,
  ): Promise<ImportResult> {
    // Binary values travel as hex and BIT values as digits, each through a variable and a SET; a generated
    // column's value goes to a variable that nothing reads.
    const sql =
      `LOAD DATA LOCAL INFILE 'koan-batch' ${replace ? 'REPLACE ' : ''}INTO TABLE ${quoteId(into)} CHARACTER SET utf8mb4 ` +
      `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${plan.loadColumns})` +
      (plan.loadSets ? ` SET ${plan.loadSets}` : '');
    const [header] = await conn.query<ResultSetHeader>({ sql, infileStreamFactory: source });
    const rows = expected();
    // With LOCAL, duplicate keys and bad values are warnings, not errors: turn them back into errors.
    if (header.warningStatus > 0 || (!replace && header.affectedRows !== rows)) {
      const [warnings] = await conn.query<never[]>({ sql: 'SHOW WARNINGS LIMIT 1', rowsAsArray: true });
      const first = (warnings as unknown as unknown[][])[0];
      const message = String(first?.[2] ?? `${rows - header.affectedRows} rows were skipped`);
      if (Number(first?.[1]) === ER_DUP_ENTRY || !first) throw duplicateKeyError(entity, set, message);
      const row = /\bat row (\d+)/.exec(message)?.[1];
      throw new DataError('INVALID_VALUE', `${entity.name}: bulk load rejected a value: ${message}`, {
        details: { entity: entity.name, set, ...(row ? { line: Number(row) - 1 } : {}) },
      });
    }
    return { inserted: header.affectedRows, updated: 0 };
  }

  clear(entity: EntitySchema, set: string): Promise<number> {
    return this.#clear(POOLED, entity, set);
  }

  async #clear(session: Session, entity: EntitySchema, set: string): Promise<number> {
    const table = physicalName(entity, set);
    session.state?.written.set(table, { entity, set });
    return this.#use(session, async (conn) => {
      try {
        const [header] = await conn.query<ResultSetHeader>(`DELETE FROM ${quoteId(table)}`);
        return header.affectedRows;
      } catch (e) {
        if (isNoSuchTable(e)) return 0;
        throw e;
      }
    });
  }

  remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    return this.#remove(POOLED, entity, set, keys);
  }

  async #remove(session: Session, entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    if (keys.length === 0) return 0;
    assertKeyed(entity);
    return this.#use(session, async (conn) => {
      let removed = 0;
      try {
        const plan = await this.#planOn(conn, session, entity, set);
        for (let i = 0; i < keys.length; i += KEYS_PER_STATEMENT) {
          const list = keys.slice(i, i + KEYS_PER_STATEMENT).map((k) => plan.keyLiteral(k));
          const [header] = await conn.query<ResultSetHeader>(
            `DELETE FROM ${quoteId(plan.table)} WHERE ${quoteId(plan.key)} IN (${list.join(', ')})`,
          );
          removed += header.affectedRows;
        }
      } catch (e) {
        if (isNoSuchTable(e)) return 0;
        throw e;
      }
      return removed;
    });
  }

  async get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined> {
    return (await this.getMany(entity, set, [key]))[0];
  }

  async getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]> {
    if (keys.length === 0) return [];
    assertKeyed(entity);
    const keyType = keySpec(entity).type;
    const norm = (k: unknown) => (keyType === 'uuid' ? String(k).toLowerCase() : String(k));
    const found = new Map<string, DataRecord>();
    await this.#use(POOLED, async (conn) => {
      try {
        const plan = await this.#planOn(conn, POOLED, entity, set);
        for (let i = 0; i < keys.length; i += KEYS_PER_STATEMENT) {
          const list = keys.slice(i, i + KEYS_PER_STATEMENT).map((k) => plan.keyLiteral(k));
          const [rows] = await conn.query({
            sql: `SELECT ${plan.selectList} FROM ${quoteId(plan.table)} WHERE ${quoteId(plan.key)} IN (${list.join(', ')})`,
            rowsAsArray: true,
          });
          for (const row of rows as unknown as unknown[][]) {
            const record = plan.read(row, false);
            found.set(norm(record[plan.key]), record);
          }
        }
      } catch (e) {
        if (!isNoSuchTable(e)) throw e;
      }
    });
    return keys.flatMap((k) => {
      const r = found.get(norm(k));
      return r ? [r] : [];
    });
  }

  /** See `DataAdapter.countExisting`: by the whole key, with the key columns' own equality (collation). */
  async countExisting(entity: EntitySchema, set: string, records: readonly DataRecord[]): Promise<number> {
    if (entity.keyless || records.length === 0) return 0;
    return this.#use(POOLED, async (conn) => {
      let n = 0;
      try {
        const plan = await this.#planOn(conn, POOLED, entity, set);
        for (const sql of plan.countKeysSql(records, KEYS_PER_STATEMENT))
          n += Number(((await conn.query({ sql, rowsAsArray: true }))[0] as unknown as unknown[][])[0]![0]);
      } catch (e) {
        if (!isNoSuchTable(e)) throw e;
      }
      return n;
    });
  }

  async listSets(entity: EntitySchema): Promise<string[]> {
    const base = entity.table ?? entity.name;
    const rows = await this.#use(POOLED, async (conn) => {
      const [r] = await conn.query({
        sql: 'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND (TABLE_NAME = ? OR LEFT(TABLE_NAME, ?) = ?)',
        values: [base, base.length + 1, `${base}#`],
        rowsAsArray: true,
      });
      return r as unknown as string[][];
    });
    const sets = rows.flatMap(([name]) => {
      const s = setFromPhysicalName(entity, String(name));
      return s === undefined ? [] : [s];
    });
    return sets.sort((a, b) => (a === ROOT_SET ? -1 : b === ROOT_SET ? 1 : a < b ? -1 : a > b ? 1 : 0));
  }

  describe(entity: EntitySchema, set: string): Promise<StoreDescription> {
    return this.#use(POOLED, (conn) => describeTable(conn, physicalName(entity, set)));
  }

  /** The tables as entities, with the tables it had to leave out and why, and the views (see `DataAdapter.introspect`). */
  async introspect(): Promise<IntrospectionResult> {
    const { schemas, skipped, notData } = await this.#use(POOLED, (conn) => introspectDatabase(conn, this.#source));
    return { entities: schemas, skipped, notData };
  }

  async readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: Consistency }) => Promise<T>): Promise<T> {
    const conn = await this.#acquire();
    const session: Session = { conn, natives: new Map() };
    try {
      await conn.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const reader = {
        consistency: 'snapshot' as const,
        exportEntity: (entity: EntitySchema, set: string, options: ExportOptions = {}) =>
          this.#export(session, entity, set, options),
        exportJsonLines: (entity: EntitySchema, set: string, options: ExportOptions = {}) =>
          this.#exportLines(session, entity, set, options),
        jsonLinesSupported: (entity: EntitySchema) => this.jsonLinesSupported(entity),
        count: (entity: EntitySchema, set: string) => this.#count(session, entity, set),
      };
      const out = await fn(reader);
      await conn.query('COMMIT');
      return out;
    } catch (e) {
      await conn.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      conn.release();
    }
  }

  /** See `DataAdapter.transaction`: an abort of `options.signal` stops the statement in flight (`KILL QUERY`). */
  async transaction<T>(fn: (writer: DataWriter) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const conn = await this.#acquire();
    const state = { deferred: false, written: new Map<string, { entity: EntitySchema; set: string }>() };
    const session: Session = { conn, state, natives: new Map() };
    let broken = false;
    let inFn = true; // COMMIT and ROLLBACK are not stopped
    const stopKill = this.#killOnAbort(conn, options.signal, () => inFn);
    try {
      await conn.query('START TRANSACTION');
      const writer: DataWriter = {
        importBatch: (entity, set, records, options) => this.#import(session, entity, set, records, options),
        importJsonLines: (entity, set, lines, options) => this.#importLines(session, entity, set, lines, options),
        importJsonLineStream: (entity, set, batches, options) =>
          this.#importLineStream(session, entity, set, batches, options),
        jsonLinesSupported: (entity) => this.#linesLoadable(entity),
        clear: (entity, set) => this.#clear(session, entity, set),
        remove: (entity, set, keys) => this.#remove(session, entity, set, keys),
        // InnoDB checks foreign keys row by row and cannot defer them: checks are switched off for this
        // connection and the tables written are checked explicitly before COMMIT.
        deferConstraints: async () => {
          await conn.query('SET SESSION foreign_key_checks = 0');
          state.deferred = true;
        },
      };
      this.#writerConnections.set(writer, conn);
      const out = await fn(writer);
      if (state.deferred) await this.#checkForeignKeys(conn, state.written);
      inFn = false;
      await conn.query('COMMIT');
      return out;
    } catch (e) {
      inFn = false;
      await stopKill();
      await conn.query('ROLLBACK').catch(() => undefined);
      throw abortedOr(e, options.signal);
    } finally {
      await stopKill();
      if (state.deferred)
        await conn.query('SET SESSION foreign_key_checks = 1').catch(() => {
          broken = true;
        });
      // A connection whose checks could not be switched back on must not go back to the pool.
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  /**
   * Every foreign key from or to a written table, checked with an anti-join: the first row whose parent is
   * missing fails the transaction, named by entity (or table), key and constraint.
   */
  async #checkForeignKeys(
    conn: PoolConnection,
    written: ReadonlyMap<string, { entity: EntitySchema; set: string }>,
  ): Promise<void> {
    if (written.size === 0) return;
    const tables = [...written.keys()];
    const [usage] = await conn.query({
      sql:
        'SELECT CONSTRAINT_NAME, TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE ' +
        'WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL AND (TABLE_NAME IN (?) OR REFERENCED_TABLE_NAME IN (?)) ' +
        'ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION',
      values: [tables, tables],
      rowsAsArray: true,
    });
    const fks = new Map<string, ForeignKeyRow>();
    for (const [constraint, table, column, parent, parentColumn] of usage as unknown as string[][]) {
      const id = `${table}\0${constraint}`;
      const fk = fks.get(id) ?? {
        constraint: constraint!,
        table: table!,
        columns: [],
        parent: parent!,
        parentColumns: [],
      };
      fk.columns.push(column!);
      fk.parentColumns.push(parentColumn!);
      fks.set(id, fk);
    }
    for (const fk of fks.values()) {
      const target = written.get(fk.table);
      const keys = target ? keyFieldsOf(target.entity) : [];
      const child = (c: string) => `c.${quoteId(c)}`;
      const [rows] = await conn.query({
        sql:
          `SELECT ${[...keys, ...fk.columns].map(child).join(', ')} FROM ${quoteId(fk.table)} c ` +
          `WHERE ${fk.columns.map((c) => `${child(c)} IS NOT NULL`).join(' AND ')} AND NOT EXISTS (SELECT 1 FROM ${quoteId(fk.parent)} p ` +
          `WHERE ${fk.parentColumns.map((pc, i) => `p.${quoteId(pc)} = ${child(fk.columns[i]!)}`).join(' AND ')}) LIMIT 1`,
        rowsAsArray: true,
      });
      const row = (rows as unknown as unknown[][])[0];
      if (!row) continue;
      const values = row
        .slice(keys.length)
        .map((v) => JSON.stringify(v))
        .join(', ');
      const key = target ? describeKey(target.entity, Object.fromEntries(keys.map((k, i) => [k, row[i]]))) : undefined;
      throw foreignKeyViolation(target?.entity.name ?? fk.table, target?.set ?? 'root', key, fk, values);
    }
  }
}

/** Parses DOUBLE and FLOAT columns with `Number()` (correctly rounded); every other type the usual way. */
function exactDoubles(field: { type: string; string(): string | null }, next: () => unknown): unknown {
  if (field.type !== 'DOUBLE' && field.type !== 'FLOAT') return next();
  const text = field.string();
  return text === null ? null : Number(text);
}

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DataRecord, KeyValue } from '@koan/data';
import { DataError, type EntitySchema } from '@koan/data';
import type { DataReader, DataWriter, ExportOptions, ImportOptions, ImportResult } from '@koan/data/adapter-kit';
import {
  abortedOr,
  checkBatchBytes,
  decodeArchiveLines,
  describeKey,
  importEachBatch,
  keyFieldsOf,
  keySpec,
  linePieces,
  lineTranscoder,
  pagedRecords,
  physicalName,
  STREAM_PIECE_BYTES,
  throwIfAborted,
  transcodedPieces,
} from '@koan/data/adapter-kit';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { archiveLinesToCopy, COPY_TARGET } from './copy-lines.js';
import { only, type Relation, relationOf } from './postgres-catalog.js';
import {
  cancelOnAbort,
  isConnectionError,
  isUndefinedTable,
  mapWriteError,
  recordsOrNone,
  withCopyLine,
} from './session-errors.js';
import {
  ABSENT,
  absentOf,
  assertMergeable,
  assertWritable,
  checkBatchSize,
  conflictClause,
  copyText,
  drain,
  lastPerKey,
  orderBy,
  paramOf,
  shapeOf,
  toRecord,
  type WritePlan,
  writePlanOf,
} from './session-rows.js';
import { jsonExpression, keyArrayExpression, lit, q, toParam } from './type-mapping.js';

/** A key as a query parameter: binary keys are given as their base64 text. */
const keyParam = (spec: { type: string }, k: KeyValue) =>
  spec.type === 'binary' ? String(k) : toParam(spec as never, k);

export { cancelOnAbort } from './session-errors.js';
export { ABSENT } from './session-rows.js';

/** A connection lent to one operation. */
export interface Lease {
  readonly client: pg.ClientBase;
  /** A transaction is already open on it (a `transaction()`, or a snapshot worker): do not begin or end one. */
  readonly inTransaction: boolean;
  /** Other operations use this client too (the client of `transaction()`): it must stay usable, never destroyed. */
  readonly shared: boolean;
  /** Returns the connection; `destroy` closes it instead (a stream stopped midway). */
  release(destroy?: boolean): Promise<void>;
}

/** Where operations get connections: the pool, a transaction's client, or snapshot workers. */
export interface ClientSource {
  readonly schema: string;
  acquire(): Promise<Lease>;
}

const MAX_PARAMS = 65_535;
const MAX_ROWS_PER_INSERT = 5_000;
let sequence = 0;

/** Reads and writes against a {@link ClientSource}; the adapter, its transactions and snapshots share this code. */
export class PostgresSession implements DataReader, DataWriter {
  protected readonly source: ClientSource;
  /**
   * Relations already looked up, by qualified name, in sessions that live for one transaction or snapshot (their
   * tables do not change shape meanwhile); undefined in the adapter's own session, which looks each time.
   */
  protected readonly relations: Map<string, Relation | undefined> | undefined;

  constructor(source: ClientSource, cacheRelations = false) {
    this.source = source;
    this.relations = cacheRelations ? new Map() : undefined;
  }

  /** The PostgreSQL schema of an entity's table: its namespace, else the source's schema. */
  protected schemaOf(entity: EntitySchema): string {
    return entity.namespace ?? this.source.schema;
  }

  protected table(entity: EntitySchema, set: string): string {
    return `${q(this.schemaOf(entity))}.${q(physicalName(entity, set))}`;
  }

  /** The catalog's description of the entity set's table (undefined when it does not exist). */
  protected async relation(client: pg.ClientBase, entity: EntitySchema, set: string): Promise<Relation | undefined> {
    const key = this.table(entity, set);
    if (this.relations?.has(key)) return this.relations.get(key);
    const relation = await relationOf(client, this.schemaOf(entity), physicalName(entity, set));
    // A missing table may be created later in the same transaction: only found ones are kept.
    if (relation) this.relations?.set(key, relation);
    return relation;
  }

  async *exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<DataRecord[]> {
    const batchSize = checkBatchSize(options.batchSize ?? 1000);
    const batchBytes = checkBatchBytes(options.batchBytes);
    const { signal } = options;
    throwIfAborted(signal);
    const shape = shapeOf(entity);
    const cursor = `koan_export_${++sequence}`;
    const lease = await this.source.acquire();
    const { client } = lease;
    let declared = false;
    let ok = false;
    let broken = false;
    const stopCancel = cancelOnAbort(client, signal);
    try {
      if (!lease.inTransaction) await client.query('BEGIN READ ONLY');
      const relation = await this.relation(client, entity, set);
      if (!relation) {
        ok = true;
        return;
      }
      const select = `SELECT ${shape.select} FROM ${only(relation)}${this.table(entity, set)} ORDER BY ${orderBy(entity, relation, this.table(entity, set))}`;
      await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${select}`);
      declared = true;
      // Each FETCH asks for the rows that fill what is left of the batch's byte budget (1,000 rows of 100 KB are 100 MB).
      const fetch = async (n: number) =>
        (await client.query<unknown[]>({ text: `FETCH ${n} FROM ${cursor}`, rowMode: 'array' })).rows;
      const record = (row: unknown[]) => toRecord(shape.fields, row, options.exactJson);
      yield* pagedRecords(fetch, record, batchSize, batchBytes, signal);
      ok = true;
    } catch (e) {
      throw abortedOr(e, signal);
    } finally {
      stopCancel();
      try {
        if (!lease.inTransaction) await client.query(ok ? 'COMMIT' : 'ROLLBACK');
        else if (declared) await client.query(`CLOSE ${cursor}`);
      } catch {
        broken = !lease.shared;
      }
      await lease.release(broken);
    }
  }

  /**
   * The set as archive JSON Lines (line format 2) built by the server (`COPY (SELECT ...) TO STDOUT`), in the order
   * of `exportEntity`, with the same values. Each chunk holds whole lines. See `DataReader.exportJsonLines`.
   */
  async *exportJsonLines(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<Buffer> {
    const { signal } = options;
    const piece = Math.min(STREAM_PIECE_BYTES, checkBatchBytes(options.batchBytes));
    throwIfAborted(signal);
    const { fields, tracked } = shapeOf(entity);
    const parts = fields.map(([name, spec]) => {
      const value = jsonExpression(name, spec);
      const head = lit(`${JSON.stringify(name)}:`);
      if (spec.optional && !spec.nullable) return `${head} || ${value}`;
      if (tracked.includes(name))
        return `CASE WHEN ${q(name)} IS NULL AND ${lit(name)} = ANY(${q(ABSENT)}) THEN NULL ELSE ${head} || COALESCE(${value}, 'null') END`;
      return `${head} || COALESCE(${value}, 'null')`;
    });
    const lease = await this.source.acquire();
    const { client } = lease;
    let stream: copyStreams.CopyToStreamQuery | undefined;
    let finished = false;
    let broken = false;
    const stopCancel = cancelOnAbort(client, signal);
    try {
      const relation = await this.relation(client, entity, set);
      if (!relation) {
        finished = true;
        return;
      }
      // concat_ws skips NULL parts: an optional non-nullable column that is NULL is a missing field.
      const select = `SELECT '{' || concat_ws(',', ${parts.join(', ')}) || '}' FROM ${only(relation)}${this.table(entity, set)} ORDER BY ${orderBy(entity, relation, this.table(entity, set))}`;
      // CSV with control-character quote and delimiter: JSON text never contains them raw, so lines pass unescaped.
      const copy = `COPY (${select}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`;
      stream = client.query(copyStreams.to(copy));
      // COPY messages may arrive split across chunks: hand on whole lines only.
      yield* linePieces(stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>, piece, signal);
      finished = true;
    } catch (e) {
      throw abortedOr(e, signal);
    } finally {
      stopCancel();
      // A COPY cannot be stopped midway without ending the session: a pooled connection is closed,
      // a shared one reads the rest of the output so it stays usable.
      if (!finished && stream) {
        if (lease.shared) broken = !(await drain(stream));
        else {
          stream.on('error', () => {}); // the connection is closed below; its COPY ends with an error nobody awaits
          broken = true;
        }
      }
      await lease.release(broken && !lease.shared);
    }
  }

  async count(entity: EntitySchema, set: string): Promise<number> {
    const rows = await this.#read<{ n: string }>(
      entity,
      set,
      (relation) => `SELECT count(*) AS n FROM ${only(relation)}${this.table(entity, set)}`,
    );
    return rows ? Number(rows[0]?.n ?? 0) : 0;
  }

  /** See `DataAdapter.hasRecords`: one index or heap probe instead of a count. */
  async hasRecords(entity: EntitySchema, set: string): Promise<boolean> {
    const rows = await this.#read<{ e: boolean }>(
      entity,
      set,
      (relation) => `SELECT EXISTS (SELECT 1 FROM ${only(relation)}${this.table(entity, set)}) AS e`,
    );
    return rows?.[0]?.e === true;
  }

  async get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined> {
    return (await this.getMany(entity, set, [key]))[0];
  }

  /** The records of `keys` in their order, matched by the server's own equality of the key's type. */
  async getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]> {
    if (keys.length === 0) return [];
    const spec = keySpec(entity);
    const { fields, select } = shapeOf(entity);
    const rows = await this.#read<unknown[]>(
      entity,
      set,
      () =>
        `SELECT ${select} FROM unnest(${keyArrayExpression(spec, '$1')}) WITH ORDINALITY AS koan_k(koan_key, koan_ord) ` +
        `JOIN ${this.table(entity, set)} ON ${q(entity.key)} = koan_k.koan_key ORDER BY koan_k.koan_ord`,
      [keys.map((k) => keyParam(spec, k))],
      'array',
    );
    return (rows ?? []).map((row) => toRecord(fields, row));
  }

  async importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    assertMergeable(entity, options.mode);
    if (records.length === 0) return { inserted: 0, updated: 0 };
    const rows = options.mode === 'upsert' ? lastPerKey(entity, records) : records;
    const table = this.table(entity, set);
    return this.#write(
      entity,
      set,
      async (client, plan) => {
        assertWritable(entity, plan, rows);
        if (options.bulk)
          return this.#copyImport(
            client,
            entity,
            plan,
            table,
            copyText(plan, rows, options.signal),
            rows.length,
            options,
          );
        const { shape } = plan;
        const width = shape.fields.length + (shape.tracked.length > 0 ? 1 : 0);
        const perStatement = Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMS / width));
        let inserted = 0;
        let updated = 0;
        for (let start = 0; start < rows.length; start += perStatement) {
          throwIfAborted(options.signal);
          const chunk = rows.slice(start, start + perStatement);
          const params: unknown[] = [];
          const tuples = chunk.map((record) => {
            const slots = shape.fields.map(([name, spec]) => {
              params.push(paramOf(plan, name, spec, record[name]));
              return `$${params.length}`;
            });
            if (shape.tracked.length > 0) {
              params.push(absentOf(shape, record));
              slots.push(`$${params.length}`);
            }
            return `(${slots.join(',')})`;
          });
          // OVERRIDING SYSTEM VALUE: an archived value of a GENERATED ALWAYS identity column is written as it is.
          const text = `INSERT INTO ${table} (${shape.columns}) OVERRIDING SYSTEM VALUE VALUES ${tuples.join(',')}${conflictClause(entity, shape, options.mode)}`;
          const res = await client.query<{ i: boolean }>(text, params);
          for (const row of res.rows) row.i ? inserted++ : updated++;
        }
        return { inserted, updated };
      },
      rows,
    );
  }

  /** Every entity without optional nullable fields (whose absence needs the record form). */
  jsonLinesSupported(entity: EntitySchema): boolean {
    return shapeOf(entity).tracked.length === 0;
  }

  /**
   * Restore fast path: archive lines become COPY text directly (each line parsed once, no record objects, no
   * runtime values in between), with `importBatch`'s checks and semantics: `insert` COPYs into the table, `upsert`
   * COPYs into a staging table and merges from it (the last line of a key wins). Without `bulk`, for entities
   * `jsonLinesSupported` refuses, or into a table whose columns need the record path (generated columns, array
   * columns for JSON arrays, integer columns narrower than the field), the decoded records go through `importBatch`.
   */
  async importJsonLines(
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    assertMergeable(entity, options.mode);
    if (lines.length === 0) return { inserted: 0, updated: 0 };
    const shape = shapeOf(entity);
    const json = options.json ?? 'text';
    const records = () => decodeArchiveLines(entity, lines, json);
    if (!options.bulk || shape.tracked.length > 0 || !(await this.#linesAsIs(entity, set)))
      return this.importBatch(entity, set, records(), options);
    const { text, count } = withLineKey(entity, lines, 0, () =>
      archiveLinesToCopy(entity, lines, options.mode === 'upsert', json),
    );
    return this.#write(
      entity,
      set,
      (client, plan) => this.#copyImport(client, entity, plan, this.table(entity, set), [text], count, options),
      records,
    );
  }

  /**
   * Streaming restore fast path: in `insert` mode with `bulk`, one COPY takes every batch, so the server ingests
   * while the next lines are read and converted. A bad line or a refused row fails the COPY and the
   * transaction; the error's `details.line` is the 0-based line of the stream. Otherwise batch by batch.
   */
  async importJsonLineStream(
    entity: EntitySchema,
    set: string,
    batches: AsyncIterable<readonly string[]>,
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    assertMergeable(entity, options.mode);
    const shape = shapeOf(entity);
    if (options.mode !== 'insert' || !options.bulk || shape.tracked.length > 0 || !(await this.#linesAsIs(entity, set)))
      return importEachBatch(batches, (lines) => this.importJsonLines(entity, set, lines, options));
    const table = this.table(entity, set);
    const { signal } = options;
    const json = options.json ?? 'text';
    const transcoder = lineTranscoder(entity, COPY_TARGET, json);
    let count = 0;
    const body = async function* () {
      for await (const lines of batches) {
        throwIfAborted(signal);
        yield* transcodedPieces(transcoder, lines, count, (e, part, first) =>
          withLineKey(entity, part, first, () => {
            throw e;
          }),
        );
        count += lines.length;
      }
    };
    await this.#write(entity, set, async (client) => {
      const copy = client.query(copyStreams.from(`COPY ${table} (${shape.columns}) FROM STDIN`));
      try {
        await pipeline(Readable.from(body()), copy);
      } catch (e) {
        throw withCopyLine(e, entity, set);
      }
    });
    return { inserted: count, updated: 0 };
  }

  /** Whether archive lines of the entity go to its table's COPY as they are (see {@link WritePlan.linesAsIs}). */
  async #linesAsIs(entity: EntitySchema, set: string): Promise<boolean> {
    const lease = await this.source.acquire();
    try {
      return writePlanOf(entity, await this.relation(lease.client, entity, set)).linesAsIs;
    } finally {
      await lease.release();
    }
  }

  async #copyImport(
    client: pg.ClientBase,
    entity: EntitySchema,
    plan: WritePlan,
    table: string,
    text: Iterable<string>,
    count: number,
    options: ImportOptions,
  ): Promise<ImportResult> {
    const { shape } = plan;
    const { columns } = shape;
    const upsert = options.mode === 'upsert';
    const stage = `koan_stage_${++sequence}`;
    if (upsert) await client.query(`CREATE TEMP TABLE ${stage} (LIKE ${table}) ON COMMIT DROP`);
    // COPY writes GENERATED ALWAYS identity columns as given (like OVERRIDING SYSTEM VALUE).
    const target = upsert ? stage : table;
    const copy = client.query(copyStreams.from(`COPY ${target} (${columns}) FROM STDIN`));
    await pipeline(Readable.from(text), copy);
    if (!upsert) return { inserted: count, updated: 0 };
    const res = await client.query<{ i: boolean }>(
      `INSERT INTO ${table} (${columns}) OVERRIDING SYSTEM VALUE SELECT ${columns} FROM ${stage}${conflictClause(entity, shape, 'upsert')}`,
    );
    await client.query(`DROP TABLE ${stage}`);
    let inserted = 0;
    for (const row of res.rows) if (row.i) inserted++;
    return { inserted, updated: res.rows.length - inserted };
  }

  /**
   * DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe, so a snapshot taken before it (a running backup) would see an
   * empty table. A plain table is emptied `ONLY` (its inheritance children are tables of their own).
   */
  async clear(entity: EntitySchema, set: string): Promise<number> {
    const table = this.table(entity, set);
    return this.#write(
      entity,
      set,
      async (client) =>
        (await client.query(`DELETE FROM ${only(await this.relation(client, entity, set))}${table}`)).rowCount ?? -1,
    );
  }

  async remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    if (keys.length === 0) return 0;
    const spec = keySpec(entity);
    return this.#write(entity, set, async (client) => {
      const res = await client.query(
        `DELETE FROM ${this.table(entity, set)} WHERE ${q(entity.key)} = ANY(${keyArrayExpression(spec, '$1')})`,
        [keys.map((k) => keyParam(spec, k))],
      );
      return res.rowCount ?? 0;
    });
  }

  /** A read that treats a missing table as empty (undefined). */
  async #read<R>(
    entity: EntitySchema,
    set: string,
    text: (relation: Relation | undefined) => string,
    values?: unknown[],
    rowMode?: 'array',
  ): Promise<R[] | undefined> {
    const lease = await this.source.acquire();
    let broken = false;
    try {
      // A failed statement would end a shared transaction, so a missing table is checked for first.
      const relation = await this.relation(lease.client, entity, set);
      if (!relation) return undefined;
      const res = await lease.client.query({
        text: text(relation),
        ...(values ? { values } : {}),
        ...(rowMode ? { rowMode } : {}),
      });
      return res.rows as R[];
    } catch (e) {
      if (isUndefinedTable(e)) return undefined;
      broken = !lease.shared && isConnectionError(e);
      throw e;
    } finally {
      await lease.release(broken);
    }
  }

  /**
   * Runs writes atomically: in the lease's open transaction, or in one of their own, with the write plan of the
   * table as it exists. Maps PG errors to DataErrors.
   */
  async #write<T>(
    entity: EntitySchema,
    set: string,
    fn: (client: pg.ClientBase, plan: WritePlan) => Promise<T>,
    records?: readonly DataRecord[] | (() => readonly DataRecord[]),
  ): Promise<T> {
    const lease = await this.source.acquire();
    const { client } = lease;
    let broken = false;
    try {
      const plan = writePlanOf(entity, await this.relation(client, entity, set));
      if (lease.inTransaction) return await fn(client, plan);
      await client.query('BEGIN');
      try {
        const out = await fn(client, plan);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw e;
      }
    } catch (e) {
      broken ||= !lease.shared && isConnectionError(e);
      if (e instanceof DataError) throw e;
      throw mapWriteError(e, entity, set, typeof records === 'function' ? recordsOrNone(records) : records);
    } finally {
      await lease.release(broken);
    }
  }
}

/**
 * Runs `fn` (which turns archive lines into COPY text); a refused line (`details.line`, counted from `first`) is
 * named by its record's key too, so the error says which record PostgreSQL cannot hold.
 */
function withLineKey<T>(entity: EntitySchema, lines: readonly string[], first: number, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const line = e instanceof DataError ? e.details.line : undefined;
    if (!(e instanceof DataError) || typeof line !== 'number' || e.details.key !== undefined) throw e;
    let key: string | undefined;
    try {
      const obj = JSON.parse(lines[line - first]!) as Record<string, unknown>;
      key = describeKey(entity, Object.fromEntries(keyFieldsOf(entity).map((k) => [k, obj[k]])));
    } catch {
      throw e;
    }
    throw new DataError((e as DataError).code, `${(e as Error).message} (record ${JSON.stringify(key)})`, {
      cause: e,
      details: { ...(e as DataError).details, key },
    });
  }
}

/** The writer of one `transaction()`: tracks the tables it writes, so deferred foreign keys can be checked before commit. */
export class TransactionSession extends PostgresSession {
  #deferred = false;

  constructor(source: ClientSource) {
    super(source, true);
  }

  /**
   * Runs `fn` with the transaction's own client (the structure facet's DDL, which PostgreSQL runs inside the
   * transaction: a failed restore leaves no table behind).
   */
  async withClient<T>(fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const lease = await this.source.acquire();
    try {
      return await fn(lease.client);
    } finally {
      await lease.release();
    }
  }
  readonly #written = new Map<string, { entity: EntitySchema; set: string }>();

  override async importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    await this.#touch(entity, set);
    return super.importBatch(entity, set, records, options);
  }

  override async importJsonLines(
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    await this.#touch(entity, set);
    return super.importJsonLines(entity, set, lines, options);
  }

  override async importJsonLineStream(
    entity: EntitySchema,
    set: string,
    batches: AsyncIterable<readonly string[]>,
    options: ImportOptions,
  ): Promise<ImportResult> {
    await this.#touch(entity, set);
    return super.importJsonLineStream(entity, set, batches, options);
  }

  override async clear(entity: EntitySchema, set: string): Promise<number> {
    await this.#touch(entity, set);
    return super.clear(entity, set);
  }

  /** Foreign keys made deferrable for this transaction (see {@link deferConstraints}): the statements that put them back. */
  readonly #relaxed: string[] = [];
  readonly #touched = new Set<string>();

  /**
   * Records a table written (or cleared) by the transaction; once constraints are deferred, the first time a table
   * is touched its foreign keys declared without DEFERRABLE are made `DEFERRABLE INITIALLY DEFERRED` (a DDL statement,
   * inside the transaction: a rollback undoes it), and put back before commit by {@link checkDeferred}.
   */
  async #touch(entity: EntitySchema, set: string): Promise<void> {
    const table = this.table(entity, set);
    this.#written.set(table, { entity, set });
    if (!this.#deferred || this.#touched.has(table)) return;
    this.#touched.add(table);
    const lease = await this.source.acquire();
    try {
      const res = await lease.client.query<{ name: string }>(
        `SELECT k.conname AS name FROM pg_constraint k WHERE k.conrelid = to_regclass($1) AND k.contype = 'f'
           AND NOT k.condeferrable AND k.conparentid = 0 ORDER BY 1`,
        [table],
      );
      for (const { name } of res.rows) {
        await lease.client.query(`ALTER TABLE ${table} ALTER CONSTRAINT ${q(name)} DEFERRABLE INITIALLY DEFERRED`);
        this.#relaxed.push(`ALTER TABLE ${table} ALTER CONSTRAINT ${q(name)} NOT DEFERRABLE INITIALLY IMMEDIATE`);
      }
    } finally {
      await lease.release();
    }
  }

  /**
   * `SET CONSTRAINTS ALL DEFERRED`: foreign keys are checked at commit, so rows that reference each other (a cycle, a
   * self-reference to a later row) load in any order. DEFERRABLE ones are deferred by that statement; those declared
   * without DEFERRABLE (PostgreSQL's default) are made deferrable for this transaction, table by table as it writes
   * them, and put back before commit.
   */
  async deferConstraints(): Promise<void> {
    const lease = await this.source.acquire();
    try {
      await lease.client.query('SET CONSTRAINTS ALL DEFERRED');
      this.#deferred = true;
    } finally {
      await lease.release();
    }
  }

  /**
   * Before commit, when deferred: the first row of a written table whose parent is missing, named (COMMIT would
   * report the constraint and the missing value, not the row's key); then the foreign keys made deferrable are put
   * back as they were declared (after their pending checks ran, `SET CONSTRAINTS ALL IMMEDIATE`).
   */
  async checkDeferred(
    foreignKeys: (schema: string, table: string) => Promise<readonly ForeignKeyInfo[]>,
  ): Promise<void> {
    if (!this.#deferred) return;
    const lease = await this.source.acquire();
    try {
      for (const { entity, set } of this.#written.values()) {
        const keys = keyFieldsOf(entity);
        for (const fk of await foreignKeys(this.schemaOf(entity), physicalName(entity, set))) {
          const child = (c: string) => `c.${q(c)}`;
          const parent = `${q(fk.referencesSchema ?? this.schemaOf(entity))}.${q(fk.references)}`;
          const text =
            `SELECT ${[...keys, ...fk.columns].map((c) => `${child(c)}::text`).join(', ')} FROM ${this.table(entity, set)} c ` +
            `WHERE ${fk.columns.map((c) => `${child(c)} IS NOT NULL`).join(' AND ')} AND NOT EXISTS (SELECT 1 FROM ${parent} p ` +
            `WHERE ${fk.referencedColumns.map((pc, i) => `p.${q(pc)} = ${child(fk.columns[i]!)}`).join(' AND ')}) LIMIT 1`;
          const row = (await lease.client.query<string[]>({ text, rowMode: 'array' })).rows[0];
          if (!row) continue;
          const key = describeKey(entity, Object.fromEntries(keys.map((k, i) => [k, row[i]])));
          throw new DataError(
            'FOREIGN_KEY_VIOLATION',
            `[postgres] ${entity.name} record ${JSON.stringify(key)} references ${fk.references} with ${fk.columns.join(', ')} = ${row.slice(keys.length).join(', ')}, which does not exist (constraint ${fk.name}).`,
            { details: { entity: entity.name, set, key, constraint: fk.name, references: fk.references } },
          );
        }
      }
      if (this.#relaxed.length) {
        await lease.client.query('SET CONSTRAINTS ALL IMMEDIATE');
        for (const sql of this.#relaxed.splice(0)) await lease.client.query(sql);
      }
    } finally {
      await lease.release();
    }
  }
}

export interface ForeignKeyInfo {
  readonly name: string;
  /** The referenced table's schema, when known. */
  readonly referencesSchema?: string;
  readonly columns: readonly string[];
  readonly references: string;
  readonly referencedColumns: readonly string[];
}

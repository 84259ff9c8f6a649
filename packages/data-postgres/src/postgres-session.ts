import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type {
  DataReader,
  DataRecord,
  DataWriter,
  ExportOptions,
  ImportOptions,
  ImportResult,
  KeyValue,
} from '@koan/data';
import {
  abortedOr,
  compactJsonBytes,
  DataError,
  decodeArchiveLines,
  describeKey,
  type EntitySchema,
  type FieldSpec,
  importEachBatch,
  keyFieldsOf,
  keySpec,
  lineTranscoder,
  physicalName,
  STREAM_PIECE_BYTES,
  throwIfAborted,
} from '@koan/data';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { archiveLinesToCopy, COPY_TARGET } from './copy-lines.js';
import { fromRow, jsonExpression, keyArrayType, lit, q, readExpression, toCopyText, toParam } from './type-mapping.js';

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

type Fields = readonly (readonly [string, FieldSpec])[];

/** Reads and writes against a {@link ClientSource}; the adapter, its transactions and snapshots share this code. */
export class PostgresSession implements DataReader, DataWriter {
  protected readonly source: ClientSource;

  constructor(source: ClientSource) {
    this.source = source;
  }

  protected table(entity: EntitySchema, set: string): string {
    return `${q(this.source.schema)}.${q(physicalName(entity, set))}`;
  }

  async *exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<DataRecord[]> {
    const batchSize = checkBatchSize(options.batchSize ?? 1000);
    const { signal } = options;
    throwIfAborted(signal);
    const shape = shapeOf(entity);
    const cursor = `koan_export_${++sequence}`;
    const select = `SELECT ${shape.select} FROM ${this.table(entity, set)} ORDER BY ${orderBy(entity)}`;
    const lease = await this.source.acquire();
    const { client } = lease;
    let declared = false;
    let ok = false;
    let broken = false;
    const stopCancel = cancelOnAbort(client, signal);
    try {
      if (!lease.inTransaction) await client.query('BEGIN READ ONLY');
      if (!(await tableExists(client, this.source.schema, physicalName(entity, set)))) {
        ok = true;
        return;
      }
      await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${select}`);
      declared = true;
      for (;;) {
        throwIfAborted(signal);
        const res = await client.query<unknown[]>({ text: `FETCH ${batchSize} FROM ${cursor}`, rowMode: 'array' });
        if (res.rows.length > 0) yield res.rows.map((row) => toRecord(shape.fields, row));
        if (res.rows.length < batchSize) break;
      }
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
   * The set as archive JSON Lines built by the server (`COPY (SELECT ...) TO STDOUT`), in key order.
   * Each chunk holds whole lines. See `DataReader.exportJsonLines`.
   */
  async *exportJsonLines(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<Buffer> {
    const { signal } = options;
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
    const hasJson = fields.some(([, s]) => s.type === 'json');
    // concat_ws skips NULL parts: an optional non-nullable column that is NULL is a missing field.
    const select = `SELECT '{' || concat_ws(',', ${parts.join(', ')}) || '}' FROM ${this.table(entity, set)} ORDER BY ${orderBy(entity)}`;
    // CSV with control-character quote and delimiter: JSON text never contains them raw, so lines pass unescaped.
    const copy = `COPY (${select}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`;
    const lease = await this.source.acquire();
    const { client } = lease;
    let stream: copyStreams.CopyToStreamQuery | undefined;
    let finished = false;
    let broken = false;
    const stopCancel = cancelOnAbort(client, signal);
    try {
      if (!(await tableExists(client, this.source.schema, physicalName(entity, set)))) {
        finished = true;
        return;
      }
      stream = client.query(copyStreams.to(copy));
      let pending: Buffer[] = [];
      let size = 0;
      let carry: Buffer | undefined;
      for await (const chunk of stream.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        throwIfAborted(signal);
        // COPY messages may arrive split across chunks: hand on whole lines only.
        const data = carry ? Buffer.concat([carry, chunk]) : chunk;
        const end = data.lastIndexOf(0x0a) + 1;
        carry = end < data.length ? Buffer.from(data.subarray(end)) : undefined;
        if (end === 0) continue;
        const lines = hasJson ? compactJson(data.subarray(0, end)) : data.subarray(0, end);
        pending.push(lines);
        size += lines.length;
        if (size >= STREAM_PIECE_BYTES) {
          const out = Buffer.concat(pending, size);
          pending = [];
          size = 0;
          yield out;
        }
      }
      finished = true;
      if (size > 0) yield Buffer.concat(pending, size);
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
      physicalName(entity, set),
      `SELECT count(*) AS n FROM ${this.table(entity, set)}`,
    );
    return rows ? Number(rows[0]?.n ?? 0) : 0;
  }

  /** See `DataAdapter.hasRecords`: one index or heap probe instead of a count. */
  async hasRecords(entity: EntitySchema, set: string): Promise<boolean> {
    const rows = await this.#read<{ e: boolean }>(
      physicalName(entity, set),
      `SELECT EXISTS (SELECT 1 FROM ${this.table(entity, set)}) AS e`,
    );
    return rows?.[0]?.e === true;
  }

  async get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined> {
    return (await this.getMany(entity, set, [key]))[0];
  }

  async getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]> {
    if (keys.length === 0) return [];
    const { fields, select } = shapeOf(entity);
    const keyIndex = fields.findIndex(([n]) => n === entity.key);
    const rows = await this.#read<unknown[]>(
      physicalName(entity, set),
      `SELECT ${select} FROM ${this.table(entity, set)} WHERE ${q(entity.key)} = ANY($1::${keyArrayType(keySpec(entity))})`,
      [keys.map(String)],
      'array',
    );
    const uuid = keySpec(entity).type === 'uuid';
    const byKey = new Map<string, DataRecord>();
    for (const row of rows ?? [])
      byKey.set(String(fromRow(fields[keyIndex]![1], row[keyIndex])), toRecord(fields, row));
    const out: DataRecord[] = [];
    for (const k of keys) {
      const r = byKey.get(uuid ? String(k).toLowerCase() : String(k));
      if (r) out.push(r);
    }
    return out;
  }

  async importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    if (records.length === 0) return { inserted: 0, updated: 0 };
    const rows = options.mode === 'upsert' ? lastPerKey(entity, records) : records;
    const shape = shapeOf(entity);
    assertNoNul(entity, shape, rows);
    const table = this.table(entity, set);
    return this.#write(
      entity,
      set,
      async (client) => {
        if (options.bulk)
          return this.#copyImport(
            client,
            entity,
            shape,
            table,
            copyText(shape, rows, options.signal),
            rows.length,
            options,
          );
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
              params.push(toParam(spec, record[name]));
              return `$${params.length}`;
            });
            if (shape.tracked.length > 0) {
              params.push(absentOf(shape, record));
              slots.push(`$${params.length}`);
            }
            return `(${slots.join(',')})`;
          });
          const text = `INSERT INTO ${table} (${shape.columns}) VALUES ${tuples.join(',')}${conflictClause(entity, shape, options.mode)}`;
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
   * COPYs into a staging table and merges from it (the last line of a key wins). Without `bulk`, or for entities
   * `jsonLinesSupported` refuses, the decoded records go through `importBatch`.
   */
  async importJsonLines(
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    if (lines.length === 0) return { inserted: 0, updated: 0 };
    const shape = shapeOf(entity);
    const json = options.json ?? 'text';
    if (!options.bulk || shape.tracked.length > 0)
      return this.importBatch(entity, set, decodeArchiveLines(entity, lines, json), options);
    const { text, count } = archiveLinesToCopy(entity, lines, options.mode === 'upsert', json);
    return this.#write(
      entity,
      set,
      (client) => this.#copyImport(client, entity, shape, this.table(entity, set), [text], count, options),
      () => decodeArchiveLines(entity, lines, json),
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
    const shape = shapeOf(entity);
    if (options.mode !== 'insert' || !options.bulk || shape.tracked.length > 0)
      return importEachBatch(batches, (lines) => this.importJsonLines(entity, set, lines, options));
    const table = this.table(entity, set);
    const { signal } = options;
    const transcoder = lineTranscoder(entity, COPY_TARGET, options.json ?? 'text');
    let count = 0;
    const body = async function* () {
      for await (const lines of batches) {
        throwIfAborted(signal);
        const pieces = transcoder.pieces(lines, count);
        count += lines.length;
        yield* pieces;
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

  async #copyImport(
    client: pg.ClientBase,
    entity: EntitySchema,
    shape: Shape,
    table: string,
    text: Iterable<string>,
    count: number,
    options: ImportOptions,
  ): Promise<ImportResult> {
    const { columns } = shape;
    const upsert = options.mode === 'upsert';
    const stage = `koan_stage_${++sequence}`;
    if (upsert) await client.query(`CREATE TEMP TABLE ${stage} (LIKE ${table}) ON COMMIT DROP`);
    const target = upsert ? stage : table;
    const copy = client.query(copyStreams.from(`COPY ${target} (${columns}) FROM STDIN`));
    await pipeline(Readable.from(text), copy);
    if (!upsert) return { inserted: count, updated: 0 };
    const res = await client.query<{ i: boolean }>(
      `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM ${stage}${conflictClause(entity, shape, 'upsert')}`,
    );
    await client.query(`DROP TABLE ${stage}`);
    let inserted = 0;
    for (const row of res.rows) if (row.i) inserted++;
    return { inserted, updated: res.rows.length - inserted };
  }

  /** DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe, so a snapshot taken before it (a running backup) would see an empty table. */
  async clear(entity: EntitySchema, set: string): Promise<number> {
    const table = this.table(entity, set);
    return this.#write(entity, set, async (client) => (await client.query(`DELETE FROM ${table}`)).rowCount ?? -1);
  }

  async remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.#write(entity, set, async (client) => {
      const res = await client.query(
        `DELETE FROM ${this.table(entity, set)} WHERE ${q(entity.key)} = ANY($1::${keyArrayType(keySpec(entity))})`,
        [keys.map(String)],
      );
      return res.rowCount ?? 0;
    });
  }

  /** A read that treats a missing table as empty (undefined). */
  async #read<R>(table: string, text: string, values?: unknown[], rowMode?: 'array'): Promise<R[] | undefined> {
    const lease = await this.source.acquire();
    let broken = false;
    try {
      // A failed statement would end a shared transaction, so a missing table is checked for first there.
      if (lease.shared && !(await tableExists(lease.client, this.source.schema, table))) return undefined;
      const res = await lease.client.query({ text, ...(values ? { values } : {}), ...(rowMode ? { rowMode } : {}) });
      return res.rows as R[];
    } catch (e) {
      if (isUndefinedTable(e)) return undefined;
      broken = !lease.shared && isConnectionError(e);
      throw e;
    } finally {
      await lease.release(broken);
    }
  }

  /** Runs writes atomically: in the lease's open transaction, or in one of their own. Maps PG errors to DataErrors. */
  async #write<T>(
    entity: EntitySchema,
    set: string,
    fn: (client: pg.ClientBase, inTransaction: boolean) => Promise<T>,
    records?: readonly DataRecord[] | (() => readonly DataRecord[]),
  ): Promise<T> {
    const lease = await this.source.acquire();
    const { client } = lease;
    let broken = false;
    try {
      if (lease.inTransaction) return await fn(client, true);
      await client.query('BEGIN');
      try {
        const out = await fn(client, false);
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
      throw mapWriteError(e, entity, set, typeof records === 'function' ? recordsOrNone(records) : records);
    } finally {
      await lease.release(broken);
    }
  }
}

/**
 * A server error about one COPY row (its `where` reads `COPY "Person", line 12, column visits: ...`) as a
 * DataError whose `details.line` is that row's 0-based line.
 */
function withCopyLine(e: unknown, entity: EntitySchema, set: string): unknown {
  const where = (e as { where?: string }).where;
  const line = where ? /\bCOPY [^,]+, line (\d+)/.exec(where)?.[1] : undefined;
  const mapped = mapWriteError(e, entity, set);
  if (line === undefined || !(mapped instanceof DataError)) return mapped;
  return new DataError(mapped.code, `${mapped.message} (line ${line})`, {
    cause: e,
    details: { ...mapped.details, line: Number(line) - 1 },
  });
}

/** Records for naming a failure; none when the lines themselves do not decode (their error is raised elsewhere). */
function recordsOrNone(records: () => readonly DataRecord[]): readonly DataRecord[] | undefined {
  try {
    return records();
  } catch {
    return undefined;
  }
}

/**
 * PostgreSQL text cannot hold U+0000: a record with it is refused before anything is written, naming the field and
 * key (the server's own error, "invalid byte sequence for encoding UTF8: 0x00", names neither).
 */
function assertNoNul(entity: EntitySchema, shape: Shape, rows: readonly DataRecord[]): void {
  const strings = shape.fields.filter(([, spec]) => spec.type === 'string').map(([name]) => name);
  if (strings.length === 0) return;
  for (const record of rows)
    for (const name of strings) {
      const v = record[name];
      if (typeof v === 'string' && v.includes('\u0000'))
        throw new DataError(
          'INVALID_VALUE',
          `${entity.name}.${name} of record ${JSON.stringify(record[entity.key])} holds the character U+0000 (NUL), which PostgreSQL text cannot store: remove it, or declare the field t.binary()`,
          { details: { entity: entity.name, field: name, key: record[entity.key] } },
        );
    }
}

/** COPY text-format lines, in chunks of about {@link STREAM_PIECE_BYTES}. */
function* copyText(shape: Shape, rows: readonly DataRecord[], signal: AbortSignal | undefined): Generator<string> {
  const { fields } = shape;
  let text = '';
  for (const record of rows) {
    for (let i = 0; i < fields.length; i++) {
      const [name, spec] = fields[i]!;
      text += (i === 0 ? '' : '\t') + toCopyText(spec, record[name]);
    }
    if (shape.tracked.length > 0) {
      const absent = absentOf(shape, record);
      // An array literal of quoted names, then COPY's own backslash escaping.
      text += absent
        ? `\t{${absent.map((n) => `"${n.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`.replace(/\\/g, '\\\\')
        : '\t\\N';
    }
    text += '\n';
    if (text.length >= STREAM_PIECE_BYTES) {
      throwIfAborted(signal);
      yield text;
      text = '';
    }
  }
  if (text.length > 0) yield text;
}

function checkBatchSize(batchSize: number): number {
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new TypeError(`batchSize must be a positive integer, got ${batchSize}`);
  return batchSize;
}

/**
 * SQL has no "absent": an optional non-nullable field that is NULL reads back as absent, and for optional
 * nullable fields (where NULL means null) the names of absent ones are kept in this extra text[] column.
 */
export const ABSENT = '_koan_absent';

interface Shape {
  readonly fields: Fields;
  /** Optional nullable fields, whose absence is recorded in {@link ABSENT}. */
  readonly tracked: readonly string[];
  /** Quoted column list for INSERT and COPY. */
  readonly columns: string;
  /** SELECT list: the fields' read expressions, then the absent column if tracked. */
  readonly select: string;
}

const shapes = new WeakMap<EntitySchema, Shape>();

function shapeOf(entity: EntitySchema): Shape {
  let shape = shapes.get(entity);
  if (!shape) {
    const fields = Object.entries(entity.fields);
    const tracked = fields.filter(([n, s]) => s.optional && s.nullable && n !== entity.key).map(([n]) => n);
    const extra = tracked.length > 0 ? [q(ABSENT)] : [];
    shape = {
      fields,
      tracked,
      columns: [...fields.map(([n]) => q(n)), ...extra].join(', '),
      select: [...fields.map(([n, s]) => readExpression(n, s)), ...extra].join(', '),
    };
    shapes.set(entity, shape);
  }
  return shape;
}

function absentOf(shape: Shape, record: DataRecord): string[] | null {
  const absent = shape.tracked.filter((n) => record[n] === undefined);
  return absent.length > 0 ? absent : null;
}

function orderBy(entity: EntitySchema): string {
  return keyFieldsOf(entity)
    .map((k) => (entity.fields[k]?.type === 'string' ? `${q(k)} COLLATE "C"` : q(k)))
    .join(', ');
}

function conflictClause(entity: EntitySchema, shape: Shape, mode: ImportOptions['mode']): string {
  if (mode === 'insert') return ' RETURNING true AS i';
  const keys = keyFieldsOf(entity);
  const names = shape.fields.map(([n]) => n).filter((n) => !keys.includes(n));
  if (shape.tracked.length > 0) names.push(ABSENT);
  const set = (names.length > 0 ? names : [entity.key]).map((n) => `${q(n)} = EXCLUDED.${q(n)}`).join(', ');
  // xmax is 0 on a freshly inserted row version and set on one that replaced a row.
  return ` ON CONFLICT (${keys.map(q).join(', ')}) DO UPDATE SET ${set} RETURNING (xmax = 0) AS i`;
}

function toRecord(fields: Fields, row: readonly unknown[]): DataRecord {
  const record: DataRecord = {};
  const absent = row[fields.length] as string[] | null | undefined;
  for (let i = 0; i < fields.length; i++) {
    const [name, spec] = fields[i]!;
    const value = row[i];
    if (value === null || value === undefined) {
      if (spec.optional && (!spec.nullable || absent?.includes(name))) continue;
      record[name] = null;
    } else record[name] = fromRow(spec, value);
  }
  return record;
}

function lastPerKey(entity: EntitySchema, records: readonly DataRecord[]): readonly DataRecord[] {
  const keys = keyFieldsOf(entity);
  const byKey = new Map<unknown, DataRecord>();
  for (const r of records)
    byKey.set(keys.length === 1 ? r[entity.key] : JSON.stringify(keys.map((k) => String(r[k]))), r);
  if (byKey.size === records.length) return records;
  return [...byKey.values()];
}

/** Reads a COPY's remaining output; false when the connection failed meanwhile. */
function drain(stream: copyStreams.CopyToStreamQuery): Promise<boolean> {
  // A COPY that already ended or failed sends nothing more: waiting for its events would wait forever.
  if (stream.readableEnded) return Promise.resolve(true);
  if (stream.errored || stream.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    stream.on('data', () => {});
    stream.once('end', () => resolve(true));
    stream.once('error', () => resolve(false));
    stream.resume();
  });
}

export async function tableExists(client: pg.ClientBase | pg.Pool, schema: string, table: string): Promise<boolean> {
  const res = await client.query('SELECT to_regclass($1) IS NOT NULL AS e', [`${q(schema)}.${q(table)}`]);
  return res.rows[0]?.e === true;
}

function pgCode(e: unknown): string | undefined {
  return (e as { code?: unknown })?.code as string | undefined;
}

function isUndefinedTable(e: unknown): boolean {
  return pgCode(e) === '42P01';
}

function isConnectionError(e: unknown): boolean {
  const code = pgCode(e);
  return code === undefined || code.startsWith('08') || code === '57P01';
}

function mapWriteError(e: unknown, entity: EntitySchema, set: string, records?: readonly DataRecord[]): unknown {
  const code = pgCode(e);
  if (code === '23503') return foreignKeyError(e as pg.DatabaseError, entity, set, records);
  if (code === '23505') {
    const key = /\)=\((.*)\) already exists/.exec((e as { detail?: string }).detail ?? '')?.[1];
    return new DataError(
      'DUPLICATE_KEY',
      `${entity.name}: a record with key ${JSON.stringify(key)} already exists in set "${set}". Use upsert to replace it.`,
      { cause: e, details: { entity: entity.name, set, key } },
    );
  }
  if (code === '42P01')
    return new DataError(
      'TABLE_MISSING',
      `[postgres] ${entity.name} set "${set}" does not exist: call ensureEntity(entity, "${set}") before writing.`,
      { cause: e, details: { entity: entity.name, set } },
    );
  if (code?.startsWith('22') || code?.startsWith('23'))
    return new DataError('INVALID_VALUE', `[postgres] ${entity.name}: ${(e as Error).message}`, {
      cause: e,
      details: { entity: entity.name, set },
    });
  return e;
}

/**
 * While `signal` is live, an abort sends the server a CancelRequest (over a new connection, as PostgreSQL wants it)
 * for the statement `client` is running, if `ours()` says it belongs to the operation: a query waiting on a lock,
 * or still sorting before its first row, stops with 57014 instead of finishing first. Returns the function that
 * stops listening.
 */
export function cancelOnAbort(
  client: pg.ClientBase,
  signal: AbortSignal | undefined,
  ours: () => boolean = () => true,
): () => void {
  if (!signal) return () => {};
  const onAbort = () => {
    const running = client as unknown as { activeQuery?: unknown; host?: string; port?: number };
    if (!running.activeQuery || !ours()) return;
    const canceller = new pg.Client({
      ...(running.host !== undefined ? { host: running.host } : {}),
      ...(running.port !== undefined ? { port: running.port } : {}),
    }) as unknown as { cancel(client: unknown, query: unknown): void };
    canceller.cancel(client, running.activeQuery);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

/** Brackets each json value in exported lines (see `jsonExpression`); JSON text never holds it raw and CSV passes it through. */
const MARK = 0x03;

/**
 * Removes the blanks jsonb puts after `:` and `,` (outside strings) inside the marked json values, and the marks,
 * so lines match `JSON.stringify`. Only the json values are scanned byte by byte; the rest is copied. Called on
 * whole lines only, so marks come in pairs.
 */
function compactJson(chunk: Buffer): Buffer {
  let start = chunk.indexOf(MARK);
  if (start < 0) return chunk;
  const out = Buffer.allocUnsafe(chunk.length);
  let n = 0;
  let from = 0;
  while (start >= 0) {
    n += chunk.copy(out, n, from, start);
    const end = chunk.indexOf(MARK, start + 1);
    n = compactJsonBytes(chunk, start + 1, end, out, n);
    if (n < 0) throw new DataError('INVALID_VALUE', '[postgres] the server sent json text with a control character');
    from = end + 1;
    start = chunk.indexOf(MARK, from);
  }
  n += chunk.copy(out, n, from);
  return out.subarray(0, n);
}

const unquote = (name: string): string => (name.startsWith('"') ? name.slice(1, -1).replaceAll('""', '"') : name);

/**
 * A foreign-key violation naming the entity, the record key and the constraint. PostgreSQL reports the missing
 * parent value (`Key (customer_id)=(99) is not present in table "customer"`); the record is the batch's first
 * one holding that value.
 */
function foreignKeyError(
  e: pg.DatabaseError,
  entity: EntitySchema,
  set: string,
  records?: readonly DataRecord[],
): DataError {
  const constraint = e.constraint ?? '?';
  const missing = /^Key \((.+)\)=\((.*)\) is not present in table "(.+)"\.$/s.exec(e.detail ?? '');
  if (!missing) {
    // A parent row that is still referenced (a DELETE of the parent).
    return new DataError('FOREIGN_KEY_VIOLATION', `[postgres] ${entity.name}: ${e.message} (${e.detail ?? ''})`, {
      cause: e,
      details: { entity: entity.name, set, constraint, ...(e.table ? { table: e.table } : {}) },
    });
  }
  const columns = missing[1]!.split(', ').map(unquote);
  const values = missing[2]!.split(', ');
  const record = records?.find((r) => columns.every((c, i) => String(r[c]) === values[i]));
  const key = record ? describeKey(entity, record) : undefined;
  return new DataError(
    'FOREIGN_KEY_VIOLATION',
    `[postgres] ${entity.name} record ${key === undefined ? '(unknown key)' : JSON.stringify(key)} references ${missing[3]} with ${columns.join(', ')} = ${missing[2]}, which does not exist (constraint ${constraint}).`,
    {
      cause: e,
      details: {
        entity: entity.name,
        set,
        key,
        constraint,
        references: missing[3],
        // Without the records (a streamed import), the child's values let the caller find the record.
        ...(record ? {} : { match: Object.fromEntries(columns.map((c, i) => [c, values[i]])) }),
      },
    },
  );
}

/** The writer of one `transaction()`: tracks the tables it writes, so deferred foreign keys can be checked before commit. */
export class TransactionSession extends PostgresSession {
  #deferred = false;
  readonly #written = new Map<string, { entity: EntitySchema; set: string }>();

  override importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    this.#written.set(physicalName(entity, set), { entity, set });
    return super.importBatch(entity, set, records, options);
  }

  override importJsonLines(
    entity: EntitySchema,
    set: string,
    lines: readonly string[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    this.#written.set(physicalName(entity, set), { entity, set });
    return super.importJsonLines(entity, set, lines, options);
  }

  override importJsonLineStream(
    entity: EntitySchema,
    set: string,
    batches: AsyncIterable<readonly string[]>,
    options: ImportOptions,
  ): Promise<ImportResult> {
    this.#written.set(physicalName(entity, set), { entity, set });
    return super.importJsonLineStream(entity, set, batches, options);
  }

  override clear(entity: EntitySchema, set: string): Promise<number> {
    this.#written.set(physicalName(entity, set), { entity, set });
    return super.clear(entity, set);
  }

  /**
   * `SET CONSTRAINTS ALL DEFERRED`: DEFERRABLE foreign keys are checked at commit. Constraints declared without
   * DEFERRABLE (PostgreSQL's default) still fire at the end of each statement: parents must come first for them.
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
   * report the constraint and the missing value, not the row's key).
   */
  async checkDeferred(foreignKeys: (table: string) => Promise<readonly ForeignKeyInfo[]>): Promise<void> {
    if (!this.#deferred) return;
    const lease = await this.source.acquire();
    try {
      for (const [physical, { entity, set }] of this.#written) {
        const keys = keyFieldsOf(entity);
        for (const fk of await foreignKeys(physical)) {
          const child = (c: string) => `c.${q(c)}`;
          const parent = `${q(this.source.schema)}.${q(fk.references)}`;
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
    } finally {
      await lease.release();
    }
  }
}

export interface ForeignKeyInfo {
  readonly name: string;
  readonly columns: readonly string[];
  readonly references: string;
  readonly referencedColumns: readonly string[];
}

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import {
  ConfigError,
  type DataAdapter,
  DataError,
  type DataRecord,
  type EntitySchema,
  type FieldSpec,
  JsonText,
  type KeyValue,
} from '@koan/data';
import {
  type AdapterCapabilities,
  assertSetName,
  assertSingleKey,
  type Consistency,
  checkBatchBytes,
  type DataProvider,
  type DataReader,
  type DataWriter,
  type ExportOptions,
  type ImportOptions,
  type ImportResult,
  jsonTextOf,
  pagedRecords,
  physicalName,
  ROOT_SET,
  type StoreDescription,
  throwIfAborted,
} from '@koan/data/adapter-kit';
import { type Connection, connect, type Table } from '@lancedb/lancedb';
import type * as Arrow from 'apache-arrow';

// @lancedb/lancedb is CommonJS and checks `instanceof` against the CommonJS apache-arrow build; an ESM
// import would load a second copy whose tables it rejects. So take the copy `require` resolves.
const arrow = createRequire(import.meta.url)('apache-arrow') as typeof Arrow;

const PROVIDER = 'lancedb';
/** Column listing the optional+nullable fields a record lacks (JSON array), so absent and null stay distinct. */
const ABSENT = '_koan_absent';

/** Settings of a LanceDB source. */
export interface LanceDbSettings {
  /** Database directory (relative paths resolve against the runtime's cwd). Required. */
  readonly uri: string;
}

/** `#` is not allowed in LanceDB table names; `.` is, and never appears in an entity name. */
export function lanceTableName(entity: EntitySchema, set: string): string {
  assertSetName(set);
  return physicalName(entity, set).replace('#', '.');
}

/** Version of each table a snapshot reads; `null` for tables created after the snapshot's moment. */
type Pins = ReadonlyMap<string, number | null>;

/**
 * Creates a LanceDB data adapter: one table per entity set, one column per field, vectors as
 * `FixedSizeList<Float32>` (bit-exact). Reads are pinned to a table version, so a stream never sees
 * writes that land while it runs.
 *
 * @example
 * const adapter = createLanceDbAdapter({ uri: '.koan/vectors' });
 * await adapter.init();
 */
export function createLanceDbAdapter(settings: LanceDbSettings): DataAdapter {
  if (typeof settings?.uri !== 'string' || settings.uri === '')
    throw new ConfigError(
      'INVALID_SETTING',
      '[koan] [lancedb] Missing required option `uri` (the database directory).',
    );
  return new LanceDbAdapter(settings.uri);
}

class LanceDbAdapter implements DataAdapter {
  readonly provider = PROVIDER;
  readonly capabilities: AdapterCapabilities = Object.freeze({
    transactions: false,
    snapshotReads: true,
    nativeUpsert: true,
    bulkLoad: true,
    orderedStreaming: true,
    sets: true,
    introspection: false,
    ttl: false,
    nonFiniteNumbers: true,
  });
  readonly #uri: string;
  #db: Connection | undefined;
  /** init() found no local directory: nothing is connected (or created) until the first table is. */
  #absent = false;
  #tables = new Map<string, Table>();

  constructor(uri: string) {
    this.#uri = uri;
  }

  get #conn(): Connection {
    if (!this.#db)
      throw new DataError('NOT_INITIALIZED', '[koan] [lancedb] adapter used before init() or after close()');
    return this.#db;
  }

  /**
   * Opens the database. A local directory that does not exist yet is not created here (connecting would create it):
   * until the first table is created, reads see an empty database, so a backup or a restore's dry run leaves nothing.
   */
  async init(): Promise<void> {
    if (this.#db || this.#absent) return;
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(this.#uri) && !existsSync(this.#uri)) {
      this.#absent = true;
      return;
    }
    await this.#connect();
  }

  async #connect(): Promise<Connection> {
    // Interval 0: every read checks for commits made through other handles or processes.
    this.#db ??= await connect(this.#uri, { readConsistencyInterval: 0 });
    this.#absent = false;
    return this.#db;
  }

  /** Table names; none while the local directory does not exist. */
  async #names(): Promise<string[]> {
    return this.#absent ? [] : this.#conn.tableNames();
  }

  async close(): Promise<void> {
    for (const table of this.#tables.values()) table.close();
    this.#tables.clear();
    this.#db?.close();
    this.#db = undefined;
    this.#absent = false;
  }

  async #open(name: string): Promise<Table | undefined> {
    const cached = this.#tables.get(name);
    if (cached) return cached;
    if (!(await this.#names()).includes(name)) return undefined;
    const table = await this.#conn.openTable(name);
    this.#tables.set(name, table);
    return table;
  }

  async #create(entity: EntitySchema, set: string): Promise<Table> {
    const name = lanceTableName(entity, set);
    const existing = await this.#open(name);
    if (existing) return existing;
    const conn = this.#absent ? await this.#connect() : this.#conn;
    const table = await conn.createEmptyTable(name, arrowSchema(entity), { mode: 'create', existOk: true });
    this.#tables.set(name, table);
    return table;
  }

  async ensureEntity(entity: EntitySchema, set: string): Promise<void> {
    assertSingleKey(entity, 'lancedb');
    await this.#create(entity, set);
  }

  async listSets(entity: EntitySchema): Promise<string[]> {
    const base = lanceTableName(entity, ROOT_SET);
    const sets: string[] = [];
    for (const name of await this.#names()) {
      if (name === base) sets.push(ROOT_SET);
      else if (name.startsWith(`${base}.`)) sets.push(name.slice(base.length + 1));
    }
    return sets.sort();
  }

  /** A read-only handle at the pinned version (or the current one), or undefined when the table is absent then. */
  async #pinned(entity: EntitySchema, set: string, pins?: Pins): Promise<Table | undefined> {
    assertSingleKey(entity, 'lancedb');
    const name = lanceTableName(entity, set);
    const version = pins ? pins.get(name) : await (await this.#open(name))?.version();
    if (version === undefined || version === null) return undefined;
    const table = await this.#conn.openTable(name);
    await table.checkout(version);
    return table;
  }

  count(entity: EntitySchema, set: string): Promise<number> {
    return this.#count(entity, set);
  }

  async #count(entity: EntitySchema, set: string, pins?: Pins): Promise<number> {
    if (!pins) return (await (await this.#open(lanceTableName(entity, set)))?.countRows()) ?? 0;
    const table = await this.#pinned(entity, set, pins);
    try {
      return (await table?.countRows()) ?? 0;
    } finally {
      table?.close();
    }
  }

  exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<DataRecord[]> {
    return this.#export(entity, set, options);
  }

  /** Keyset paging (`key > last ORDER BY key LIMIT n`) over one table version. */
  async *#export(entity: EntitySchema, set: string, options: ExportOptions, pins?: Pins): AsyncGenerator<DataRecord[]> {
    const size = Math.max(1, options.batchSize ?? 1000);
    const budget = checkBatchBytes(options.batchBytes);
    const table = await this.#pinned(entity, set, pins);
    if (!table) return;
    let last: KeyValue | undefined;
    // Each page asks for the records that fill what is left of the batch's byte budget.
    const read = async (limit: number) => {
      const query = table.query().orderBy({ columnName: entity.key, ascending: true }).limit(limit);
      if (last !== undefined) query.where(`${column(entity.key)} > ${literal(last)}`);
      const records: DataRecord[] = [];
      for await (const batch of query) records.push(...fromBatch(entity, batch, options.exactJson === true));
      if (records.length) last = records[records.length - 1]![entity.key] as KeyValue;
      return records;
    };
    try {
      yield* pagedRecords(read, (r) => r, size, budget, options.signal);
    } finally {
      table.close();
    }
  }

  async get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined> {
    return (await this.getMany(entity, set, [key]))[0];
  }

  async getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]> {
    assertSingleKey(entity, 'lancedb');
    const table = await this.#open(lanceTableName(entity, set));
    if (!table || keys.length === 0) return [];
    const found = new Map<KeyValue, DataRecord>();
    for await (const batch of table.query().where(inList(entity, keys)))
      for (const record of fromBatch(entity, batch, false)) found.set(record[entity.key] as KeyValue, record);
    return keys.flatMap((k): DataRecord[] => {
      const record = found.get(keyOf(entity, k));
      return record ? [record] : [];
    });
  }

  async importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    assertSingleKey(entity, 'lancedb');
    if (records.length === 0) {
      await this.#create(entity, set);
      return { inserted: 0, updated: 0 };
    }
    checkStorable(entity, records);
    const byKey = new Map<KeyValue, DataRecord>();
    for (const record of records) {
      const key = record[entity.key];
      if (typeof key !== 'string' && typeof key !== 'number')
        throw new DataError('MISSING_FIELD', `${entity.name}.${entity.key} is required (it is the key)`, {
          details: { entity: entity.name },
        });
      if (options.mode === 'insert' && byKey.has(key)) throw duplicate(entity, set, key);
      byKey.set(key, record);
    }
    const data = toArrowTable(entity, [...byKey.values()]);
    const table = await this.#create(entity, set);
    const empty = options.bulk === true && (await table.countRows()) === 0;
    if (options.mode === 'upsert' && !empty) {
      const result = await table.mergeInsert(entity.key).whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(data);
      return { inserted: result.numInsertedRows, updated: result.numUpdatedRows };
    }
    if (options.mode === 'insert' && !empty) {
      // Check, then add: a concurrent writer could add one of these keys in between (no unique constraint in Lance).
      for await (const batch of table
        .query()
        .where(inList(entity, [...byKey.keys()]))
        .select([entity.key])
        .limit(1)) {
        const clash = batch.getChild(entity.key)?.get(0);
        if (clash !== undefined && clash !== null) throw duplicate(entity, set, keyOf(entity, clash as KeyValue));
      }
    }
    await table.add(data);
    return { inserted: byKey.size, updated: 0 };
  }

  async clear(entity: EntitySchema, set: string): Promise<number> {
    const table = await this.#open(lanceTableName(entity, set));
    if (!table) return 0;
    const result = await table.delete('true');
    return (result as { numDeletedRows?: number }).numDeletedRows ?? -1;
  }

  async remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    const table = await this.#open(lanceTableName(entity, set));
    if (!table || keys.length === 0) return 0;
    const result = await table.delete(inList(entity, keys));
    return (result as { numDeletedRows?: number }).numDeletedRows ?? -1;
  }

  async describe(entity: EntitySchema, set: string): Promise<StoreDescription> {
    const name = lanceTableName(entity, set);
    const table = await this.#open(name);
    const schema = table ? await table.schema() : arrowSchema(entity);
    const indices = table ? await table.listIndices() : [];
    return {
      provider: PROVIDER,
      location: name,
      exists: table !== undefined,
      columns: schema.fields.map((f) => ({ name: f.name, storeType: String(f.type), nullable: f.nullable })),
      primaryKey: [entity.key],
      extra: {
        ...(table ? { version: await table.version() } : {}),
        vectors: Object.entries(entity.fields)
          .filter(([, spec]) => spec.type === 'vector')
          .map(([field, spec]) => {
            const stored = schema.fields.find((f) => f.name === field)?.type as Arrow.FixedSizeList | undefined;
            const index = indices.find((i) => i.columns.includes(field));
            return {
              field,
              dimension: stored?.listSize ?? spec.dimension,
              metric: spec.metric ?? null,
              index: index ? { name: index.name, type: index.indexType } : null,
            };
          }),
        indices: indices.map((i) => ({ name: i.name, type: i.indexType, columns: i.columns })),
      },
    };
  }

  /**
   * Pins, for every table, the last version committed at or before one moment (commit timestamps),
   * so all entities are read as of that moment. Exact when writers share this machine's clock.
   */
  async readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: Consistency }) => Promise<T>): Promise<T> {
    const moment = Date.now();
    const pins = new Map<string, number | null>();
    for (const name of await this.#names()) {
      const table = await this.#open(name);
      let pinned: number | null = null;
      for (const v of (await table?.listVersions()) ?? [])
        if (new Date(v.timestamp).getTime() <= moment && (pinned === null || v.version > pinned)) pinned = v.version;
      pins.set(name, pinned);
    }
    return fn({
      consistency: 'snapshot',
      exportEntity: (entity, set, options = {}) => this.#export(entity, set, options, pins),
      count: (entity, set) => this.#count(entity, set, pins),
    });
  }

  /** Runs `fn` directly: LanceDB commits each write on its own. */
  async transaction<T>(fn: (writer: DataWriter) => Promise<T>): Promise<T> {
    return fn(this);
  }
}

function duplicate(entity: EntitySchema, set: string, key: KeyValue): DataError {
  return new DataError(
    'DUPLICATE_KEY',
    `${entity.name}: a record with key ${JSON.stringify(key)} already exists in set "${set}"; nothing of this batch was written`,
    { details: { entity: entity.name, set, key } },
  );
}

function keyOf(entity: EntitySchema, key: unknown): KeyValue {
  return entity.keyType === 'integer' ? Number(key) : String(key);
}

function column(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

function literal(value: KeyValue): string {
  return typeof value === 'number' || typeof value === 'bigint' ? String(value) : `'${value.replaceAll("'", "''")}'`;
}

function inList(entity: EntitySchema, keys: readonly KeyValue[]): string {
  return `${column(entity.key)} IN (${keys.map((k) => literal(keyOf(entity, k))).join(', ')})`;
}

function arrowType(spec: FieldSpec): Arrow.DataType {
  switch (spec.type) {
    case 'integer':
    case 'bigint':
      return new arrow.Int64();
    case 'number':
      return new arrow.Float64();
    case 'boolean':
      return new arrow.Bool();
    case 'binary':
      return new arrow.Binary();
    case 'vector':
      return new arrow.FixedSizeList(spec.dimension ?? 0, new arrow.Field('item', new arrow.Float32(), true));
    default:
      return new arrow.Utf8();
  }
}

/** Fields where a missing value and `null` must be told apart. */
function absentable(entity: EntitySchema): string[] {
  return Object.entries(entity.fields)
    .filter(([name, spec]) => name !== entity.key && spec.optional && spec.nullable)
    .map(([name]) => name);
}

/**
 * The Arrow schema of an entity's tables: one column per field, nullable when optional or nullable,
 * plus `_koan_absent` when some field is both optional and nullable.
 */
export function arrowSchema(entity: EntitySchema): Arrow.Schema {
  const fields = Object.entries(entity.fields).map(
    ([name, spec]) => new arrow.Field(name, arrowType(spec), name !== entity.key && (spec.nullable || spec.optional)),
  );
  if (absentable(entity).length > 0) fields.push(new arrow.Field(ABSENT, new arrow.Utf8(), true));
  return new arrow.Schema(fields);
}

function toArrowTable(entity: EntitySchema, records: readonly DataRecord[]): Arrow.Table {
  const schema = arrowSchema(entity);
  const optionalNullable = absentable(entity);
  const children = schema.fields.map((field) => {
    const spec = entity.fields[field.name];
    if (!spec) {
      const builder = arrow.makeBuilder({ type: field.type, nullValues: [null] });
      for (const r of records) {
        const absent = optionalNullable.filter((name) => r[name] === undefined);
        builder.append(absent.length > 0 ? JSON.stringify(absent) : null);
      }
      return builder.finish().flush();
    }
    const values = records.map((r) => r[field.name]);
    if (spec.type === 'vector') {
      const vectors = values as (Float32Array | null | undefined)[];
      const bad = vectors.findIndex((v) => v?.some(Number.isNaN));
      if (bad >= 0)
        throw new DataError(
          'INVALID_VALUE',
          `${entity.name}.${field.name}: LanceDB rejects NaN in vector columns (record ${JSON.stringify(records[bad]?.[entity.key])}). Replace NaN before storing vectors in LanceDB.`,
          { details: { entity: entity.name, field: field.name } },
        );
      return vectorData(field.type as Arrow.FixedSizeList, vectors);
    }
    const builder = arrow.makeBuilder({ type: field.type, nullValues: [null, undefined] });
    for (const value of values) builder.append(toStore(spec, value));
    return builder.finish().flush();
  });
  const struct = new arrow.Struct(schema.fields);
  const batch = new arrow.RecordBatch(
    schema,
    arrow.makeData({ type: struct, length: records.length, nullCount: 0, children }),
  );
  return new arrow.Table([batch]);
}

function toStore(spec: FieldSpec, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (spec.type === 'integer') return BigInt(value as number);
  // The JSON text exactly as given (a JsonText's own text), else JSON.stringify of the value.
  if (spec.type === 'json') return jsonTextOf(value);
  return value;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Why LanceDB cannot hold a value exactly, or undefined: Int64 columns hold signed 64-bit integers (an unsigned bigint
 * beyond 2^63-1 would wrap), Utf8 columns hold UTF-8 (a lone UTF-16 surrogate would become U+FFFD), and a JsonText
 * must be JSON.
 */
function unstorable(spec: FieldSpec, value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (spec.type === 'bigint') {
    const b = value as bigint;
    return b > INT64_MAX || b < INT64_MIN ? `${b} is beyond LanceDB's signed 64-bit Int64 (max 2^63-1)` : undefined;
  }
  if (typeof value === 'string' || value instanceof JsonText) {
    const text = typeof value === 'string' ? value : value.text;
    if (!(text as string & { isWellFormed(): boolean }).isWellFormed())
      return 'it holds a lone UTF-16 surrogate, which UTF-8 text cannot hold';
    if (value instanceof JsonText)
      try {
        JSON.parse(text);
      } catch (e) {
        return `it is not JSON text (${(e as Error).message})`;
      }
  }
  return undefined;
}

/** Refuses, before anything is written, a record value LanceDB cannot hold (see {@link unstorable}), by name. */
function checkStorable(entity: EntitySchema, records: readonly DataRecord[]): void {
  const fields = Object.entries(entity.fields).filter(([, spec]) =>
    ['bigint', 'string', 'uuid', 'decimal', 'datetime', 'date', 'json'].includes(spec.type),
  );
  for (const record of records)
    for (const [name, spec] of fields) {
      const why = unstorable(spec, record[name]);
      if (why)
        throw new DataError(
          'UNSUPPORTED_VALUE',
          `[lancedb] ${entity.name}.${name} of record ${JSON.stringify(record[entity.key] ?? null)}: ${why}. Nothing of the batch was written.`,
          { details: { entity: entity.name, field: name, key: record[entity.key] } },
        );
    }
}

/** Copies the float32 bytes as they are (NaN payloads, -0 and subnormals included). */
function vectorData(type: Arrow.FixedSizeList, values: readonly (Float32Array | null | undefined)[]): Arrow.Data {
  const dim = type.listSize;
  const bytes = new Uint8Array(values.length * dim * 4);
  const valid = new Uint8Array(Math.ceil(values.length / 8));
  let nullCount = 0;
  values.forEach((v, i) => {
    if (v === null || v === undefined) {
      nullCount++;
      return;
    }
    bytes.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), i * dim * 4);
    valid[i >> 3]! |= 1 << (i & 7);
  });
  const child = arrow.makeData({
    type: new arrow.Float32(),
    length: values.length * dim,
    data: new Float32Array(bytes.buffer),
  });
  return arrow.makeData({
    type,
    length: values.length,
    nullCount,
    ...(nullCount > 0 ? { nullBitmap: valid } : {}),
    child,
  });
}

function fromBatch(entity: EntitySchema, batch: Arrow.RecordBatch, exactJson: boolean): DataRecord[] {
  const columns = Object.entries(entity.fields).map(([name, spec]) => ({ name, spec, vector: batch.getChild(name) }));
  const absentColumn = batch.getChild(ABSENT);
  const records: DataRecord[] = [];
  for (let row = 0; row < batch.numRows; row++) {
    const record: DataRecord = {};
    const absentText = absentColumn?.get(row) as string | null | undefined;
    const absent: string[] = absentText ? JSON.parse(absentText) : [];
    for (const { name, spec, vector } of columns) {
      if (!vector) continue;
      const value = vector.isValid(row) ? vector.get(row) : null;
      if (value === null || value === undefined) {
        if (spec.nullable && !absent.includes(name)) record[name] = null;
        continue;
      }
      record[name] = fromStore(spec, value, exactJson);
    }
    records.push(record);
  }
  return records;
}

function fromStore(spec: FieldSpec, value: unknown, exactJson: boolean): unknown {
  switch (spec.type) {
    case 'integer':
      return Number(value);
    case 'bigint':
      return BigInt(value as bigint);
    case 'json':
      // The stored text, exactly (backups); or its JavaScript value.
      return exactJson ? JsonText.parse(value as string) : JSON.parse(value as string);
    case 'binary':
      return (value as Uint8Array).slice();
    case 'vector':
      // A same-type slice copies bytes, so the floats stay bit-exact.
      return (value as Arrow.Vector<Arrow.Float32>).toArray().slice();
    default:
      return value;
  }
}

/** The `lancedb` provider: settings `{ uri }`, resolved against the runtime's cwd. */
export const provider: DataProvider = Object.freeze({
  name: PROVIDER,
  settings: { uri: 'text' } as const,
  create: (settings: Record<string, unknown>, context: { readonly cwd: string }) => {
    if (typeof settings.uri !== 'string' || settings.uri === '')
      throw new ConfigError(
        'INVALID_SETTING',
        '[koan] [lancedb] Missing required option `uri` (the database directory).',
      );
    return createLanceDbAdapter({ uri: resolve(context.cwd, settings.uri) });
  },
});

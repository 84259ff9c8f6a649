// Internal: the in-memory, key-ordered table behind the memory and JSON-file adapters.
import type { DataWriter, ImportOptions, ImportResult } from '../adapter.js';
import { recordBytes } from '../batch-bytes.js';
import { DataError } from '../errors.js';
import { JsonText, jsValueOf } from '../json-text.js';
import { assertSingleKey, compareKeyValues, type EntitySchema, physicalName } from '../schema.js';
import type { DataRecord, KeyValue } from '../types.js';

/**
 * A copy of a record holding only schema fields, so stored records never alias caller memory. json values are kept as
 * JavaScript values: a `JsonText` JavaScript cannot hold exactly is refused (`UNSUPPORTED_VALUE`, see `jsValueOf`).
 */
export function copyRecord(schema: EntitySchema, record: DataRecord): DataRecord {
  const out: DataRecord = {};
  for (const [name, spec] of Object.entries(schema.fields)) {
    const v = record[name];
    if (v === undefined) continue;
    if (v === null) out[name] = null;
    else if (spec.type === 'binary') out[name] = new Uint8Array(v as Uint8Array);
    else if (spec.type === 'vector') out[name] = new Float32Array(v as Float32Array);
    else if (v instanceof JsonText)
      out[name] = jsValueOf(v, `${schema.name}.${name} of record ${JSON.stringify(record[schema.key] ?? null)}`);
    else if (spec.type === 'json' && typeof v === 'object') out[name] = structuredClone(v);
    else out[name] = v;
  }
  return out;
}

function sortKeys(keys: KeyValue[], keyType: EntitySchema['keyType']): KeyValue[] {
  if (keyType === 'integer') return keys.sort((a, b) => (a as number) - (b as number));
  // UTF-8 byte order: encode once, not per comparison.
  return keys
    .map((k) => ({ k, b: Buffer.from(String(k), 'utf8') }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((x) => x.k);
}

export type TableOp =
  | { readonly kind: 'import'; readonly records: readonly DataRecord[]; readonly options: ImportOptions }
  | { readonly kind: 'remove'; readonly keys: readonly KeyValue[] }
  | { readonly kind: 'clear' };

/** Records by key, with a lazily rebuilt sorted key index for keyset paging. Stored records are never mutated. */
export class KeyedTable {
  readonly schema: EntitySchema;
  readonly rows: Map<KeyValue, DataRecord>;
  #sorted: KeyValue[] | undefined;

  constructor(schema: EntitySchema, rows: Map<KeyValue, DataRecord> = new Map()) {
    this.schema = schema;
    this.rows = rows;
  }

  clone(): KeyedTable {
    const copy = new KeyedTable(this.schema, new Map(this.rows));
    copy.#sorted = this.#sorted;
    return copy;
  }

  /** Every stored record in key order (not copied: callers must not mutate). */
  sortedRecords(): DataRecord[] {
    this.#sorted ??= sortKeys([...this.rows.keys()], this.schema.keyType);
    return this.#sorted.map((k) => this.rows.get(k)!);
  }

  /** Copies of the records after `after` in key order: at most `limit`, closed once they reach `maxBytes`. */
  page(after: KeyValue | undefined, limit: number, maxBytes = Number.POSITIVE_INFINITY): DataRecord[] {
    this.#sorted ??= sortKeys([...this.rows.keys()], this.schema.keyType);
    const keys = this.#sorted;
    let lo = 0;
    if (after !== undefined) {
      let hi = keys.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareKeyValues(keys[mid]!, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
    }
    const out: DataRecord[] = [];
    let bytes = 0;
    for (let i = lo; i < keys.length && out.length < limit && bytes < maxBytes; i++) {
      const record = copyRecord(this.schema, this.rows.get(keys[i]!)!);
      out.push(record);
      if (maxBytes !== Number.POSITIVE_INFINITY) bytes += recordBytes(record);
    }
    return out;
  }

  apply(op: TableOp): ImportResult | number {
    switch (op.kind) {
      case 'import':
        return this.#import(op.records, op.options);
      case 'remove': {
        let removed = 0;
        for (const key of op.keys) if (this.rows.delete(key)) removed++;
        if (removed) this.#sorted = undefined;
        return removed;
      }
      case 'clear': {
        const n = this.rows.size;
        this.rows.clear();
        this.#sorted = [];
        return n;
      }
    }
  }

  #import(records: readonly DataRecord[], options: ImportOptions): ImportResult {
    const key = this.schema.key;
    if (options.mode === 'insert') {
      const seen = new Set<KeyValue>();
      for (const r of records) {
        const k = r[key] as KeyValue;
        if (this.rows.has(k) || seen.has(k))
          throw new DataError(
            'DUPLICATE_KEY',
            `${this.schema.name}: a record with key ${JSON.stringify(k)} already exists. Use upsert to replace it.`,
            {
              details: { entity: this.schema.name, key: k },
            },
          );
        seen.add(k);
      }
    }
    let inserted = 0;
    let updated = 0;
    // Copied (and checked) first: a record that cannot be stored leaves the table as it was.
    const copies = records.map((r) => {
      const k = r[key] as KeyValue;
      if (k === undefined || k === null)
        throw new DataError('MISSING_FIELD', `${this.schema.name}.${key} is required (it is the key).`);
      return copyRecord(this.schema, r);
    });
    for (const r of copies) {
      const k = r[key] as KeyValue;
      if (this.rows.has(k)) updated++;
      else {
        inserted++;
        this.#sorted = undefined;
      }
      this.rows.set(k, r);
    }
    return { inserted, updated };
  }
}

/**
 * A transaction over keyed tables: writes go to copies (copy-on-write per table) and are logged;
 * `commit` replays the log onto fresh copies of the current tables, so nothing changes unless all of it applies.
 */
export class StagedWrites {
  readonly #current: (physical: string) => KeyedTable | undefined;
  readonly #staged = new Map<string, KeyedTable>();
  readonly #log: { physical: string; op: TableOp }[] = [];

  constructor(current: (physical: string) => KeyedTable | undefined) {
    this.#current = current;
  }

  /** A writer staging into copies; `load` finds (and caches) the current table of an entity set, or throws if it is missing. */
  writer(load: (entity: EntitySchema, set: string) => Promise<KeyedTable>, provider: string): DataWriter {
    const run = async (entity: EntitySchema, set: string, op: TableOp) => {
      const physical = physicalName(entity, set);
      let table = this.#staged.get(physical);
      if (!table) table = (await load(entity, set)).clone();
      const result = table.apply(op);
      this.#staged.set(physical, table);
      this.#log.push({ physical, op });
      return result;
    };
    return {
      importBatch: async (entity, set, records, options) => {
        // Refused (an unsupported key, a json value JavaScript would change) before anything is staged.
        assertSingleKey(entity, provider);
        const copies = records.map((r) => copyRecord(entity, r));
        return (await run(entity, set, { kind: 'import', records: copies, options })) as ImportResult;
      },
      clear: async (entity, set) => (await run(entity, set, { kind: 'clear' })) as number,
      remove: async (entity, set, keys) => (await run(entity, set, { kind: 'remove', keys: [...keys] })) as number,
    };
  }

  /** The new tables to install, computed from the current ones; throws (changing nothing) if a write no longer applies. */
  replay(): Map<string, KeyedTable> {
    const fresh = new Map<string, KeyedTable>();
    for (const { physical, op } of this.#log) {
      let table = fresh.get(physical);
      if (!table) {
        const base = this.#current(physical);
        if (!base) throw new DataError('TABLE_MISSING', `${physical} was removed during the transaction`);
        table = base.clone();
        fresh.set(physical, table);
      }
      table.apply(op);
    }
    return fresh;
  }
}

export function tableMissing(provider: string, entity: EntitySchema, set: string): DataError {
  return new DataError(
    'TABLE_MISSING',
    `[${provider}] ${entity.name} set "${set}" does not exist: call ensureEntity(entity, "${set}") before writing.`,
    { details: { entity: entity.name, set } },
  );
}

export function checkBatchSize(batchSize: number): number {
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new TypeError(`batchSize must be a positive integer, got ${batchSize}`);
  return batchSize;
}

// Internal: the adapter logic shared by the memory and JSON-file adapters. Subclasses only say how a
// table is loaded and persisted; reads, key order, sets, snapshots and staged transactions live here.
import type {
  AdapterCapabilities,
  Consistency,
  DataAdapter,
  DataReader,
  DataWriter,
  ExportOptions,
  ImportOptions,
  ImportResult,
  StoreDescription,
} from '../adapter.js';
import { checkBatchBytes } from '../batch-bytes.js';
import { throwIfAborted } from '../errors.js';
import { assertSingleKey, type EntitySchema, physicalName, ROOT_SET, setFromPhysicalName } from '../schema.js';
import type { DataRecord, KeyValue } from '../types.js';
import { checkBatchSize, copyRecord, KeyedTable, StagedWrites, type TableOp, tableMissing } from './_keyed-table.js';

export abstract class KeyedTablesAdapter implements DataAdapter {
  abstract readonly provider: string;
  abstract readonly capabilities: AdapterCapabilities;
  /** Loaded tables by physical name. */
  protected readonly tables = new Map<string, KeyedTable>();
  readonly #snapshots = new Set<Map<string, KeyedTable>>();

  /** Reads a table from the store, or undefined if it does not exist there. */
  protected abstract load(entity: EntitySchema, physical: string): Promise<KeyedTable | undefined>;
  /** Makes the given tables durable (all of them, or throws). */
  protected abstract persist(changed: ReadonlyMap<string, KeyedTable>): Promise<void>;
  /** Physical names of every table in the store, loaded or not. */
  protected abstract storedNames(): Promise<string[]>;
  protected abstract location(physical: string): string;

  async init(): Promise<void> {}

  async close(): Promise<void> {
    this.tables.clear();
  }

  /**
   * Every read and write goes through here: an entity keyed otherwise than by one string, uuid or integer field (a
   * composite key, no primary key, a bigint/decimal/date... key) is refused by name before anything is read or written.
   */
  protected async table(entity: EntitySchema, set: string): Promise<KeyedTable | undefined> {
    assertSingleKey(entity, this.provider);
    const physical = physicalName(entity, set);
    const loaded = this.tables.get(physical);
    if (loaded) return loaded;
    const table = await this.load(entity, physical);
    if (!table) return undefined;
    const raced = this.tables.get(physical);
    if (raced) return raced;
    this.tables.set(physical, table);
    // A table first loaded while a snapshot is open is still as it was when the snapshot began.
    for (const snapshot of this.#snapshots) if (!snapshot.has(physical)) snapshot.set(physical, table.clone());
    return table;
  }

  async #existing(entity: EntitySchema, set: string): Promise<KeyedTable> {
    const table = await this.table(entity, set);
    if (!table) throw tableMissing(this.provider, entity, set);
    return table;
  }

  async ensureEntity(entity: EntitySchema, set: string): Promise<void> {
    assertSingleKey(entity, this.provider);
    if (await this.table(entity, set)) return;
    const physical = physicalName(entity, set);
    const table = new KeyedTable(entity);
    this.tables.set(physical, table);
    await this.#persist(new Map([[physical, table]]));
  }

  async #persist(changed: Map<string, KeyedTable>): Promise<void> {
    try {
      await this.persist(changed);
    } catch (e) {
      // Memory and store may now differ: reload from the store on next use.
      for (const physical of changed.keys()) this.tables.delete(physical);
      throw e;
    }
  }

  async #write(entity: EntitySchema, set: string, op: TableOp): Promise<ImportResult | number> {
    const table = await this.#existing(entity, set);
    const result = table.apply(op);
    await this.#persist(new Map([[physicalName(entity, set), table]]));
    return result;
  }

  async importBatch(
    entity: EntitySchema,
    set: string,
    records: readonly DataRecord[],
    options: ImportOptions,
  ): Promise<ImportResult> {
    throwIfAborted(options.signal);
    return (await this.#write(entity, set, { kind: 'import', records, options })) as ImportResult;
  }

  async clear(entity: EntitySchema, set: string): Promise<number> {
    return (await this.#write(entity, set, { kind: 'clear' })) as number;
  }

  async remove(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<number> {
    return (await this.#write(entity, set, { kind: 'remove', keys })) as number;
  }

  exportEntity(entity: EntitySchema, set: string, options: ExportOptions = {}): AsyncIterable<DataRecord[]> {
    return exportPages(entity, () => this.table(entity, set), options);
  }

  async count(entity: EntitySchema, set: string): Promise<number> {
    return (await this.table(entity, set))?.rows.size ?? 0;
  }

  async get(entity: EntitySchema, set: string, key: KeyValue): Promise<DataRecord | undefined> {
    const record = (await this.table(entity, set))?.rows.get(key);
    return record && copyRecord(entity, record);
  }

  async getMany(entity: EntitySchema, set: string, keys: readonly KeyValue[]): Promise<DataRecord[]> {
    const table = await this.table(entity, set);
    if (!table) return [];
    const out: DataRecord[] = [];
    for (const key of keys) {
      const record = table.rows.get(key);
      if (record) out.push(copyRecord(entity, record));
    }
    return out;
  }

  async listSets(entity: EntitySchema): Promise<string[]> {
    const names = new Set([...this.tables.keys(), ...(await this.storedNames())]);
    const sets: string[] = [];
    for (const name of names) {
      const set = setFromPhysicalName(entity, name);
      if (set !== undefined) sets.push(set);
    }
    return sets.sort((a, b) => (a === ROOT_SET ? -1 : b === ROOT_SET ? 1 : a < b ? -1 : a > b ? 1 : 0));
  }

  async describe(entity: EntitySchema, set: string): Promise<StoreDescription> {
    const physical = physicalName(entity, set);
    return {
      provider: this.provider,
      location: this.location(physical),
      exists: (await this.table(entity, set)) !== undefined,
      columns: Object.entries(entity.fields).map(([name, spec]) => ({
        name,
        storeType: spec.type,
        nullable: spec.nullable || spec.optional,
      })),
      primaryKey: [entity.key],
    };
  }

  async readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: Consistency }) => Promise<T>): Promise<T> {
    const snapshot = new Map<string, KeyedTable>();
    for (const [physical, table] of this.tables) snapshot.set(physical, table.clone());
    this.#snapshots.add(snapshot);
    const resolve = async (entity: EntitySchema, set: string) => {
      const physical = physicalName(entity, set);
      const seen = snapshot.get(physical);
      if (seen) return seen;
      // Loaded after the snapshot began without being loaded by it: created since, so absent from the snapshot.
      if (this.tables.has(physical)) return undefined;
      await this.table(entity, set);
      return snapshot.get(physical);
    };
    const reader = {
      consistency: 'snapshot' as const,
      exportEntity: (entity: EntitySchema, set: string, options: ExportOptions = {}) =>
        exportPages(entity, () => resolve(entity, set), options),
      count: async (entity: EntitySchema, set: string) => (await resolve(entity, set))?.rows.size ?? 0,
    };
    try {
      return await fn(reader);
    } finally {
      this.#snapshots.delete(snapshot);
    }
  }

  async transaction<T>(fn: (writer: DataWriter) => Promise<T>): Promise<T> {
    const staged = new StagedWrites((physical) => this.tables.get(physical));
    const result = await fn(staged.writer((entity, set) => this.#existing(entity, set), this.provider));
    const fresh = staged.replay();
    for (const [physical, table] of fresh) this.tables.set(physical, table);
    if (fresh.size) await this.#persist(fresh);
    return result;
  }
}

async function* exportPages(
  entity: EntitySchema,
  resolve: () => Promise<KeyedTable | undefined>,
  options: ExportOptions,
): AsyncGenerator<DataRecord[]> {
  const size = checkBatchSize(options.batchSize ?? 1000);
  const bytes = checkBatchBytes(options.batchBytes);
  let after: KeyValue | undefined;
  for (;;) {
    throwIfAborted(options.signal);
    const table = await resolve();
    if (!table) return;
    // A page stops at the byte budget as at the count: the next one starts after its last key.
    const page = table.page(after, size, bytes);
    if (page.length === 0) return;
    after = page[page.length - 1]![entity.key] as KeyValue;
    yield page;
  }
}

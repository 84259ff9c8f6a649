import type { DataAdapter, ImportResult } from './adapter.js';
import { normalizeRecord, normalizeValue } from './codec.js';
import { DataError } from './errors.js';
import type { FieldsShape, InferInput, InferRecord } from './fields.js';
import { type DataRuntime, getDataRuntime } from './runtime.js';
import { assertSetName, type EntitySchema, KEY_FIELD_TYPES, type KeyType, ROOT_SET } from './schema.js';
import type { KeyValue } from './types.js';

export interface EntityOptions<S extends FieldsShape, K extends keyof S & string> {
  /** Stable name, used in archives. Letters, digits and `_`. */
  readonly name: string;
  /**
   * The key field: a required field of an ordered type. `string`, `uuid` and `integer` keys work on every provider;
   * others (`bigint`, `decimal`, `date`...) on SQLite, PostgreSQL and MariaDB/MySQL.
   */
  readonly key: K;
  readonly fields: S;
  /** Source the entity lives in. Default `default`. */
  readonly source?: string;
  /** Table/collection name in the store, if it differs from `name`. */
  readonly table?: string;
}

/** Operations of an entity within one set. */
export class EntitySet<S extends FieldsShape = FieldsShape> {
  readonly entity: Entity<S>;
  readonly setName: string;

  constructor(entity: Entity<S>, set: string) {
    assertSetName(set);
    this.entity = entity;
    this.setName = set;
  }

  async #adapter(): Promise<DataAdapter> {
    const adapter = await this.entity.runtime().adapter(this.entity.schema.source);
    await this.entity.ensure(adapter, this.setName);
    return adapter;
  }

  #key(key: unknown): KeyValue {
    const schema = this.entity.schema;
    return normalizeValue(schema.name, schema.key, schema.fields[schema.key]!, key) as KeyValue;
  }

  async get(key: InferRecord<S>[keyof InferRecord<S>] | KeyValue): Promise<InferRecord<S> | undefined> {
    return (await (await this.#adapter()).get(this.entity.schema, this.setName, this.#key(key))) as
      | InferRecord<S>
      | undefined;
  }

  async getMany(keys: readonly KeyValue[]): Promise<InferRecord<S>[]> {
    const normalized = keys.map((k) => this.#key(k));
    return (await (await this.#adapter()).getMany(this.entity.schema, this.setName, normalized)) as InferRecord<S>[];
  }

  /** Every record, in key order. For large sets prefer `stream()`. */
  async all(): Promise<InferRecord<S>[]> {
    const out: InferRecord<S>[] = [];
    for await (const batch of this.stream()) out.push(...batch);
    return out;
  }

  /** Batches of records in key order; `break` releases the underlying cursor. */
  async *stream(
    options: { batchSize?: number; batchBytes?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<InferRecord<S>[]> {
    const adapter = await this.#adapter();
    yield* adapter.exportEntity(this.entity.schema, this.setName, options) as AsyncIterable<InferRecord<S>[]>;
  }

  async count(): Promise<number> {
    return (await this.#adapter()).count(this.entity.schema, this.setName);
  }

  async upsert(record: InferInput<S>): Promise<InferRecord<S>> {
    const [saved] = await this.upsertMany([record]);
    return saved!;
  }

  /** Validates every record first, so one bad record writes nothing. */
  async upsertMany(records: readonly InferInput<S>[]): Promise<InferRecord<S>[]> {
    const normalized = records.map((r) => normalizeRecord(this.entity.schema, r as Record<string, unknown>));
    const adapter = await this.#adapter();
    await adapter.transaction((tx) => tx.importBatch(this.entity.schema, this.setName, normalized, { mode: 'upsert' }));
    return normalized as InferRecord<S>[];
  }

  /** Inserts; fails with `DUPLICATE_KEY` if a key exists. */
  async insertMany(records: readonly InferInput<S>[]): Promise<ImportResult> {
    const normalized = records.map((r) => normalizeRecord(this.entity.schema, r as Record<string, unknown>));
    const adapter = await this.#adapter();
    return adapter.transaction((tx) =>
      tx.importBatch(this.entity.schema, this.setName, normalized, { mode: 'insert' }),
    );
  }

  async remove(key: KeyValue): Promise<boolean> {
    return (await this.removeMany([key])) > 0;
  }

  async removeMany(keys: readonly KeyValue[]): Promise<number> {
    const normalized = keys.map((k) => this.#key(k));
    return (await this.#adapter()).remove(this.entity.schema, this.setName, normalized);
  }

  /** Removes every record of this set. */
  async removeAll(): Promise<number> {
    return (await this.#adapter()).clear(this.entity.schema, this.setName);
  }
}

/**
 * An entity: a runtime schema plus data operations on its `root` set.
 * Create with {@link defineEntity}; it is then discoverable with no further configuration.
 */
export class Entity<S extends FieldsShape = FieldsShape> extends EntitySet<S> {
  readonly schema: EntitySchema;
  readonly shape: S;
  #runtime: DataRuntime | undefined;
  #ensured = new WeakMap<DataAdapter, Set<string>>();

  constructor(schema: EntitySchema, shape: S, runtime?: DataRuntime) {
    super(undefined as unknown as Entity<S>, ROOT_SET);
    (this as { entity: Entity<S> }).entity = this;
    this.schema = schema;
    this.shape = shape;
    this.#runtime = runtime;
  }

  get name(): string {
    return this.schema.name;
  }

  /** The runtime this entity uses: its own if bound with `withRuntime`, else the process-wide one. */
  runtime(): DataRuntime {
    return this.#runtime ?? getDataRuntime();
  }

  /** A view of this entity bound to another runtime (tests, migrations between environments). */
  withRuntime(runtime: DataRuntime): Entity<S> {
    return new Entity(this.schema, this.shape, runtime);
  }

  /** Operations scoped to a named set (partition). `root` is the default set. */
  set(name: string): EntitySet<S> {
    return name === ROOT_SET ? this : new EntitySet(this, name);
  }

  /** Makes sure the table/collection of `set` exists in `adapter` (once per adapter and set). */
  async ensure(adapter: DataAdapter, set: string): Promise<void> {
    let sets = this.#ensured.get(adapter);
    if (!sets) {
      sets = new Set();
      this.#ensured.set(adapter, sets);
    }
    if (sets.has(set)) return;
    await adapter.ensureEntity(this.schema, set);
    sets.add(set);
  }
}

/** The record type of an entity: `type User = RecordOf<typeof User>`. */
export type RecordOf<E> = E extends Entity<infer S> ? InferRecord<S> : never;
export type InputOf<E> = E extends Entity<infer S> ? InferInput<S> : never;

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * The entity registry, shared by every copy of `@koan/data` loaded in the process: a project's own copy (where its
 * `defineEntity` calls run) and the copy of a CLI installed elsewhere (npx, global) see the same entities. Copies of
 * another major version refuse to share it, loudly, rather than read entities they do not understand.
 */
const REGISTRY_MAJOR = 0;
const REGISTRY_KEY = Symbol.for('koan.data.entity-registry');
const registry = ((): Map<string, Entity> => {
  const holder = globalThis as { [REGISTRY_KEY]?: { major: number; entities: Map<string, Entity> } };
  const shared = holder[REGISTRY_KEY];
  if (!shared) {
    const entities = new Map<string, Entity>();
    holder[REGISTRY_KEY] = { major: REGISTRY_MAJOR, entities };
    return entities;
  }
  if (shared.major !== REGISTRY_MAJOR)
    throw new DataError(
      'INCOMPATIBLE_COPIES',
      `Two incompatible copies of @koan/data are loaded (registry version ${shared.major} and ${REGISTRY_MAJOR}): install one version of @koan/data in the project and the CLI (npm ls @koan/data shows them).`,
    );
  return shared.entities;
})();

/**
 * Defines an entity and registers it for discovery.
 *
 * @example
 * export const User = defineEntity({
 *   name: 'User',
 *   key: 'id',
 *   fields: { id: t.uuid(), email: t.string(), joinedAt: t.datetime(), score: t.decimal().nullable() },
 * });
 * type User = RecordOf<typeof User>;
 * await User.upsert({ id: crypto.randomUUID(), email: 'a@b.c', joinedAt: new Date(), score: '1.50' });
 */
export function defineEntity<S extends FieldsShape, K extends keyof S & string>(
  options: EntityOptions<S, K>,
): Entity<S> {
  const schema = buildSchema(options, 'declared');
  const entity = new Entity(schema, options.fields);
  const existing = registry.get(schema.name);
  if (existing && JSON.stringify(existing.schema) !== JSON.stringify(schema))
    throw new DataError(
      'DUPLICATE_ENTITY',
      `Entity "${schema.name}" is defined twice with different schemas. Entity names must be unique.`,
      {
        details: { entity: schema.name },
      },
    );
  registry.set(schema.name, entity as unknown as Entity);
  return entity;
}

export function buildSchema(
  options: {
    name: string;
    /** The key field; empty (or absent) with `keyless`. */
    key?: string;
    fields: FieldsShape | EntitySchema['fields'];
    source?: string;
    table?: string;
    /** A composite primary key, in order; its first column must be `key` (see `EntitySchema.keyFields`). */
    keyFields?: readonly string[];
    /** A table without a primary key (see `EntitySchema.keyless`). */
    keyless?: boolean;
    /** The store namespace of the table (see `EntitySchema.namespace`). */
    namespace?: string;
  },
  origin: EntitySchema['origin'],
): EntitySchema {
  if (!NAME.test(options.name))
    throw new DataError(
      'INVALID_ENTITY',
      `Entity name ${JSON.stringify(options.name)} is invalid: use letters, digits and _ (max 63), starting with a letter.`,
    );
  const fields = Object.fromEntries(
    Object.entries(options.fields).map(([name, f]) => [
      name,
      'spec' in f ? (f as { spec: EntitySchema['fields'][string] }).spec : f,
    ]),
  ) as EntitySchema['fields'];
  const common = {
    fields: Object.freeze(fields),
    source: options.source ?? 'default',
    ...(options.table ? { table: options.table } : {}),
    ...(options.namespace ? { namespace: options.namespace } : {}),
    origin,
  };
  if (options.keyless) {
    if (options.key || options.keyFields?.length)
      throw new DataError('INVALID_ENTITY', `Entity ${options.name}: a keyless entity has no key or keyFields.`);
    return Object.freeze({ name: options.name, key: '', keyType: 'none' as const, keyless: true, ...common });
  }
  const key = options.key ?? '';
  const keyField = Object.hasOwn(fields, key) ? fields[key] : undefined;
  if (!keyField)
    throw new DataError(
      'INVALID_ENTITY',
      `Entity ${options.name}: key "${key}" is not one of its fields (${Object.keys(fields).join(', ')}).`,
    );
  if (!KEY_FIELD_TYPES.has(keyField.type) || keyField.optional || keyField.nullable)
    throw new DataError(
      'INVALID_ENTITY',
      `Entity ${options.name}: key "${key}" must be a required field of an ordered type (${[...KEY_FIELD_TYPES].join(', ')}), not ${keyField.type}${keyField.optional ? ' optional' : ''}${keyField.nullable ? ' nullable' : ''}.`,
    );
  const keyFields = options.keyFields && options.keyFields.length > 1 ? options.keyFields : undefined;
  if (keyFields) {
    if (keyFields[0] !== key || new Set(keyFields).size !== keyFields.length)
      throw new DataError(
        'INVALID_ENTITY',
        `Entity ${options.name}: keyFields must start with the key "${key}" and name each field once, got ${keyFields.join(', ')}.`,
      );
    for (const name of keyFields) {
      const f = Object.hasOwn(fields, name) ? fields[name] : undefined;
      if (!f || !KEY_FIELD_TYPES.has(f.type) || f.optional || f.nullable)
        throw new DataError(
          'INVALID_ENTITY',
          `Entity ${options.name}: key field "${name}" must be a required field of an ordered type (${[...KEY_FIELD_TYPES].join(', ')}).`,
        );
    }
  }
  return Object.freeze({
    name: options.name,
    key,
    keyType: keyField.type as KeyType,
    ...(keyFields ? { keyFields: Object.freeze([...keyFields]) } : {}),
    ...common,
  });
}

/** Every entity defined in this process, by name. */
export function registeredEntities(): Entity[] {
  return [...registry.values()];
}

export function getEntity(name: string): Entity | undefined {
  return registry.get(name);
}

/** Removes an entity from discovery (tests, hot reload). */
export function unregisterEntity(name: string): void {
  registry.delete(name);
}

/** Registers an entity built from an introspected schema, so it is discovered like declared ones. */
export function registerSchema(schema: EntitySchema): Entity {
  const existing = registry.get(schema.name);
  if (existing) return existing;
  const entity = new Entity(schema, {} as FieldsShape);
  registry.set(schema.name, entity);
  return entity;
}

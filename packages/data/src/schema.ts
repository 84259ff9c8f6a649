import { DataError } from './errors.js';
import { FIELD_TYPES, type FieldSpec, type FieldType } from './fields.js';
import type { KeyValue } from './types.js';

/**
 * The type of an entity's key field (its first column for a composite key), or `none` for a table without a primary
 * key (see {@link EntitySchema.keyless}). Declared entities use `string`, `uuid`, `integer` or `bigint`; tables of an
 * existing database may have keys of any orderable type.
 */
export type KeyType =
  | 'string'
  | 'uuid'
  | 'integer'
  | 'bigint'
  | 'decimal'
  | 'date'
  | 'datetime'
  | 'boolean'
  | 'number'
  | 'binary'
  | 'none';

/** Every key type, in the order the docs list them. */
export const KEY_TYPES: readonly KeyType[] = [
  'string',
  'uuid',
  'integer',
  'bigint',
  'decimal',
  'date',
  'datetime',
  'boolean',
  'number',
  'binary',
  'none',
];

/**
 * The serialisable schema of an entity. This is what discovery returns and what a backup stores in
 * `verification/schema-snapshots.json`, so it must stay plain JSON.
 */
export interface EntitySchema {
  /** Stable entity name: the name used in archives. */
  readonly name: string;
  /**
   * Name of the key field; for a composite key, its first column (see {@link EntitySchema.keyFields}). Empty for a
   * table without a primary key ({@link EntitySchema.keyless}).
   */
  readonly key: string;
  /** Type of the `key` field. */
  readonly keyType: KeyType;
  /**
   * Every column of a composite primary key, in key order, when it has more than one; `keyFields[0] === key`.
   * Absent for single-field keys. Adapters order and page by the whole tuple, and upsert on it.
   * Records are still addressed by `get`/`getMany`/`remove` through `key` alone (see each adapter).
   *
   * @example
   * // Chinook's PlaylistTrack: PRIMARY KEY (PlaylistId, TrackId)
   * { name: 'PlaylistTrack', key: 'PlaylistId', keyFields: ['PlaylistId', 'TrackId'], keyType: 'integer', ... }
   */
  readonly keyFields?: readonly string[];
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /**
   * A table of an existing database that has no primary key: `key` is empty and `keyType` is `none`. Every row is
   * backed up (in the store's order); a restore only inserts (a merge by key is refused) and `replaceExisting` empties
   * the table first. SQL stores only.
   */
  readonly keyless?: boolean;
  /** Source (provider instance) the entity lives in. */
  readonly source: string;
  /** Table/collection name in the store for the `root` set; defaults to `name`. */
  readonly table?: string;
  /**
   * The store namespace the table is in, when not the source's default: a PostgreSQL schema such as `billing`.
   * Introspection sets it for tables outside the default schema; a restore writes them into the same namespace.
   */
  readonly namespace?: string;
  /** Where this schema came from: declared in code, or introspected from an existing store. */
  readonly origin: 'declared' | 'introspected';
}

export const ROOT_SET = 'root';

const SET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/;

/** Validates a set name, so sets can be encoded safely in table names, keys and archive paths. */
export function assertSetName(set: string): void {
  if (!SET_NAME.test(set))
    throw new DataError(
      'INVALID_NAME',
      `Invalid set name ${JSON.stringify(set)}: use 1-63 characters from A-Z a-z 0-9 _ . - (not starting with . or -), e.g. "archive-2024".`,
      { details: { set } },
    );
}

/**
 * The physical name of an entity's set in a store: `table` for the root set, `table#set` otherwise.
 * Adapters that keep sets as separate tables/collections use this so sets look the same everywhere.
 */
export function physicalName(schema: EntitySchema, set: string): string {
  const base = schema.table ?? schema.name;
  return set === ROOT_SET ? base : `${base}#${set}`;
}

/**
 * Entity names for existing tables, for introspection: a table name that is not a valid entity name (letters,
 * digits, `_`; at most 63) has every other character replaced by `_`, and clashes get `_2`, `_3`... The entity
 * keeps its real table in `table`, so `"Order Items"` is entity `Order_Items` stored in table `"Order Items"`.
 * `taken` holds names already in use (they are added to it).
 */
export function entityNamesForTables(tables: readonly string[], taken = new Set<string>()): Map<string, string> {
  const names = new Map<string, string>();
  for (const table of tables) {
    const cleaned = table.replace(/[^A-Za-z0-9_]/g, '_');
    const base = (/^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`).slice(0, 63);
    let name = base;
    for (let i = 2; taken.has(name); i++) name = `${base.slice(0, 63 - String(i).length - 1)}_${i}`;
    taken.add(name);
    names.set(table, name);
  }
  return names;
}

/** Prefix of the column notes SQL adapters write on the columns they create (see {@link fieldNote}). */
export const FIELD_NOTE_PREFIX = 'koan:';
const NOTE_TYPES: ReadonlySet<string> = new Set(FIELD_TYPES);

/**
 * The declared field a column was created for, as a short note SQL adapters store on the column (a column comment):
 * introspection reads it back (`fieldFromNote`), so a table Koan created keeps its exact field types, optional vs
 * nullable and vector dimensions when it is backed up again with no code at hand.
 */
export function fieldNote(spec: FieldSpec): string {
  const { type, optional, nullable, precision, scale, dimension, metric, ttl, unsigned } = spec;
  return `${FIELD_NOTE_PREFIX}${JSON.stringify({ type, optional, nullable, precision, scale, dimension, metric, ttl, unsigned })}`;
}

/** The field a {@link fieldNote} describes; undefined for any other text (a comment someone else wrote). */
export function fieldFromNote(note: string | null | undefined): FieldSpec | undefined {
  if (!note?.startsWith(`${FIELD_NOTE_PREFIX}{`)) return undefined;
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(note.slice(FIELD_NOTE_PREFIX.length)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const int = (x: unknown) => (Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : undefined);
  if (!NOTE_TYPES.has(String(v.type)) || typeof v.optional !== 'boolean' || typeof v.nullable !== 'boolean')
    return undefined;
  const precision = int(v.precision);
  const scale = int(v.scale);
  const dimension = int(v.dimension);
  return Object.freeze({
    type: v.type as FieldType,
    optional: v.optional,
    nullable: v.nullable,
    ...(precision !== undefined ? { precision } : {}),
    ...(scale !== undefined ? { scale } : {}),
    ...(dimension !== undefined ? { dimension } : {}),
    ...(typeof v.metric === 'string' ? { metric: v.metric } : {}),
    ...(v.ttl === true ? { ttl: true } : {}),
    ...(v.unsigned === true && v.type === 'bigint' ? { unsigned: true } : {}),
  });
}

/** Inverse of {@link physicalName}: the set a physical name belongs to, or undefined if it is not this entity's. */
export function setFromPhysicalName(schema: EntitySchema, physical: string): string | undefined {
  const base = schema.table ?? schema.name;
  if (physical === base) return ROOT_SET;
  if (physical.startsWith(`${base}#`)) return physical.slice(base.length + 1);
  return undefined;
}

export function keySpec(schema: EntitySchema): FieldSpec {
  const spec = schema.keyless ? undefined : schema.fields[schema.key];
  if (!spec)
    throw new TypeError(
      schema.keyless
        ? `Entity ${schema.name} has no primary key`
        : `Entity ${schema.name}: key field "${schema.key}" is not among its fields`,
    );
  return spec;
}

/** The key columns of an entity, in key order: `keyFields` for a composite key, `[]` for a keyless table, else `[key]`. */
export function keyFieldsOf(schema: EntitySchema): readonly string[] {
  if (schema.keyless) return [];
  return schema.keyFields && schema.keyFields.length > 1 ? schema.keyFields : [schema.key];
}

/** A record's key for messages: the key value, `(a, b)` for a composite key, `(no primary key)` for a keyless table. */
export function describeKey(schema: EntitySchema, record: Readonly<Record<string, unknown>>): string {
  const fields = keyFieldsOf(schema);
  if (fields.length === 0) return '(no primary key)';
  const values = fields.map((f) => String(record[f]));
  return fields.length === 1 ? values[0]! : `(${values.join(', ')})`;
}

/** Field types a key field may have: every type with an order (not json or vector). */
export const KEY_FIELD_TYPES: ReadonlySet<FieldType> = new Set([
  'string',
  'uuid',
  'integer',
  'bigint',
  'decimal',
  'date',
  'datetime',
  'boolean',
  'number',
  'binary',
]);

/** Key types every adapter supports (the others need a SQL store: SQLite, PostgreSQL, MariaDB/MySQL). */
const SIMPLE_KEY_TYPES: ReadonlySet<KeyType> = new Set(['string', 'uuid', 'integer']);

/**
 * Compares two keys in the order every adapter streams string, uuid and integer keys in: numeric for integers (and
 * bigints), UTF-8 byte order for strings.
 */
export function compareKeyValues(a: KeyValue, b: KeyValue): number {
  if (typeof a !== 'string' && typeof b !== 'string') return a < b ? -1 : a > b ? 1 : 0;
  return Buffer.compare(Buffer.from(String(a), 'utf8'), Buffer.from(String(b), 'utf8'));
}

/**
 * For adapters that key records by a single string, uuid or integer field (memory, JSON files, Redis, LanceDB):
 * refuses a composite key (`keyFields`), a table without a primary key and other key types with an error that says
 * which providers support them, instead of silently keying by the first column or by the key's text.
 */
export function assertSingleKey(entity: EntitySchema, provider: string): void {
  if (entity.keyless)
    throw new DataError(
      'UNSUPPORTED_KEY',
      `Entity ${entity.name} has no primary key, which the ${provider} adapter needs. Restore it into SQLite, PostgreSQL or MariaDB/MySQL.`,
      { details: { entity: entity.name, provider } },
    );
  if (!SIMPLE_KEY_TYPES.has(entity.keyType))
    throw new DataError(
      'UNSUPPORTED_KEY',
      `Entity ${entity.name} has a ${entity.keyType} key, which the ${provider} adapter does not support (string, uuid or integer keys only). Restore it into SQLite, PostgreSQL or MariaDB/MySQL.`,
      { details: { entity: entity.name, provider, keyType: entity.keyType } },
    );
  if ((entity.keyFields?.length ?? 0) > 1)
    throw new DataError(
      'UNSUPPORTED_KEY',
      `Entity ${entity.name} has a composite key (${entity.keyFields!.join(', ')}), which the ${provider} adapter does not support. Restore it into SQLite, PostgreSQL or MariaDB/MySQL.`,
      { details: { entity: entity.name, provider } },
    );
}

/**
 * Field builders: the runtime schema of an entity, from which its static type is inferred.
 *
 * | builder        | runtime value (what `get` returns)                      |
 * |----------------|----------------------------------------------------------|
 * | `t.string()`   | `string`                                                 |
 * | `t.uuid()`     | `string` (lower-case canonical form)                     |
 * | `t.integer()`  | `number` (a safe integer)                                |
 * | `t.number()`   | `number` (IEEE-754 double)                               |
 * | `t.bigint()`   | `bigint` (signed 64-bit range; `unsigned`: 0 to 2^64-1)  |
 * | `t.decimal()`  | `string` (exact decimal text, e.g. `"12.50"`)            |
 * | `t.boolean()`  | `boolean`                                                |
 * | `t.datetime()` | `string` ISO-8601 UTC with microseconds: `2024-05-01T10:00:00.123456Z` (a `Date` is accepted on write); also `infinity`, `-infinity`, years outside 1-9999 as `+010000-01-01T...`/`-000043-...` and MySQL zero dates (see codec.ts) |
 * | `t.date()`     | `string` `YYYY-MM-DD` (same special forms as datetime)   |
 * | `t.json()`     | any JSON value; backups and restores carry a `JsonText` (the exact text) |
 * | `t.binary()`   | `Uint8Array`                                             |
 * | `t.vector(n)`  | `Float32Array` of length `n`                             |
 */

/** Every field type, in the order the docs list them. */
export const FIELD_TYPES = [
  'string',
  'uuid',
  'integer',
  'number',
  'bigint',
  'decimal',
  'boolean',
  'datetime',
  'date',
  'json',
  'binary',
  'vector',
] as const;

export type FieldType = (typeof FIELD_TYPES)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface FieldValueMap {
  string: string;
  uuid: string;
  integer: number;
  number: number;
  bigint: bigint;
  decimal: string;
  boolean: boolean;
  datetime: string;
  date: string;
  json: JsonValue;
  binary: Uint8Array;
  vector: Float32Array;
}

/** The serialisable description of one field, as stored in schema snapshots. */
export interface FieldSpec {
  readonly type: FieldType;
  /** The field may be absent from a record. */
  readonly optional: boolean;
  /** The field may hold `null`. */
  readonly nullable: boolean;
  /** Vector dimension (vector fields only). */
  readonly dimension?: number;
  /** Vector distance metric, where the store has one (`l2`, `cosine`, `dot`). */
  readonly metric?: string;
  /** bigint fields only: the range is 0 to 2^64-1 instead of the signed 64-bit range (MySQL `BIGINT UNSIGNED`). */
  readonly unsigned?: boolean;
  /**
   * The store computes this column from others (a generated column, `stored` or `virtual`). Backups carry its values;
   * restores never write it into a table where it is generated (it is computed there), and write it as an ordinary
   * column elsewhere.
   */
  readonly generated?: 'stored' | 'virtual';
  /** Decimal precision and scale, for stores that need them (default 38, 10 in SQL DDL). */
  readonly precision?: number;
  readonly scale?: number;
  /**
   * A `string` field over a column that holds values of any type, each keeping its own: a SQLite column declared
   * without a type, or `ANY` in a STRICT table (introspection sets it; there is no builder). Its values are the SQLite
   * literals of the stored values: `5` (INTEGER), `1.5`, `1.0`, `-0.0`, `9.0e+999` (REAL: the shortest text of the
   * double, always with a point), `'it''s'` (TEXT), `X'00FF'` (BLOB); NULL is `null`. Only a store with
   * `capabilities.dynamicValues` (SQLite) writes them, each with its own storage class; a restore into any other
   * store is refused naming the field (`UNSUPPORTED_VALUE`).
   */
  readonly dynamic?: boolean;
  /** Declared foreign key: this field holds the key of another entity. */
  readonly references?: { readonly entity: string; readonly field: string };
  /** Human description, carried into schema snapshots. */
  readonly description?: string;
  /**
   * This datetime field is the record's expiry moment (see {@link Field.ttl}). Stores with native TTL
   * (Redis) expire the record then and report the store's expiry through the field on export.
   */
  readonly ttl?: boolean;
}

/** A field builder. Chain `.optional()`, `.nullable()`, `.references()`; every call returns a new builder. */
export class Field<T extends FieldType, Opt extends boolean = false, Null extends boolean = false> {
  readonly spec: FieldSpec;
  declare readonly _value: FieldValueMap[T];
  declare readonly _optional: Opt;
  declare readonly _nullable: Null;

  constructor(spec: FieldSpec) {
    this.spec = Object.freeze({ ...spec });
  }

  /** The field may be missing from a record (distinct from `null`). */
  optional(): Field<T, true, Null> {
    return new Field({ ...this.spec, optional: true });
  }

  /** The field may be `null`. */
  nullable(): Field<T, Opt, true> {
    return new Field({ ...this.spec, nullable: true });
  }

  /** Declares that this field holds the key of `entity` (used to order restores by dependency). */
  references(entity: string, field = 'id'): Field<T, Opt, Null> {
    return new Field({ ...this.spec, references: { entity, field } });
  }

  describe(description: string): Field<T, Opt, Null> {
    return new Field({ ...this.spec, description });
  }

  /**
   * Marks an optional or nullable datetime field as the record's time to live: stores with native TTL
   * expire the record at that moment, and a backup carries it in this field so a restore sets it again.
   * Other stores keep it as a plain column.
   *
   * @example
   * const Session = defineEntity({ name: 'Session', key: 'id', fields: { id: t.string(), expiresAt: t.datetime().optional().ttl() } });
   */
  ttl(): Field<T, Opt, Null> {
    if (this.spec.type !== 'datetime')
      throw new TypeError(`.ttl() applies to t.datetime() fields, not ${this.spec.type}`);
    return new Field({ ...this.spec, ttl: true });
  }
}

function field<T extends FieldType>(type: T, extra: Partial<FieldSpec> = {}): Field<T> {
  return new Field<T>({ type, optional: false, nullable: false, ...extra });
}

export const t = Object.freeze({
  string: () => field('string'),
  uuid: () => field('uuid'),
  integer: () => field('integer'),
  number: () => field('number'),
  bigint: () => field('bigint'),
  decimal: (precision?: number, scale?: number) =>
    field('decimal', { ...(precision === undefined ? {} : { precision }), ...(scale === undefined ? {} : { scale }) }),
  boolean: () => field('boolean'),
  datetime: () => field('datetime'),
  date: () => field('date'),
  json: () => field('json'),
  binary: () => field('binary'),
  vector: (dimension: number, options: { metric?: 'l2' | 'cosine' | 'dot' } = {}) => {
    if (!Number.isInteger(dimension) || dimension <= 0)
      throw new TypeError(`t.vector(dimension): dimension must be a positive integer, got ${dimension}`);
    return field('vector', { dimension, ...(options.metric ? { metric: options.metric } : {}) });
  },
});

// biome-ignore lint/suspicious/noExplicitAny: a field of any shape
export type AnyField = Field<FieldType, any, any>;
export type FieldsShape = Record<string, AnyField>;

type FieldValue<F> =
  F extends Field<infer T, infer _O, infer N> ? FieldValueMap[T] | (N extends true ? null : never) : never;
type OptionalKeys<S extends FieldsShape> = {
  [K in keyof S]: S[K] extends Field<FieldType, true, boolean> ? K : never;
}[keyof S];
type RequiredKeys<S extends FieldsShape> = Exclude<keyof S, OptionalKeys<S>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The record type of a fields shape: optional fields become `?:`, nullable ones `| null`. */
export type InferRecord<S extends FieldsShape> = Simplify<
  { [K in RequiredKeys<S>]: FieldValue<S[K]> } & { [K in OptionalKeys<S>]?: FieldValue<S[K]> }
>;

/** What writes accept: like the record, but datetimes may be `Date`, binary may be any byte view, vectors number arrays. */
type InputValue<F> =
  F extends Field<infer T, infer _O, infer N>
    ?
        | (T extends 'datetime' ? string | Date : T extends 'vector' ? Float32Array | number[] : FieldValueMap[T])
        | (N extends true ? null : never)
    : never;
export type InferInput<S extends FieldsShape> = Simplify<
  { [K in RequiredKeys<S>]: InputValue<S[K]> } & { [K in OptionalKeys<S>]?: InputValue<S[K]> }
>;

/**
 * Rows of an entity in PostgreSQL: what a SELECT reads and how it becomes a record, what an INSERT or COPY writes into
 * the table as it exists (generated columns left out, JSON arrays into array columns, values a column cannot hold
 * refused before anything is written).
 */
import { DataError, type DataRecord, type EntitySchema, type FieldSpec } from '@koan/data';
import {
  describeKey,
  type ImportOptions,
  jsValueOf,
  keyFieldsOf,
  STREAM_PIECE_BYTES,
  throwIfAborted,
} from '@koan/data/adapter-kit';
import pg from 'pg';
import type copyStreams from 'pg-copy-streams';
import { jsonArrayLiteral, unholdableDate } from './pg-values.js';
import { INTEGER_RANGES, type Relation } from './postgres-catalog.js';
import { fromRow, q, readExpression, toCopyText, toParam } from './type-mapping.js';

export type Fields = readonly (readonly [string, FieldSpec])[];

/**
 * SQL has no "absent": an optional non-nullable field that is NULL reads back as absent, and for optional
 * nullable fields (where NULL means null) the names of absent ones are kept in this extra text[] column.
 */
export const ABSENT = '_koan_absent';

export interface Shape {
  readonly fields: Fields;
  /** Optional nullable fields, whose absence is recorded in {@link ABSENT}. */
  readonly tracked: readonly string[];
  /** Quoted column list for INSERT and COPY. */
  readonly columns: string;
  /** SELECT list: the fields' read expressions, then the absent column if tracked. */
  readonly select: string;
}

const shapes = new WeakMap<EntitySchema, Shape>();

export function shapeOf(entity: EntitySchema): Shape {
  let shape = shapes.get(entity);
  if (!shape) {
    shape = shapeOfFields(entity, Object.entries(entity.fields));
    shapes.set(entity, shape);
  }
  return shape;
}

function shapeOfFields(entity: EntitySchema, fields: Fields): Shape {
  const tracked = fields.filter(([n, s]) => s.optional && s.nullable && n !== entity.key).map(([n]) => n);
  const extra = tracked.length > 0 ? [q(ABSENT)] : [];
  return {
    fields,
    tracked,
    columns: [...fields.map(([n]) => q(n)), ...extra].join(', '),
    select: [...fields.map(([n, s]) => readExpression(n, s)), ...extra].join(', '),
  };
}

/** How records of an entity are written into one existing table. */
export interface WritePlan {
  /** The shape of what is written: the entity's fields less the table's generated columns. */
  readonly shape: Shape;
  /** json fields written into array columns (format 1 archives held arrays as JSON): converted to array literals. */
  readonly arrays: ReadonlySet<string>;
  /** bigint fields written into integer columns narrower than the field's range: refused outside the column's. */
  readonly ranges: ReadonlyMap<string, readonly [bigint, bigint]>;
  /** Whether archive lines can go to COPY as they are (every field written, no conversion, no range check). */
  readonly linesAsIs: boolean;
}

/** The write plan of `entity` into the table `relation` describes (every field as it is when it does not exist). */
export function writePlanOf(entity: EntitySchema, relation: Relation | undefined): WritePlan {
  const shape = shapeOf(entity);
  if (!relation) return { shape, arrays: new Set(), ranges: new Map(), linesAsIs: true };
  const arrays = new Set<string>();
  const ranges = new Map<string, readonly [bigint, bigint]>();
  const written = shape.fields.filter(([name, spec]) => {
    const column = relation.columns.get(name);
    if (!column) return true;
    if (column.generated) return false;
    if (spec.type === 'json' && column.isArray) arrays.add(name);
    const range = INTEGER_RANGES[column.typname];
    if (spec.type === 'bigint' && range && !column.isArray && (spec.unsigned || column.typname !== 'int8'))
      ranges.set(name, range);
    return true;
  });
  const all = written.length === shape.fields.length;
  return {
    shape: all ? shape : shapeOfFields(entity, written),
    arrays,
    ranges,
    linesAsIs: all && arrays.size === 0 && ranges.size === 0,
  };
}

/** The query parameter of a field's value under a write plan. */
export function paramOf(plan: WritePlan, name: string, spec: FieldSpec, value: unknown): unknown {
  if (value !== null && value !== undefined && plan.arrays.has(name)) return arrayLiteral(name, value);
  return toParam(spec, value);
}

/**
 * The array literal of a json field's value written into an array column. Exact JSON text (archive line format 2)
 * is taken as a JavaScript value only where that changes nothing (else `UNSUPPORTED_VALUE` names the field).
 */
function arrayLiteral(name: string, value: unknown): string {
  return jsonArrayLiteral(jsValueOf(value, `${name} (written into an array column)`));
}

/**
 * Refuses, before anything is written, a record PostgreSQL cannot store as it is, naming the entity, field and key:
 * text holding U+0000 (the server's own error names neither), a MySQL zero date, an integer beyond its column's range.
 */
export function assertWritable(entity: EntitySchema, plan: WritePlan, rows: readonly DataRecord[]): void {
  const checked = plan.shape.fields.filter(
    ([name, spec]) =>
      spec.type === 'string' || spec.type === 'date' || spec.type === 'datetime' || plan.ranges.has(name),
  );
  if (checked.length === 0) return;
  for (const record of rows)
    for (const [name, spec] of checked) {
      const v = record[name];
      if (v === null || v === undefined) continue;
      let why: string | undefined;
      if (spec.type === 'string') {
        if (typeof v === 'string' && v.includes('\u0000'))
          why =
            'holds the character U+0000 (NUL), which PostgreSQL text cannot store: remove it, or declare the field t.binary()';
      } else if (spec.type === 'date' || spec.type === 'datetime') {
        if (typeof v === 'string') why = unholdableDate(v);
      } else {
        const [min, max] = plan.ranges.get(name)!;
        const b = BigInt(v as bigint);
        if (b < min || b > max)
          why = `is ${b}, beyond the range of its PostgreSQL column (${min} to ${max}): widen the column (numeric(20,0) holds every unsigned 64-bit value) or exclude the entity`;
      }
      if (why) {
        const key = describeKey(entity, record);
        // A value PostgreSQL cannot hold is the store's refusal, the code every provider uses for it.
        throw new DataError('UNSUPPORTED_VALUE', `${entity.name}.${name} of record ${JSON.stringify(key)} ${why}`, {
          details: { entity: entity.name, field: name, key: entity.keyless ? key : record[entity.key] },
        });
      }
    }
}

/** COPY text-format lines, in chunks of about {@link STREAM_PIECE_BYTES}. */
export function* copyText(
  plan: WritePlan,
  rows: readonly DataRecord[],
  signal: AbortSignal | undefined,
): Generator<string> {
  const { shape } = plan;
  const { fields } = shape;
  let text = '';
  for (const record of rows) {
    for (let i = 0; i < fields.length; i++) {
      const [name, spec] = fields[i]!;
      const value = record[name];
      text +=
        (i === 0 ? '' : '\t') +
        (plan.arrays.has(name) && value !== null && value !== undefined
          ? toCopyText({ ...spec, type: 'string' }, arrayLiteral(name, value))
          : toCopyText(spec, value));
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

export function checkBatchSize(batchSize: number): number {
  if (!Number.isInteger(batchSize) || batchSize <= 0)
    throw new TypeError(`batchSize must be a positive integer, got ${batchSize}`);
  return batchSize;
}

export function absentOf(shape: Shape, record: DataRecord): string[] | null {
  const absent = shape.tracked.filter((n) => record[n] === undefined);
  return absent.length > 0 ? absent : null;
}

/**
 * The ORDER BY of an export: the whole key, text parts in byte order (`COLLATE "C"` where the column has a
 * collation); a table without a primary key in its physical order (`ctid`, per partition), stable within a snapshot.
 * By the table's own columns: `table` is the FROM's name. A bare column name would be the
 * output column of that name, which is the read expression's text (`"id"::text` is named "id"), so a bigint, numeric
 * or date key would sort as text (4611686018427387904 before 9007199254740993).
 */
export function orderBy(entity: EntitySchema, relation: Relation | undefined, table: string): string {
  if (entity.keyless) return relation?.relkind === 'p' ? `${table}.tableoid, ${table}.ctid` : `${table}.ctid`;
  return keyFieldsOf(entity)
    .map((k) => {
      const collatable = relation ? relation.columns.get(k)?.collatable : entity.fields[k]?.type === 'string';
      return collatable ? `${table}.${q(k)} COLLATE "C"` : `${table}.${q(k)}`;
    })
    .join(', ');
}

export function conflictClause(entity: EntitySchema, shape: Shape, mode: ImportOptions['mode']): string {
  if (mode === 'insert') return ' RETURNING true AS i';
  const keys = keyFieldsOf(entity);
  const names = shape.fields.map(([n]) => n).filter((n) => !keys.includes(n));
  if (shape.tracked.length > 0) names.push(ABSENT);
  const set = (names.length > 0 ? names : [entity.key]).map((n) => `${q(n)} = EXCLUDED.${q(n)}`).join(', ');
  // xmax is 0 on a freshly inserted row version and set on one that replaced a row.
  return ` ON CONFLICT (${keys.map(q).join(', ')}) DO UPDATE SET ${set} RETURNING (xmax = 0) AS i`;
}

/** A table without a primary key has no key to merge on: an upsert into it is refused (restores insert). */
export function assertMergeable(entity: EntitySchema, mode: ImportOptions['mode']): void {
  if (mode === 'upsert' && entity.keyless)
    throw new DataError(
      'UNSUPPORTED_KEY',
      `[postgres] ${entity.name} has no primary key: records cannot be merged by key. Insert them (mode "insert"), after clearing the table if it should hold only these.`,
      { details: { entity: entity.name } },
    );
}

const parseTextArray = pg.types.getTypeParser(1009 as never) as unknown as (value: string) => string[];

export function toRecord(fields: Fields, row: readonly unknown[], exactJson = false): DataRecord {
  const record: DataRecord = {};
  const raw = row[fields.length] as string | string[] | null | undefined;
  const absent = typeof raw === 'string' ? parseTextArray(raw) : (raw ?? undefined);
  for (let i = 0; i < fields.length; i++) {
    const [name, spec] = fields[i]!;
    const value = row[i];
    if (value === null || value === undefined) {
      if (spec.optional && (!spec.nullable || absent?.includes(name))) continue;
      record[name] = null;
    } else record[name] = fromRow(spec, value, exactJson);
  }
  return record;
}

export function lastPerKey(entity: EntitySchema, records: readonly DataRecord[]): readonly DataRecord[] {
  if (entity.keyless) return records;
  const keys = keyFieldsOf(entity);
  const byKey = new Map<unknown, DataRecord>();
  for (const r of records)
    byKey.set(keys.length === 1 ? r[entity.key] : JSON.stringify(keys.map((k) => String(r[k]))), r);
  if (byKey.size === records.length) return records;
  return [...byKey.values()];
}

/** Reads a COPY's remaining output; false when the connection failed meanwhile. */
export function drain(stream: copyStreams.CopyToStreamQuery): Promise<boolean> {
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

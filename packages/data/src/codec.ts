/**
 * Value normalisation and the archive's JSON encoding of every field type.
 *
 * | type      | JSON in archives                                    |
 * |-----------|-----------------------------------------------------|
 * | string, uuid, date | string                                     |
 * | integer   | number                                              |
 * | number    | number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings; `-0` as `"-0"` |
 * | bigint    | string of decimal digits (exact beyond 2^53)        |
 * | decimal   | string, exactly as stored (`"12.50"`)               |
 * | boolean   | true / false                                        |
 * | datetime  | string, ISO-8601 UTC with 6 fraction digits: `"2024-05-01T10:00:00.123456Z"` |
 * | json      | the JSON value itself (nested)                      |
 * | binary    | string, base64                                      |
 * | vector    | string, base64 of little-endian float32s (bit-exact: NaN payloads, signalling NaNs and -0 included) |
 *
 * `null` is written as `null`; a missing optional field is absent from the line.
 */

import type { DataRecord } from './adapter.js';
import { DataError } from './errors.js';
import type { FieldSpec } from './fields.js';
import type { EntitySchema } from './schema.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME =
  /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function bad(entity: string, field: string, spec: FieldSpec, value: unknown, hint: string): DataError {
  const shown = typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value));
  return new DataError(
    'INVALID_VALUE',
    `${entity}.${field}: expected ${spec.type}${spec.type === 'vector' ? `(${spec.dimension})` : ''}, got ${shown?.slice(0, 80)}. ${hint}`,
    { details: { entity, field, type: spec.type } },
  );
}

/** Canonical datetime text: UTC, 6 fraction digits. Accepts `Date`, ISO strings with any offset, and SQL `YYYY-MM-DD HH:MM:SS[.ffffff]` (taken as UTC). */
export function normalizeDatetime(value: unknown): string | undefined {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return undefined;
    return `${value.toISOString().slice(0, 23)}000Z`;
  }
  if (typeof value !== 'string') return undefined;
  const m = DATETIME.exec(value.trim());
  if (!m) return undefined;
  const [, day, hh, mi, ss = '00', frac = '', zone = 'Z'] = m;
  // Date.parse rolls impossible days over (2024-02-30 would become March 1st, 24:00 the next day): refused instead.
  if (normalizeDate(day) === undefined || Number(hh) > 23) return undefined;
  const micros = (frac + '000000').slice(0, 6);
  const base = Date.parse(`${day}T${hh}:${mi}:${ss}.000${zone.toUpperCase() === 'Z' ? 'Z' : normalizeOffset(zone)}`);
  if (Number.isNaN(base)) return undefined;
  return `${new Date(base).toISOString().slice(0, 19)}.${micros}Z`;
}

function normalizeOffset(zone: string): string {
  const digits = zone.replace(':', '');
  return `${digits.slice(0, 3)}:${digits.slice(3, 5) || '00'}`;
}

export function normalizeDate(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString().slice(0, 10);
  if (typeof value !== 'string') return undefined;
  const m = DATE.exec(value);
  if (!m) return undefined;
  const d = new Date(`${value}T00:00:00Z`);
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value ? undefined : value;
}

/** Checks one value against its field and returns its runtime form. Throws `INVALID_VALUE` naming the field. */
export function normalizeValue(entity: string, field: string, spec: FieldSpec, value: unknown): unknown {
  if (value === null) {
    if (spec.nullable) return null;
    throw bad(entity, field, spec, value, 'The field is not nullable: declare it with .nullable() or give a value.');
  }
  switch (spec.type) {
    case 'string':
      if (typeof value === 'string') return value;
      break;
    case 'uuid':
      if (typeof value === 'string' && UUID.test(value)) return value.toLowerCase();
      break;
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      if (
        typeof value === 'bigint' &&
        value >= BigInt(Number.MIN_SAFE_INTEGER) &&
        value <= BigInt(Number.MAX_SAFE_INTEGER)
      )
        return Number(value);
      return throwBad(entity, field, spec, value, 'Use a safe integer, or declare the field t.bigint().');
    case 'number':
      if (typeof value === 'number') return value;
      break;
    case 'bigint':
      if (typeof value === 'bigint' && value >= INT64_MIN && value <= INT64_MAX) return value;
      if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
      if (typeof value === 'string' && /^[+-]?\d+$/.test(value)) {
        const b = BigInt(value);
        if (b >= INT64_MIN && b <= INT64_MAX) return b;
      }
      return throwBad(entity, field, spec, value, 'Use a bigint within the signed 64-bit range.');
    case 'decimal':
      if (typeof value === 'string' && DECIMAL.test(value.trim())) return value.trim();
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      if (typeof value === 'bigint') return value.toString();
      return throwBad(entity, field, spec, value, 'Pass decimals as strings such as "12.50" to keep them exact.');
    case 'boolean':
      if (typeof value === 'boolean') return value;
      break;
    case 'datetime': {
      const v = normalizeDatetime(value);
      if (v !== undefined) return v;
      return throwBad(
        entity,
        field,
        spec,
        value,
        'Use a Date or an ISO-8601 string such as "2024-05-01T10:00:00.123456Z".',
      );
    }
    case 'date': {
      const v = normalizeDate(value);
      if (v !== undefined) return v;
      return throwBad(entity, field, spec, value, 'Use a "YYYY-MM-DD" string.');
    }
    case 'json':
      if (value !== undefined && isJson(value)) return value;
      return throwBad(entity, field, spec, value, 'Use plain JSON values (no bigint, Date, Map or undefined inside).');
    case 'binary':
      if (value instanceof Uint8Array) return value;
      if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      if (value instanceof ArrayBuffer) return new Uint8Array(value);
      break;
    case 'vector': {
      const dim = spec.dimension ?? 0;
      if (value instanceof Float32Array && value.length === dim) return value;
      if (Array.isArray(value) && value.length === dim && value.every((x) => typeof x === 'number'))
        return Float32Array.from(value);
      return throwBad(entity, field, spec, value, `Use a Float32Array or number[] of length ${dim}.`);
    }
  }
  throw bad(entity, field, spec, value, `Give a ${spec.type} value.`);
}

function throwBad(entity: string, field: string, spec: FieldSpec, value: unknown, hint: string): never {
  throw bad(entity, field, spec, value, hint);
}

function isJson(v: unknown): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(isJson);
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(v as object).every(isJson);
  }
  return false;
}

/**
 * Validates a whole record against the schema and returns it in runtime form.
 * Unknown fields are rejected (a typo would otherwise be lost silently); missing required fields too.
 */
export function normalizeRecord(schema: EntitySchema, input: Record<string, unknown>): DataRecord {
  if (input === null || typeof input !== 'object')
    throw new DataError('INVALID_RECORD', `${schema.name}: a record must be an object`);
  const out: DataRecord = {};
  for (const [name, spec] of Object.entries(schema.fields)) {
    const value = input[name];
    if (value === undefined) {
      if (spec.optional && name !== schema.key) continue;
      throw new DataError(
        'MISSING_FIELD',
        `${schema.name}.${name} is required${name === schema.key ? ' (it is the key)' : ''}: give it a value${name === schema.key ? '' : ', or declare it .optional()'}.`,
        { details: { entity: schema.name, field: name } },
      );
    }
    out[name] = normalizeValue(schema.name, name, spec, value);
  }
  for (const name of Object.keys(input)) {
    if (!(name in schema.fields) && input[name] !== undefined)
      throw new DataError(
        'UNKNOWN_FIELD',
        `${schema.name}: unknown field "${name}". Declared fields: ${Object.keys(schema.fields).join(', ')}.`,
        {
          details: { entity: schema.name, field: name },
        },
      );
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Base64 of the little-endian bytes of `v`, copied bit for bit. Never through a JS number: reading a float32 into a
 * double quiets a signalling NaN (0x7f800001 becomes 0x7fc00001), so only byte and uint32 copies keep NaN payloads.
 */
function float32ToBase64(v: Float32Array): string {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  const words = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const buf = Buffer.allocUnsafe(v.byteLength);
  for (let i = 0; i < words.length; i++) buf.writeUInt32LE(words[i]!, i * 4);
  return buf.toString('base64');
}

/** A Float32Array made from the little-endian bytes of the base64 text, bit for bit (see {@link float32ToBase64}). */
function base64ToFloat32(s: string, dim: number | undefined): Float32Array {
  const buf = Buffer.from(s, 'base64');
  if (buf.length % 4 !== 0 || (dim !== undefined && buf.length !== dim * 4))
    throw new TypeError(`vector has ${buf.length} bytes, expected ${(dim ?? 0) * 4}`);
  const out = new Float32Array(buf.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(buf);
  else {
    const words = new Uint32Array(out.buffer);
    for (let i = 0; i < words.length; i++) words[i] = buf.readUInt32LE(i * 4);
  }
  return out;
}

/** Encodes one runtime value to its archive JSON value. */
export function encodeValue(spec: FieldSpec, value: unknown): unknown {
  if (value === null) return null;
  switch (spec.type) {
    case 'number': {
      const n = value as number;
      if (Number.isFinite(n)) return Object.is(n, -0) ? '-0' : n;
      return String(n);
    }
    case 'bigint':
      return (value as bigint).toString();
    case 'binary':
      return Buffer.from(
        (value as Uint8Array).buffer,
        (value as Uint8Array).byteOffset,
        (value as Uint8Array).byteLength,
      ).toString('base64');
    case 'vector':
      return float32ToBase64(value as Float32Array);
    default:
      return value;
  }
}

/** Decodes one archive JSON value to its runtime form; throws a TypeError describing the mismatch. */
export function decodeValue(spec: FieldSpec, value: unknown): unknown {
  if (value === null) return null;
  switch (spec.type) {
    case 'number':
      if (typeof value === 'number') return value;
      if (value === 'NaN') return Number.NaN;
      if (value === 'Infinity') return Number.POSITIVE_INFINITY;
      if (value === '-Infinity') return Number.NEGATIVE_INFINITY;
      if (value === '-0') return -0;
      throw new TypeError(`expected a number, got ${JSON.stringify(value)}`);
    case 'bigint':
      if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
      throw new TypeError(`expected a bigint string, got ${JSON.stringify(value)}`);
    case 'binary':
      if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
      throw new TypeError('expected base64 text');
    case 'vector':
      if (typeof value === 'string') return base64ToFloat32(value, spec.dimension);
      if (Array.isArray(value)) return Float32Array.from(value as number[]);
      throw new TypeError('expected base64 float32 text');
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      throw new TypeError(`expected an integer, got ${JSON.stringify(value)}`);
    case 'boolean':
      if (typeof value === 'boolean') return value;
      throw new TypeError(`expected a boolean, got ${JSON.stringify(value)}`);
    case 'string':
    case 'uuid':
    case 'decimal':
    case 'date':
    case 'datetime':
      if (typeof value === 'string') return value;
      throw new TypeError(`expected a string, got ${JSON.stringify(value)}`);
    default:
      return value;
  }
}

/** Encodes a record to the object written as one JSON line. Field order follows the schema. */
export function encodeRecord(schema: EntitySchema, record: DataRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema.fields)) {
    const v = record[name];
    if (v !== undefined) out[name] = encodeValue(spec, v);
  }
  return out;
}

/** Fast path: the JSON line text of a record (without newline). */
export function encodeRecordLine(schema: EntitySchema, record: DataRecord): string {
  return JSON.stringify(encodeRecord(schema, record));
}

/**
 * Decodes one parsed JSON line. Fields the schema does not know are returned in `unknown` rather than
 * dropped, so callers decide (schema drift policy).
 */
export function decodeRecord(
  schema: EntitySchema,
  line: Record<string, unknown>,
): { record: DataRecord; unknown: string[] } {
  const record: DataRecord = {};
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(line)) {
    const spec = schema.fields[name];
    if (!spec) {
      unknown.push(name);
      continue;
    }
    try {
      record[name] = decodeValue(spec, value);
    } catch (e) {
      throw new DataError('INVALID_VALUE', `${schema.name}.${name}: ${(e as Error).message}`, {
        cause: e,
        details: { entity: schema.name, field: name },
      });
    }
  }
  return { record, unknown };
}

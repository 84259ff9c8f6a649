/**
 * Value normalisation, and the encoding of every field type in JSON lines: the implementation of the line format
 * `koan-jsonl` (its contract, value by value, is in line-format.ts).
 */

import { DataError } from './errors.js';
import type { FieldSpec } from './fields.js';
import { JsonText, jsonTextOf, jsValueOf } from './json-text.js';
import type { JsonEncoding } from './line-format.js';
import type { EntitySchema } from './schema.js';
import type { DataRecord } from './types.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME =
  /^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
/** A special form's date part: expanded year (sign, 6 digits) or 4 digits, month, day. */
const SPECIAL_DATE = /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})$/;
const SPECIAL_TIME = /^T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$/;
const INFINITIES = new Set(['infinity', '-infinity']);
/** Decimal text; `NaN`, `Infinity` and `-Infinity` too (PostgreSQL numeric holds them; other stores refuse them). */
const DECIMAL = /^(?:[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|NaN|-?Infinity)$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

function bad(entity: string, field: string, spec: FieldSpec, value: unknown, hint: string): DataError {
  const shown = typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value));
  return new DataError(
    'INVALID_VALUE',
    `${entity}.${field}: expected ${spec.type}${spec.type === 'vector' ? `(${spec.dimension})` : ''}, got ${shown?.slice(0, 80)}. ${hint}`,
    { details: { entity, field, type: spec.type } },
  );
}

/**
 * Canonical datetime text: UTC, 6 fraction digits. Accepts `Date`, ISO strings with any offset, SQL
 * `YYYY-MM-DD HH:MM:SS[.ffffff]` (taken as UTC), and the special forms of the module comment in their canonical
 * spelling (`infinity`, `+010000-01-01T00:00:00.000000Z`, `0000-00-00T00:00:00.000000Z`).
 */
export function normalizeDatetime(value: unknown): string | undefined {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return undefined;
    // toISOString spells years outside 0-9999 expanded (+010000, -000043); year 0 (1 BC) is expanded here too.
    const iso = value.toISOString();
    const text = `${iso.slice(0, -1)}000Z`;
    return value.getUTCFullYear() === 0 ? `+00${text}` : text;
  }
  if (typeof value !== 'string') return undefined;
  if (isSpecialDatetime(value)) return value;
  const m = DATETIME.exec(value.trim());
  if (!m) return undefined;
  const [, day, hh, mi, ss = '00', frac = '', zone = 'Z'] = m;
  // Date.parse rolls impossible days over (2024-02-30 would become March 1st, 24:00 the next day): refused instead.
  if (normalizeDate(day) === undefined || Number(hh) > 23) return undefined;
  const micros = (frac + '000000').slice(0, 6);
  const base = Date.parse(`${day}T${hh}:${mi}:${ss}.000${zone.toUpperCase() === 'Z' ? 'Z' : normalizeOffset(zone)}`);
  if (Number.isNaN(base)) return undefined;
  const utc = new Date(base);
  const iso = utc.toISOString();
  // An offset can move the instant out of years 1-9999 (0001-01-01T00:30+01:00): spelled expanded then.
  return `${utc.getUTCFullYear() === 0 ? '+00' : ''}${iso.slice(0, iso.lastIndexOf('.'))}.${micros}Z`;
}

function normalizeOffset(zone: string): string {
  const digits = zone.replace(':', '');
  return `${digits.slice(0, 3)}:${digits.slice(3, 5) || '00'}`;
}

export function normalizeDate(value: unknown): string | undefined {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return undefined;
    const iso = value.toISOString();
    return `${value.getUTCFullYear() === 0 ? '+00' : ''}${iso.slice(0, iso.indexOf('T'))}`;
  }
  if (typeof value !== 'string') return undefined;
  if (isSpecialDate(value)) return value;
  const m = DATE.exec(value);
  if (!m) return undefined;
  const d = new Date(`${value}T00:00:00Z`);
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value ? undefined : value;
}

/** Days in `month` (1-12) of the proleptic Gregorian `year` (astronomical numbering: year 0 is a leap year). */
function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Whether `text` is a date in one of the special forms (see the module comment): `infinity`/`-infinity`, an expanded
 * year outside 0001-9999, or a MySQL zero date (year 0000, month 00 or day 00). Ordinary dates are not special.
 */
export function isSpecialDate(text: string): boolean {
  if (INFINITIES.has(text)) return true;
  const m = SPECIAL_DATE.exec(text);
  if (!m) return false;
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (m[1]!.length === 4) {
    // MySQL zero dates: any part zero, the others in range.
    const zero = m[1] === '0000' || month === 0 || day === 0;
    return zero && month <= 12 && day <= 31;
  }
  const year = Number(m[1]);
  if (year >= 1 && year <= 9999) return false; // one spelling per day: 4 digits
  return month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month);
}

/** Whether `text` is a datetime in one of the special forms: a special date, then `THH:MM:SS.ffffffZ` (not for infinities). */
export function isSpecialDatetime(text: string): boolean {
  if (INFINITIES.has(text)) return true;
  const t = text.indexOf('T');
  if (t < 0) return false;
  const time = SPECIAL_TIME.exec(text.slice(t));
  if (!time || Number(time[1]) > 23 || Number(time[2]) > 59 || Number(time[3]) > 59) return false;
  const day = text.slice(0, t);
  return !INFINITIES.has(day) && isSpecialDate(day);
}

/** Whether a datetime or date text is a MySQL zero date (year 0000, month 00 or day 00). */
export function isZeroDate(text: string): boolean {
  return (
    /^\d{4}-\d{2}-\d{2}/.test(text) &&
    (text.startsWith('0000') || text.slice(5, 7) === '00' || text.slice(8, 10) === '00')
  );
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
    case 'bigint': {
      const [min, max] = spec.unsigned ? [0n, UINT64_MAX] : [INT64_MIN, INT64_MAX];
      let b: bigint | undefined;
      if (typeof value === 'bigint') b = value;
      else if (typeof value === 'number' && Number.isSafeInteger(value)) b = BigInt(value);
      else if (typeof value === 'string' && /^[+-]?\d+$/.test(value)) b = BigInt(value);
      if (b !== undefined && b >= min && b <= max) return b;
      return throwBad(
        entity,
        field,
        spec,
        value,
        spec.unsigned ? 'Use a bigint from 0 to 2^64-1.' : 'Use a bigint within the signed 64-bit range.',
      );
    }
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
        'Use a Date or an ISO-8601 string such as "2024-05-01T10:00:00.123456Z" (or "infinity", "-infinity").',
      );
    }
    case 'date': {
      const v = normalizeDate(value);
      if (v !== undefined) return v;
      return throwBad(entity, field, spec, value, 'Use a "YYYY-MM-DD" string.');
    }
    case 'json':
      if (value instanceof JsonText) return value;
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
    if (!Object.hasOwn(schema.fields, name) && input[name] !== undefined)
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

/**
 * Encodes one runtime value to its archive JSON value. json fields: with `text` (archives) the exact JSON text as a
 * string; with `nested` the value itself (a {@link JsonText} only if JavaScript holds it exactly, else
 * `UNSUPPORTED_VALUE`).
 */
export function encodeValue(spec: FieldSpec, value: unknown, json: JsonEncoding = 'text'): unknown {
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
    case 'json':
      return json === 'text' ? jsonTextOf(value) : jsValueOf(value, 'a json value');
    default:
      return value;
  }
}

const CANONICAL_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID_LOWER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether `text` is a datetime as archives spell it: canonical UTC with 6 fraction digits, or a special form. */
export function isArchiveDatetime(text: string): boolean {
  if (CANONICAL_DATETIME.test(text) && !isZeroDate(text))
    return (
      normalizeDate(text.slice(0, 10)) !== undefined &&
      Number(text.slice(11, 13)) < 24 &&
      Number(text.slice(14, 16)) < 60 &&
      Number(text.slice(17, 19)) < 60
    );
  return isSpecialDatetime(text);
}

/** Whether `text` is a date as archives spell it: `YYYY-MM-DD` of a real day, or a special form. */
export function isArchiveDate(text: string): boolean {
  return normalizeDate(text) === text;
}

/**
 * Decodes one archive JSON value to its runtime form, checking it is spelled as archives spell values; throws a
 * TypeError describing the mismatch. json fields: `text` expects the JSON text as a string and gives a
 * {@link JsonText} (checked to be JSON); `nested` gives the value itself.
 */
export function decodeValue(spec: FieldSpec, value: unknown, json: JsonEncoding = 'text'): unknown {
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
      if (typeof value === 'string' && /^-?\d+$/.test(value)) {
        const b = BigInt(value);
        if (spec.unsigned ? b >= 0n && b <= UINT64_MAX : b >= INT64_MIN && b <= INT64_MAX) return b;
        throw new TypeError(`${value} is outside the ${spec.unsigned ? 'unsigned' : 'signed'} 64-bit range`);
      }
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
      if (typeof value === 'string') return value;
      throw new TypeError(`expected a string, got ${JSON.stringify(value)}`);
    case 'uuid':
      if (typeof value === 'string' && UUID_LOWER.test(value)) return value;
      throw new TypeError(`expected a lower-case uuid, got ${JSON.stringify(value)}`);
    case 'decimal':
      if (typeof value === 'string' && DECIMAL.test(value)) return value;
      throw new TypeError(`expected a decimal string, got ${JSON.stringify(value)}`);
    case 'date':
      if (typeof value === 'string' && isArchiveDate(value)) return value;
      throw new TypeError(`expected a date "YYYY-MM-DD", got ${JSON.stringify(value)}`);
    case 'datetime':
      if (typeof value === 'string' && isArchiveDatetime(value)) return value;
      throw new TypeError(`expected a datetime "YYYY-MM-DDTHH:MM:SS.ffffffZ", got ${JSON.stringify(value)}`);
    case 'json':
      if (json === 'nested') return value;
      if (typeof value === 'string') return JsonText.parse(value);
      throw new TypeError(`expected the JSON text of the value as a string, got ${JSON.stringify(value)}`);
  }
}

/** Encodes a record to the object written as one JSON line. Field order follows the schema. */
export function encodeRecord(schema: EntitySchema, record: DataRecord, json: JsonEncoding): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(schema.fields)) {
    const v = record[name];
    if (v !== undefined) out[name] = encodeValue(spec, v, json);
  }
  return out;
}

/**
 * The JSON line text of a record (without newline). `json` says how json fields are spelled: `text` for archives
 * (line format {@link LINE_FORMAT}), `nested` for stores that keep records as lines (Redis, JSON files).
 */
export function encodeRecordLine(schema: EntitySchema, record: DataRecord, json: JsonEncoding): string {
  return JSON.stringify(encodeRecord(schema, record, json));
}

/**
 * Decodes one parsed JSON line. Fields the schema does not know are returned in `unknown` rather than
 * dropped, so callers decide (schema drift policy).
 */
export function decodeRecord(
  schema: EntitySchema,
  line: Record<string, unknown>,
  json: JsonEncoding,
): { record: DataRecord; unknown: string[] } {
  const record: DataRecord = {};
  const unknown: string[] = [];
  for (const [name, value] of Object.entries(line)) {
    // Own fields only: `__proto__` or `constructor` in a line are unknown fields, not Object.prototype's.
    const spec = Object.hasOwn(schema.fields, name) ? schema.fields[name] : undefined;
    if (!spec) {
      unknown.push(name);
      continue;
    }
    try {
      record[name] = decodeValue(spec, value, json);
    } catch (e) {
      throw new DataError('INVALID_VALUE', `${schema.name}.${name}: ${(e as Error).message}`, {
        cause: e,
        details: { entity: schema.name, field: name },
      });
    }
  }
  return { record, unknown };
}

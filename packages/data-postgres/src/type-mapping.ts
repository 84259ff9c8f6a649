import type { FieldSpec, FieldType } from '@koan/data';
import { decodeValue, normalizeDatetime } from '@koan/data';
import pg from 'pg';

/**
 * How each field type is stored, read and written. Sessions run with `TimeZone=UTC`, `DateStyle=ISO`
 * and `extra_float_digits=1` (set on every new connection), so the text forms below do not depend on
 * server defaults.
 *
 * | field      | column type                      | notes |
 * |------------|----------------------------------|-------|
 * | string     | `text` (`COLLATE "C"` as key)    | key order is UTF-8 byte order |
 * | uuid       | `uuid`                           | read back lower case |
 * | integer    | `bigint`                         | values are safe integers |
 * | number     | `double precision`               | NaN, ±Infinity and -0 kept |
 * | bigint     | `bigint`                         | read as text, exact |
 * | decimal    | `numeric` or `numeric(p,s)`      | read as text, exact (`numeric(p,s)` pads the scale) |
 * | boolean    | `boolean`                        | |
 * | datetime   | `timestamptz`                    | microseconds, read in UTC |
 * | date       | `date`                           | |
 * | json       | `jsonb`                          | value-equal: jsonb normalises key order, whitespace and number spelling |
 * | binary     | `bytea`                          | |
 * | vector     | `bytea` (little-endian float32s) | bit-exact, NaN payloads and -0 included |
 */
export const POSTGRES_TYPE_MAPPING: Readonly<Record<FieldType, string>> = Object.freeze({
  string: 'text',
  uuid: 'uuid',
  integer: 'bigint',
  number: 'double precision',
  bigint: 'bigint',
  decimal: 'numeric',
  boolean: 'boolean',
  datetime: 'timestamptz',
  date: 'date',
  json: 'jsonb',
  binary: 'bytea',
  vector: 'bytea',
});

/** Session settings every connection gets, so text output is the same everywhere. */
export const SESSION_SETUP = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1";

export const q = (name: string): string => pg.escapeIdentifier(name);
export const lit = (text: string): string => pg.escapeLiteral(text);

export function columnType(spec: FieldSpec, isKey: boolean): string {
  if (spec.type === 'decimal' && spec.precision !== undefined) return `numeric(${spec.precision},${spec.scale ?? 0})`;
  if (spec.type === 'string' && isKey) return 'text COLLATE "C"';
  return POSTGRES_TYPE_MAPPING[spec.type];
}

const DATETIME_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/** The SELECT expression of a column for `exportEntity`/`get`: text where JS types would lose precision. */
export function readExpression(column: string, spec: FieldSpec): string {
  const c = q(column);
  switch (spec.type) {
    case 'datetime':
      return `to_char(${c}, ${DATETIME_FORMAT})`;
    case 'date':
      return `${c}::text`;
    case 'bigint':
    case 'decimal':
      return `${c}::text`;
    case 'uuid':
      return `${c}::text`;
    case 'json':
      return `to_jsonb(${c})`;
    default:
      return c;
  }
}

/** The JSON text (archive encoding) of a column, built by the server; NULL stays NULL. */
export function jsonExpression(column: string, spec: FieldSpec): string {
  const c = q(column);
  switch (spec.type) {
    case 'string':
      return `to_json(${c})::text`;
    // Their text never needs JSON escaping.
    case 'uuid':
    case 'bigint':
    case 'decimal':
    case 'date':
      return `'"' || ${c}::text || '"'`;
    case 'datetime':
      return `to_json(to_char(${c}, ${DATETIME_FORMAT}))::text`;
    case 'integer':
    case 'boolean':
      return `${c}::text`;
    case 'number':
      return jsNumberExpression(c);
    case 'json':
      // Marked so the reader compacts only these bytes (jsonb's text has blanks after : and ,).
      return `E'\\x03' || to_jsonb(${c})::text || E'\\x03'`;
    case 'binary':
    case 'vector':
      return `'"' || translate(encode(${c}, 'base64'), E'\\n', '') || '"'`;
  }
}

/**
 * `Number.prototype.toString` in SQL: PG's float8 text has the same shortest digits but switches to
 * exponent form at other magnitudes (1e+15 vs 1000000000000000), so the digits are re-spelled.
 */
function jsNumberExpression(c: string): string {
  const n = `${c}::text::numeric`;
  return `CASE WHEN ${c} IS NULL THEN NULL
    WHEN ${c} = 'NaN'::float8 THEN '"NaN"'
    WHEN ${c} = 'Infinity'::float8 THEN '"Infinity"'
    WHEN ${c} = '-Infinity'::float8 THEN '"-Infinity"'
    WHEN ${c} = 0 THEN CASE WHEN ${c}::text LIKE '-%' THEN '"-0"' ELSE '0' END
    WHEN abs(${n}) >= 1e21 OR abs(${n}) < 0.000001 THEN regexp_replace(${c}::text, 'e([+-])0*([0-9])', 'e\\1\\2')
    ELSE ${n}::text END`;
}

/** Converts a value read with {@link readExpression} to its runtime form. */
export function fromRow(spec: FieldSpec, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  switch (spec.type) {
    case 'integer':
      return typeof value === 'number' ? value : Number(value);
    case 'number':
      return typeof value === 'number' ? value : Number.parseFloat(value as string);
    case 'bigint':
      return BigInt(value as string);
    case 'binary': {
      const b = value as Buffer;
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    }
    case 'vector':
      return bytesToFloat32(value as Buffer);
    default:
      return value;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/*
 * Vectors are copied as bytes or uint32 words, never read into a JS number: a float32 read as a double has its
 * signalling NaN quieted (0x7f800001 becomes 0x7fc00001), so float reads and writes would lose NaN payloads.
 */

/** A Float32Array (own buffer) of the little-endian float32 bytes `b`, bit for bit. */
function bytesToFloat32(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.byteLength >>> 2);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(b.subarray(0, out.byteLength));
  else {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const words = new Uint32Array(out.buffer);
    for (let i = 0; i < words.length; i++) words[i] = view.getUint32(i * 4, true);
  }
  return out;
}

/** The little-endian bytes of a vector, bit for bit (a `number[]` holds doubles, so it has no signalling NaN). */
function float32ToBytes(value: Float32Array | readonly number[]): Buffer {
  const v = value instanceof Float32Array ? value : Float32Array.from(value);
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const words = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const buf = Buffer.allocUnsafe(v.byteLength);
  for (let i = 0; i < words.length; i++) buf.writeUInt32LE(words[i]!, i * 4);
  return buf;
}

/** Converts a runtime value to a query parameter (text or Buffer); `undefined` becomes NULL. */
export function toParam(spec: FieldSpec, value: unknown): string | Buffer | boolean | null {
  if (value === null || value === undefined) return null;
  switch (spec.type) {
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'integer':
    case 'bigint':
    case 'decimal':
      return String(value);
    case 'boolean':
      return value as boolean;
    case 'datetime':
      return value instanceof Date ? (normalizeDatetime(value) ?? null) : (value as string);
    case 'json':
      return JSON.stringify(value);
    case 'binary': {
      const u = value as Uint8Array;
      return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
    }
    case 'vector':
      return float32ToBytes(value as Float32Array);
    default:
      return value as string;
  }
}

/** PostgreSQL text cannot hold U+0000 (see `assertNoNul` in postgres-session.ts for records). */
function noNul(s: string): string {
  if (s.includes('\u0000'))
    throw new TypeError(
      'PostgreSQL text cannot hold the character U+0000 (NUL): remove it from the value, or declare the field t.binary()',
    );
  return s;
}

/** A COPY text-format field for a runtime value (tab, newline and backslash escaped; NULL is `\N`). */
export function toCopyText(spec: FieldSpec, value: unknown): string {
  const p = toParam(spec, value);
  if (p === null) return '\\N';
  if (typeof p === 'boolean') return p ? 't' : 'f';
  if (typeof p !== 'string') return `\\\\x${p.toString('hex')}`;
  if (spec.type === 'string' || spec.type === 'json') return escapeCopy(p);
  return p;
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function escapeCopy(s: string): string {
  return COPY_SPECIAL.test(s) ? s.replace(/[\\\t\n\r]/g, (ch) => COPY_ESCAPES[ch]!) : s;
}

/** The array type used to pass a list of keys as one parameter. */
export function keyArrayType(spec: FieldSpec): string {
  return spec.type === 'uuid' ? 'uuid[]' : spec.type === 'integer' ? 'bigint[]' : 'text[]';
}

/**
 * A COPY text-format field straight from an archive JSON value (as `JSON.parse` gives it), with the checks of
 * `decodeValue`: the same text `toCopyText(spec, decodeValue(spec, value))` makes, without the runtime value in between.
 * Throws a TypeError describing a mismatch.
 */
export function archiveToCopyText(spec: FieldSpec, value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  switch (spec.type) {
    case 'string':
      if (typeof value === 'string') return escapeCopy(noNul(value));
      throw new TypeError(`expected a string, got ${JSON.stringify(value)}`);
    case 'uuid':
    case 'decimal':
    case 'date':
    case 'datetime':
      // Their valid forms hold no COPY specials; an invalid one is escaped, then refused by the server.
      if (typeof value === 'string') return escapeCopy(value);
      throw new TypeError(`expected a string, got ${JSON.stringify(value)}`);
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
      throw new TypeError(`expected an integer, got ${JSON.stringify(value)}`);
    case 'boolean':
      if (typeof value === 'boolean') return value ? 't' : 'f';
      throw new TypeError(`expected a boolean, got ${JSON.stringify(value)}`);
    case 'json':
      return escapeCopy(JSON.stringify(value));
    default:
      return toCopyText(spec, decodeValue(spec, value));
  }
}

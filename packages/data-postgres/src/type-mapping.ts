import type { FieldSpec, FieldType } from '@koan/data';
import { DataError, JsonText } from '@koan/data';
import { decodeValue, jsonTextOf, normalizeDatetime } from '@koan/data/adapter-kit';
import pg from 'pg';
import { pgDateInput } from './pg-values.js';

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
 * | bigint     | `bigint` (`unsigned`: `numeric(20,0)`) | read as text, exact (2^64-1 fits numeric(20,0)) |
 * | decimal    | `numeric` or `numeric(p,s)`      | read as text, exact (`numeric(p,s)` pads the scale) |
 * | boolean    | `boolean`                        | |
 * | datetime   | `timestamptz`                    | microseconds, read in UTC; `infinity`, BC and years > 9999 kept |
 * | date       | `date`                           | same special forms |
 * | json       | `json`                           | the exact text: numbers of any size, key order, duplicate keys, blanks |
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
  json: 'json',
  binary: 'bytea',
  vector: 'bytea',
});

/** Session settings every connection gets, so text output is the same everywhere. */
export const SESSION_SETUP =
  "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1";

export const q = (name: string): string => pg.escapeIdentifier(name);

/** The qualified name of an object as the captured DDL spells it (unqualified in the default schema). */
export type Qualify = (schema: string, name: string) => string;

export const lit = (text: string): string => pg.escapeLiteral(text);

export function columnType(spec: FieldSpec, isKey: boolean): string {
  if (spec.type === 'decimal' && spec.precision !== undefined) return `numeric(${spec.precision},${spec.scale ?? 0})`;
  if (spec.type === 'string' && isKey) return 'text COLLATE "C"';
  if (spec.type === 'bigint' && spec.unsigned) return 'numeric(20,0)';
  return POSTGRES_TYPE_MAPPING[spec.type];
}

/** The canonical text (see `codec.ts`) of a datetime column, special forms included; NULL stays NULL. */
function datetimeText(c: string): string {
  const v = `(${c})::timestamptz`;
  return `CASE WHEN ${v} IS NULL THEN NULL WHEN NOT isfinite(${v}) THEN ${v}::text
    WHEN ${v} >= '0001-01-01 00:00:00+00' AND ${v} < '10000-01-01 00:00:00+00'
      THEN to_char(${v}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    ELSE ${expandedYear(v)} || to_char(${v}, '-MM-DD"T"HH24:MI:SS.US"Z"') END`;
}

/**
 * The canonical text of a date column, special forms included. PostgreSQL dates reach year 5874897, which the
 * archive's expanded form (6 digits) cannot spell: such a date fails the read with a message naming it (a cast of
 * that message to integer is the one way a plain SQL expression can raise an error).
 */
function dateText(c: string): string {
  const v = `(${c})::date`;
  return `CASE WHEN ${v} IS NULL THEN NULL WHEN NOT isfinite(${v}) THEN ${v}::text
    WHEN ${v} >= '0001-01-01' AND ${v} < '10000-01-01' THEN ${v}::text
    WHEN ${v} >= '1000000-01-01' THEN ('koan: a date after year 999999 cannot be archived: ' || ${v}::text)::int::text
    ELSE ${expandedYear(v)} || to_char(${v}, '-MM-DD') END`;
}

/** ISO 8601's expanded year of a timestamp or date: sign, 6 digits, astronomical numbering (1 BC is +000000). */
function expandedYear(v: string): string {
  const y = `extract(year from ${v})::int`;
  const astro = `(CASE WHEN ${y} < 0 THEN ${y} + 1 ELSE ${y} END)`;
  return `(CASE WHEN ${astro} < 0 THEN '-' ELSE '+' END || lpad(abs(${astro})::text, 6, '0'))`;
}

/**
 * Any column's text as its type's output function writes it (arrays as `{1,2,NULL}`, enums, intervals, inet...).
 * Not `::text`: that cast trims the padding of `char(n)`. `concat` of NULL is '', so NULL is kept apart.
 */
function outputText(c: string): string {
  return `CASE WHEN ${c} IS NULL THEN NULL ELSE concat(${c}) END`;
}

/**
 * The SELECT expression of a column for `exportEntity`/`get`: text where JS types would lose precision. The same
 * expressions serve every native type a field may be read from (a `decimal` from `numeric` or `money`, a `string`
 * from `text`, an array, an enum...), so reads need no catalog lookup.
 */
export function readExpression(column: string, spec: FieldSpec): string {
  const c = q(column);
  switch (spec.type) {
    case 'string':
      return outputText(c);
    case 'datetime':
      return datetimeText(c);
    case 'date':
      return dateText(c);
    case 'decimal':
      return `(${c})::numeric::text`;
    case 'bigint':
    case 'uuid':
    case 'json':
      // json: the exact stored text (`json`), or jsonb's own text form; never parsed by the driver.
      return `(${c})::text`;
    default:
      return c;
  }
}

/** The JSON text (archive encoding, line format 2) of a column, built by the server; NULL stays NULL. */
export function jsonExpression(column: string, spec: FieldSpec): string {
  const c = q(column);
  switch (spec.type) {
    case 'string':
      return `to_json(${outputText(c)})::text`;
    // Their text never needs JSON escaping.
    case 'uuid':
    case 'bigint':
      return `'"' || ${c}::text || '"'`;
    case 'decimal':
      return `'"' || (${c})::numeric::text || '"'`;
    case 'date':
      return `'"' || ${dateText(c)} || '"'`;
    case 'datetime':
      return `'"' || ${datetimeText(c)} || '"'`;
    case 'integer':
    case 'boolean':
      return `${c}::text`;
    case 'number':
      return jsNumberExpression(c);
    case 'json':
      // Format 2: a JSON string holding the column's exact JSON text (escaped as JSON.stringify escapes).
      return `to_json((${c})::text)::text`;
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

/**
 * Converts a value read with {@link readExpression} to its runtime form. json fields: a {@link JsonText} of the
 * column's exact text with `exactJson`, else the parsed JavaScript value.
 */
export function fromRow(spec: FieldSpec, value: unknown, exactJson = false): unknown {
  if (value === null || value === undefined) return value;
  switch (spec.type) {
    case 'json':
      return exactJson ? new JsonText(value as string) : JSON.parse(value as string);
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
      return pgDateInput(value instanceof Date ? (normalizeDatetime(value) ?? '') : (value as string));
    case 'date':
      return pgDateInput(value as string);
    case 'json':
      return jsonTextOf(value);
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

/** PostgreSQL text cannot hold U+0000 (see `assertNoNul` in postgres-session.ts for records): the store's refusal. */
function noNul(s: string): string {
  if (s.includes('\u0000'))
    throw new DataError(
      'UNSUPPORTED_VALUE',
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

/** The array types that pass a list of keys as one parameter, by key field type (their text as `toParam` spells it). */
const KEY_ARRAYS: Readonly<Partial<Record<FieldType, string>>> = {
  uuid: 'uuid[]',
  integer: 'bigint[]',
  bigint: 'bigint[]',
  decimal: 'numeric[]',
  date: 'date[]',
  datetime: 'timestamptz[]',
  boolean: 'boolean[]',
  number: 'float8[]',
};

/** The SQL array of key values passed as parameter `param` (binary keys as bytea, from their base64 text). */
export function keyArrayExpression(spec: FieldSpec, param: string): string {
  if (spec.type === 'binary') return `ARRAY(SELECT decode(k, 'base64') FROM unnest(${param}::text[]) k)`;
  if (spec.type === 'bigint' && spec.unsigned) return `${param}::numeric[]`;
  return `${param}::${KEY_ARRAYS[spec.type] ?? 'text[]'}`;
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
      // Their valid forms hold no COPY specials; an invalid one is escaped, then refused by the server.
      if (typeof value === 'string') return escapeCopy(value);
      throw new TypeError(`expected a string, got ${JSON.stringify(value)}`);
    case 'date':
    case 'datetime':
      if (typeof value === 'string') return escapeCopy(pgDateInput(value));
      throw new TypeError(`expected a string, got ${JSON.stringify(value)}`);
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
      throw new TypeError(`expected an integer, got ${JSON.stringify(value)}`);
    case 'boolean':
      if (typeof value === 'boolean') return value ? 't' : 'f';
      throw new TypeError(`expected a boolean, got ${JSON.stringify(value)}`);
    case 'json':
      // The line transcoder hands over the exact JSON text (checked to be JSON), whatever the line format.
      if (typeof value === 'string') return escapeCopy(value);
      throw new TypeError(`expected the JSON text of the value, got ${typeof value}`);
    default:
      return toCopyText(spec, decodeValue(spec, value));
  }
}

/**
 * How the values of one field cross its column, with the column's native type at hand (see `mysql-native.ts`): the
 * SELECT expression that reads it exactly, how the read text becomes the runtime value, the SQL literal and
 * `LOAD DATA` text that write it, and the values the column cannot hold, refused by name before anything is written.
 *
 * | column            | read                                          | written                                    |
 * |-------------------|-----------------------------------------------|--------------------------------------------|
 * | FLOAT             | `CAST(c AS DOUBLE)`: the float32's exact value (the text protocol keeps 6 digits) | the double; a value FLOAT cannot hold exactly is refused |
 * | BIT(n)            | `LPAD(BIN(c), n, '0')`: n binary digits       | `b'0101'`; LOAD DATA through `CONV(..., 2, 10)` |
 * | YEAR, ZEROFILL    | `c + 0` (no leading zeros: JSON numbers)      | LOAD DATA writes year 0 as `0000` (`0` would be 2000) |
 * | spatial           | `CAST(c AS BINARY)`: SRID + WKB bytes         | the same bytes, which MariaDB takes as they are |
 * | generated         | read like any column                          | never written (the store computes it)      |
 * | JSON              | its exact text (a `JsonText` with `exactJson`) | the text as it is, never through JSON.parse |
 * | DATE, DATETIME, TIMESTAMP | zero dates in the codec's special forms | the same text; no infinities, no years outside 0000-9999, TIMESTAMP's range |
 */
import { DataError, type EntitySchema, type FieldSpec, JsonText } from '@koan/data';
import {
  decodeRecord,
  decodeValue,
  describeKey,
  isSpecialDatetime,
  type JsonEncoding,
  jsonTextOf,
  normalizeDatetime,
} from '@koan/data/adapter-kit';
import { escape as sqlEscape } from 'mysql2/promise';
import { type NativeColumn, type NativeKind, nativeKind, pagesByNumber } from './mysql-native.js';
import { bytesOf, float32Bytes, quoteId, sqlDatetime, tsvText } from './mysql-types.js';

/** One field and the column that holds it. */
export interface ColumnCodec {
  readonly name: string;
  readonly spec: FieldSpec;
  /** The column's native kind, when the table exists and has the column. */
  readonly kind: NativeKind | undefined;
  /** The SELECT expression of the field's value. */
  readonly select: string;
  /** A SELECT expression of the value keyset paging continues after, when it is not the field's own (ENUM, SET, BIT). */
  readonly pageSelect?: string;
  /** The SQL literal of a paging value as the query returned it. */
  pageLiteral(raw: unknown): string;
  /** False when the target table computes the column (generated): it is never written. */
  readonly writable: boolean;
  /** The runtime value of a selected value (never null); `exact` gives json fields as `JsonText`. */
  read(raw: unknown, exact: boolean): unknown;
  /** Why the column cannot hold the runtime value `v` (not null), or undefined. */
  refuse(v: unknown): string | undefined;
  /** The SQL literal of a runtime value (NULL for null and undefined). */
  literal(v: unknown): string;
  /** The `LOAD DATA` text of a runtime value (`\N` for null and undefined). */
  tsv(v: unknown): string;
  /** The column list entry of `LOAD DATA` (a variable when `loadSet` converts it) and its `SET` assignment. */
  readonly loadTarget: string;
  readonly loadSet?: string;
  /** `LOAD DATA` text of a value cut from a canonical archive line; undefined sends the line to `parsed`. */
  canonical(raw: string): string | undefined;
  /** `LOAD DATA` text of a parsed archive value (not null); throws `UNSUPPORTED_VALUE` for what the column cannot hold. */
  parsed(value: unknown): string;
}

/** The refusal of a value the column cannot hold, naming the entity, the field, the key (where known) and why. */
export function unsupportedValue(entity: string, field: string, key: string | undefined, reason: string): DataError {
  return new DataError(
    'UNSUPPORTED_VALUE',
    `[mysql] ${entity}.${field}${key === undefined ? '' : ` (key ${key})`}: MariaDB/MySQL cannot hold this value: ${reason}. Nothing of the batch was written; exclude the entity or change the value at its source.`,
    { details: { entity, field, ...(key === undefined ? {} : { key }), reason } },
  );
}

/**
 * A refusal raised while archive lines became `LOAD DATA` text (the transcoder wraps it in `INVALID_VALUE` with the
 * line's index), as `UNSUPPORTED_VALUE` naming the record's key, read from the line (`lines` start at `firstLine`).
 * Any other error is returned as it is.
 */
export function refusalOfLine(
  e: unknown,
  schema: EntitySchema,
  lines: readonly string[],
  firstLine: number,
  json: JsonEncoding,
): unknown {
  const refusal = e instanceof DataError ? e.cause : undefined;
  if (!(refusal instanceof DataError) || refusal.code !== 'UNSUPPORTED_VALUE') return e;
  const line = (e as DataError).details.line as number | undefined;
  const text = line === undefined ? undefined : lines[line - firstLine];
  let key: string | undefined;
  try {
    if (text !== undefined) key = describeKey(schema, decodeRecord(schema, JSON.parse(text), json).record);
  } catch {
    key = undefined; // the refusal is still named by entity, field and line
  }
  const { field, reason } = refusal.details as { field: string; reason: string };
  const named = unsupportedValue(schema.name, field, key, reason);
  return new DataError(named.code, named.message, {
    cause: e,
    details: { ...named.details, ...(line === undefined ? {} : { line }) },
  });
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A Float32Array (own buffer) of the little-endian float32 bytes of a LONGBLOB, bit for bit. */
function readFloat32(v: unknown): Float32Array {
  const b = v as Uint8Array;
  if (LITTLE_ENDIAN) return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = new Float32Array(b.byteLength >> 2);
  const words = new Uint32Array(out.buffer);
  for (let i = 0; i < words.length; i++) words[i] = view.getUint32(i * 4, true);
  return out;
}

/** `YYYY-MM-DD HH:MM:SS[.f]` (UTC, any precision; zero dates too) as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
export function readDatetime(v: unknown): string {
  const s = String(v);
  if (s.length === 26) return `${s.slice(0, 10)}T${s.slice(11)}Z`;
  const frac = s.length > 20 ? s.slice(20) : '';
  return `${s.slice(0, 10)}T${s.slice(11, 19)}.${`${frac}000000`.slice(0, 6)}Z`;
}

function reader(spec: FieldSpec, entity: string, field: string): (raw: unknown, exact: boolean) => unknown {
  switch (spec.type) {
    case 'integer':
    case 'number':
      return (v) => (typeof v === 'number' ? v : Number(v));
    case 'bigint':
      return (v) => BigInt(v as string);
    case 'decimal':
      return (v) => String(v);
    case 'boolean':
      return (v) => Number(v) !== 0;
    case 'datetime':
      return readDatetime;
    case 'json':
      return (v, exact) => {
        const text = typeof v === 'string' ? v : String(v);
        if (!exact) return JSON.parse(text);
        try {
          return JsonText.parse(text);
        } catch (e) {
          throw new DataError('INVALID_VALUE', `[mysql] ${entity}.${field}: the column holds ${(e as Error).message}`, {
            cause: e,
            details: { entity, field },
          });
        }
      };
    case 'binary':
      return (v) => new Uint8Array(v as Uint8Array);
    case 'vector':
      return readFloat32;
    default:
      return (v) => (typeof v === 'string' ? v : String(v));
  }
}

const INFINITIES = new Set(['infinity', '-infinity']);
const TIMESTAMP_MIN = '1970-01-01T00:00:01.000000Z';
const TIMESTAMP_MAX = '2038-01-19T03:14:07.999999Z';
const ZERO_DATETIME = '0000-00-00T00:00:00.000000Z';

function temporalProblem(text: string, what: 'date' | 'datetime'): string | undefined {
  if (INFINITIES.has(text)) return `MariaDB has no ${text} ${what}`;
  if (text.startsWith('+') || text.startsWith('-'))
    return `the year of ${text} is outside 0000-9999, the years a MariaDB ${what.toUpperCase()} holds`;
  return undefined;
}

function datetimeProblem(kind: NativeKind | undefined, text: string): string | undefined {
  const general = temporalProblem(text, 'datetime');
  if (general) return general;
  if (kind?.kind === 'timestamp') {
    if (text !== ZERO_DATETIME && (isSpecialDatetime(text) || text < TIMESTAMP_MIN || text > TIMESTAMP_MAX))
      return `${text} is outside the range of a TIMESTAMP column (${TIMESTAMP_MIN} to ${TIMESTAMP_MAX}, or the zero date)`;
  }
  if ((kind?.kind === 'timestamp' || kind?.kind === 'datetime') && kind.fraction < 6) {
    const cut = text.slice(20 + kind.fraction, 26);
    if (/[1-9]/.test(cut))
      return `${text} has more fraction digits than the column keeps (${kind.fraction}); MariaDB would cut them`;
  }
  if (kind?.kind === 'date' && text.slice(10) !== 'T00:00:00.000000Z')
    return `${text} has a time of day, which a DATE column would drop`;
  return undefined;
}

/** Sign, integer digits without leading zeros and fraction digits without trailing zeros of a decimal text. */
function decimalDigits(text: string): { int: string; frac: string } | undefined {
  const m = /^[+-]?(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  const digits = (m[1] ?? '') + (m[2] ?? '');
  const point = (m[1] ?? '').length + Number(m[3] ?? 0);
  const padded =
    point < 0
      ? '0'.repeat(-point) + digits
      : point > digits.length
        ? digits + '0'.repeat(point - digits.length)
        : digits;
  const at = Math.max(point, 0);
  return { int: padded.slice(0, at).replace(/^0+/, ''), frac: padded.slice(at).replace(/0+$/, '') };
}

function decimalProblem(kind: NativeKind | undefined, text: string): string | undefined {
  if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') return `MariaDB DECIMAL has no ${text}`;
  if (kind?.kind !== 'decimal') return undefined;
  const d = decimalDigits(text);
  if (!d) return undefined;
  if (d.frac.length > kind.scale)
    return `${text} has ${d.frac.length} fraction digits and the DECIMAL(${kind.precision},${kind.scale}) column keeps ${kind.scale}; MariaDB would round it`;
  if (d.int.length > kind.precision - kind.scale)
    return `${text} does not fit the DECIMAL(${kind.precision},${kind.scale}) column`;
  return undefined;
}

function integerProblem(kind: NativeKind | undefined, v: unknown): string | undefined {
  if (kind?.kind === 'int') {
    const b = BigInt(v as number | bigint);
    if (b < kind.min || b > kind.max) return `${b} is outside the column's range (${kind.min} to ${kind.max})`;
  }
  if (kind?.kind === 'year') {
    const n = Number(v);
    if (n !== 0 && (n < 1901 || n > 2155)) return `${n} is not a YEAR (1901 to 2155, or 0)`;
  }
  return undefined;
}

/** The problem of a runtime value (not null) in a column of `kind`, or undefined when the column holds it exactly. */
function problemOf(spec: FieldSpec, kind: NativeKind | undefined, v: unknown): string | undefined {
  switch (spec.type) {
    case 'datetime':
      return datetimeProblem(kind, canonicalDatetime(v));
    case 'date':
      return temporalProblem(String(v), 'date');
    case 'number': {
      const n = v as number;
      if (!Number.isFinite(n)) return `MariaDB DOUBLE has no ${String(n)}`;
      if (kind?.kind === 'float' && Math.fround(n) !== n)
        return `${n} is not a 32-bit float, which the FLOAT column would round it to`;
      return undefined;
    }
    case 'decimal':
      return decimalProblem(kind, String(v));
    case 'integer':
    case 'bigint':
      return integerProblem(kind, v);
    case 'string':
      if (kind?.kind === 'bit' && !(typeof v === 'string' && v.length === kind.bits && /^[01]*$/.test(v)))
        return `a BIT(${kind.bits}) column holds exactly ${kind.bits} binary digits, not ${JSON.stringify(String(v).slice(0, 80))}`;
      return undefined;
    case 'binary':
      if (kind?.kind === 'binary' && kind.fixed !== undefined && (v as Uint8Array).byteLength < kind.fixed)
        return `${(v as Uint8Array).byteLength} bytes would be padded with zero bytes to the column's BINARY(${kind.fixed})`;
      return undefined;
    default:
      return undefined;
  }
}

function finiteNumber(v: unknown): string {
  const n = v as number;
  return Object.is(n, -0) ? '-0e0' : String(n);
}

/** The SQL literal of a runtime value of `spec` in a column of `kind` (after `refuse`). */
function literalOf(
  spec: FieldSpec,
  kind: NativeKind | undefined,
  entity: string,
  field: string,
): (v: unknown) => string {
  switch (spec.type) {
    case 'integer':
    case 'bigint':
      return (v) => String(v);
    case 'number':
      return finiteNumber;
    case 'boolean':
      return (v) => (v ? '1' : '0');
    case 'datetime':
      return (v) => `'${sqlDatetime(entity, field, v)}'`;
    case 'json':
      return (v) => sqlEscape(jsonTextOf(v));
    case 'binary':
      return (v) => `X'${bytesOf(v).toString('hex')}'`;
    case 'vector':
      return (v) => `X'${float32Bytes(v).toString('hex')}'`;
    case 'string':
      if (kind?.kind === 'bit') return (v) => `b'${String(v)}'`;
      return (v) => sqlEscape(String(v));
    default:
      return (v) => sqlEscape(String(v));
  }
}

/** The `LOAD DATA` text of a runtime value (after `refuse`). */
function tsvOf(spec: FieldSpec, kind: NativeKind | undefined, entity: string, field: string): (v: unknown) => string {
  switch (spec.type) {
    case 'integer':
      // `0` would be year 2000 in a YEAR column; `0000` is year 0.
      if (kind?.kind === 'year') return (v) => (Number(v) === 0 ? '0000' : String(v));
      return (v) => String(v);
    case 'bigint':
      return (v) => String(v);
    case 'number':
      return finiteNumber;
    case 'boolean':
      return (v) => (v ? '1' : '0');
    case 'datetime':
      return (v) => sqlDatetime(entity, field, v);
    case 'json':
      return (v) => tsvText(jsonTextOf(v));
    case 'binary':
      return (v) => bytesOf(v).toString('hex');
    case 'vector':
      return (v) => float32Bytes(v).toString('hex');
    default:
      return (v) => tsvText(String(v));
  }
}

/** The `LOAD DATA` text of a value cut from a canonical line (see `LineTarget.canonical`), before checks. */
function canonicalOf(spec: FieldSpec, kind: NativeKind | undefined): (raw: string) => string | undefined {
  switch (spec.type) {
    case 'integer':
      if (kind?.kind === 'year') return (raw) => (Number(raw) === 0 ? '0000' : String(Number(raw)));
      return (raw) => String(Number(raw));
    case 'bigint':
      return (raw) => BigInt(raw).toString();
    case 'number':
      return (raw) => {
        const v = raw === '-0' ? -0 : Number(raw);
        if (!Number.isFinite(v)) return undefined; // NaN and ±Infinity: the parsing path refuses them by name
        return finiteNumber(v);
      };
    case 'boolean':
      return (raw) => (raw === 'true' ? '1' : '0');
    case 'datetime':
      return (raw) =>
        raw.length === 27 && raw.charCodeAt(26) === 90 && raw.charCodeAt(10) === 84
          ? `${raw.slice(0, 10)} ${raw.slice(11, 26)}`
          : undefined;
    case 'binary':
      return (raw) => Buffer.from(raw, 'base64').toString('hex');
    case 'vector':
      return (raw) => {
        const bytes = Buffer.from(raw, 'base64');
        if (bytes.length % 4 !== 0 || (spec.dimension !== undefined && bytes.length !== spec.dimension * 4))
          return undefined;
        return bytes.toString('hex');
      };
    default:
      // Text cut from a canonical line holds no backslash and no control character: nothing to escape.
      return (raw) => raw;
  }
}

/** The runtime value of a raw canonical token, for the checks of {@link problemOf}. */
function runtimeOfRaw(spec: FieldSpec, raw: string): unknown {
  switch (spec.type) {
    case 'integer':
      return Number(raw);
    case 'bigint':
      return BigInt(raw);
    case 'number':
      return raw === '-0' ? -0 : Number(raw);
    case 'binary':
      return Buffer.from(raw, 'base64');
    default:
      return raw;
  }
}

/** Whether values of `spec` in a column of `kind` can be refused at all (so canonical lines skip the check). */
function checked(spec: FieldSpec, kind: NativeKind | undefined): boolean {
  switch (spec.type) {
    case 'datetime':
    case 'date':
    case 'number':
    case 'decimal':
      return true;
    case 'integer':
    case 'bigint':
      return kind?.kind === 'int' || kind?.kind === 'year';
    case 'string':
      return kind?.kind === 'bit';
    case 'binary':
      return kind?.kind === 'binary' && kind.fixed !== undefined;
    default:
      return false;
  }
}

function selectOf(spec: FieldSpec, kind: NativeKind | undefined, column: string, mariadb: boolean): string {
  switch (kind?.kind) {
    case 'float':
      // The text protocol prints a FLOAT with 6 significant digits (16777216 as 16777200): read the double it holds.
      return spec.type === 'number' ? (mariadb ? `CAST(${column} AS DOUBLE)` : `(${column} + 0e0)`) : column;
    case 'bit':
      return spec.type === 'string' ? `LPAD(BIN(${column}), ${kind.bits}, '0')` : `(${column} + 0)`;
    case 'year':
      return `(${column} + 0)`;
    case 'int':
    case 'decimal':
      return kind.zerofill && spec.type !== 'decimal' ? `(${column} + 0)` : column;
    case 'geometry':
      return `CAST(${column} AS BINARY)`;
    default:
      return column;
  }
}

const NUMERIC_TEXT = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i;

function pageLiteralOf(spec: FieldSpec, kind: NativeKind | undefined): (raw: unknown) => string {
  const numeric = (raw: unknown) => {
    const s = typeof raw === 'number' ? String(raw) : String(raw);
    if (!NUMERIC_TEXT.test(s)) throw new TypeError(`not a number: ${s.slice(0, 40)}`);
    return s;
  };
  if (kind && pagesByNumber(kind)) return numeric;
  switch (kind?.kind) {
    case 'int':
    case 'year':
    case 'decimal':
    case 'float':
    case 'double':
      return numeric;
    case 'binary':
    case 'geometry':
      return (raw) => `X'${bytesOf(raw).toString('hex')}'`;
    case undefined:
      if (spec.type === 'integer' || spec.type === 'bigint' || spec.type === 'number') return numeric;
      if (spec.type === 'binary') return (raw) => `X'${bytesOf(raw).toString('hex')}'`;
      return (raw) => sqlEscape(String(raw));
    default:
      return (raw) => sqlEscape(String(raw));
  }
}

/**
 * The codec of field `name` of `entity` in a column `native` (undefined when the table or the column does not exist:
 * the field type alone decides). `mariadb` picks MariaDB's spelling of a cast.
 */
export function columnCodec(
  entity: string,
  name: string,
  spec: FieldSpec,
  native: NativeColumn | undefined,
  mariadb: boolean,
): ColumnCodec {
  const kind = native ? nativeKind(native) : undefined;
  const column = quoteId(name);
  const read = reader(spec, entity, name);
  const refuse = checked(spec, kind) ? (v: unknown) => problemOf(spec, kind, v) : () => undefined;
  const literal = literalOf(spec, kind, entity, name);
  const tsv = tsvOf(spec, kind, entity, name);
  const base = canonicalOf(spec, kind);
  const isChecked = checked(spec, kind);
  const bits = kind?.kind === 'bit' && spec.type === 'string';
  const hex = spec.type === 'binary' || spec.type === 'vector';
  const variable = `@${name.length <= 60 ? name.replace(/[^A-Za-z0-9_]/g, '_') : 'v'}_${hashOf(name)}`;
  return {
    name,
    spec,
    kind,
    select: selectOf(spec, kind, column, mariadb),
    ...(kind && pagesByNumber(kind) ? { pageSelect: `(${column} + 0)` } : {}),
    pageLiteral: pageLiteralOf(spec, kind),
    writable: native?.generated === undefined,
    read,
    refuse,
    literal: (v) => (v === null || v === undefined ? 'NULL' : literal(v)),
    tsv: (v) => (v === null || v === undefined ? '\\N' : tsv(v)),
    // MariaDB 10.11 drops NO_AUTO_VALUE_ON_ZERO for a column LOAD DATA fills directly when the statement has a SET
    // clause (an id 0 became the next number): an AUTO_INCREMENT column is always assigned through SET.
    loadTarget: native?.generated ? '@koan_generated' : bits || hex || native?.autoIncrement ? variable : column,
    ...(native?.generated
      ? {}
      : bits
        ? { loadSet: `${column} = CAST(CONV(${variable}, 2, 10) AS UNSIGNED)` }
        : hex
          ? { loadSet: `${column} = UNHEX(${variable})` }
          : native?.autoIncrement
            ? { loadSet: `${column} = ${variable}` }
            : {}),
    canonical: isChecked
      ? (raw) => (problemOf(spec, kind, runtimeOfRaw(spec, raw)) === undefined ? base(raw) : undefined)
      : base,
    parsed(value) {
      const v = decodeValue(spec, value);
      const why = isChecked ? problemOf(spec, kind, v) : undefined;
      if (why) throw unsupportedValue(entity, name, undefined, why);
      return tsv(v);
    },
  };
}

/** A short stable hash of a name, for variable names that stay distinct. */
function hashOf(name: string): string {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return (h >>> 0).toString(36);
}

/** Canonical datetime text of a runtime value (for checks of values given as `Date`s or other spellings). */
export function canonicalDatetime(v: unknown): string {
  return typeof v === 'string' && v.length === 27 ? v : (normalizeDatetime(v) ?? String(v));
}

/**
 * Exact conversions between SQLite values and field values, by the column's affinity.
 *
 * SQLite stores any storage class (NULL, INTEGER, REAL, TEXT, BLOB) in any column, converting only what the
 * column's affinity converts (a numeric-looking TEXT into a NUMERIC column becomes an INTEGER or a REAL). So a
 * value read from a column is kept only when writing its field value back into a column of the same affinity stores
 * the same storage class and the same value again; a value that would come back different (a TEXT in an INTEGER
 * column, `5` in a BOOLEAN column, a REAL in a BLOB column...) is a {@link Misfit}, and the read fails naming it
 * rather than changing it. Writes check the same in the other direction (a string `"007"` into a NUMERIC column
 * would be stored as the INTEGER 7; a decimal with more digits than a double holds would be rounded): refused with
 * `UNSUPPORTED_VALUE` before anything is written.
 */
import { DataError, type FieldSpec, type FieldType, JsonText } from '@koan/data';
import { isArchiveDate, isArchiveDatetime, jsonTextOf, sameNumber } from '@koan/data/adapter-kit';

/** A column's affinity, by SQLite's rules (https://sqlite.org/datatype3.html#determination_of_column_affinity). */
export type Affinity = 'INTEGER' | 'TEXT' | 'BLOB' | 'REAL' | 'NUMERIC';

/** The affinity of a declared column type; `ANY` in a STRICT table keeps every value as given (like BLOB). */
export function affinityOf(declared: string, strict = false): Affinity {
  const d = declared.toUpperCase();
  if (strict && d.trim() === 'ANY') return 'BLOB';
  if (d.includes('INT')) return 'INTEGER';
  if (/CHAR|CLOB|TEXT/.test(d)) return 'TEXT';
  if (d.includes('BLOB') || d.trim() === '') return 'BLOB';
  if (/REAL|FLOA|DOUB/.test(d)) return 'REAL';
  return 'NUMERIC';
}

/** The affinity of the columns Koan creates for each field type (see `COLUMN_TYPE`). */
export const NATURAL_AFFINITY: Readonly<Record<FieldType, Affinity>> = Object.freeze({
  string: 'TEXT',
  uuid: 'TEXT',
  integer: 'INTEGER',
  number: 'REAL',
  bigint: 'INTEGER',
  decimal: 'TEXT',
  boolean: 'NUMERIC',
  datetime: 'TEXT',
  date: 'TEXT',
  json: 'TEXT',
  binary: 'BLOB',
  vector: 'BLOB',
});

/** A stored value that its field cannot carry exactly; the reader names the table, column, row and value. */
export class Misfit extends Error {}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UUID_LOWER = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DECIMAL = /^(?:[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|NaN|-?Infinity)$/;
/** A numeric literal as SQLite recognises one when it applies NUMERIC, INTEGER or REAL affinity to a TEXT. */
const SQLITE_NUMBER = /^[ \t\n\f\r\v]*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[ \t\n\f\r\v]*$/;
const SQLITE_INTEGER = /^[+-]?\d+$/;

const isInteger = (v: unknown): v is bigint | number =>
  typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
const isBlob = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/**
 * How a stored value is shown in messages: its storage class and (the start of) its text. `safeIntegers`: the value
 * was read with INTEGERs as bigints, so a number is a REAL (read without, a whole number is an INTEGER: the columns
 * read that way cannot hold a whole REAL).
 */
export function describeStored(v: unknown, safeIntegers = true): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'bigint') return `INTEGER ${v}`;
  if (typeof v === 'number') return `${!safeIntegers && Number.isInteger(v) ? 'INTEGER' : 'REAL'} ${v}`;
  if (typeof v === 'string') return `TEXT ${JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v)}`;
  if (isBlob(v))
    return `BLOB of ${v.byteLength} bytes (x'${Buffer.from(v.subarray(0, 16)).toString('hex')}${v.byteLength > 16 ? '…' : ''}')`;
  return String(v);
}

/**
 * What SQLite stores when `text` is written into a column of affinity `aff`: the same TEXT, or the INTEGER (bigint)
 * or REAL (number) it turns a numeric-looking text into.
 */
export function storedText(text: string, aff: Affinity): string | bigint | number {
  if (aff === 'TEXT' || aff === 'BLOB') return text;
  const m = SQLITE_NUMBER.exec(text);
  if (!m) return text;
  const literal = m[1]!;
  if (SQLITE_INTEGER.test(literal)) {
    const i = BigInt(literal);
    if (i >= INT64_MIN && i <= INT64_MAX) return aff === 'REAL' ? Number(i) : i;
  }
  const x = Number(literal);
  if (aff !== 'REAL' && Number.isInteger(x) && Math.abs(x) < 2 ** 63) return BigInt(x);
  return x;
}

/** The text a numeric storage value reads as in a text-like field, or undefined when no text writes it back exactly. */
function numberText(v: bigint | number, aff: Affinity): string | undefined {
  if (aff === 'TEXT' || aff === 'BLOB') return undefined;
  const text = typeof v === 'bigint' ? v.toString() : String(v);
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return undefined;
  const back = storedText(text, aff);
  return typeof back === typeof v && back === v ? text : undefined;
}

/** Whether writing `text` into a column of affinity `aff` stores it as that same TEXT. */
export function keepsText(text: string, aff: Affinity): boolean {
  return typeof storedText(text, aff) === 'string';
}

type Reader = (v: unknown, exactJson: boolean) => unknown;

const misfit = (expected: string): never => {
  throw new Misfit(expected);
};

/**
 * The reader of one column: a stored value (never NULL) to its field value, or a {@link Misfit} when writing that
 * field value back into a column of the same affinity would not store the same value.
 */
export function readerOf(spec: FieldSpec, aff: Affinity): Reader {
  const textual = (v: unknown, what: string): string => {
    if (typeof v === 'string') {
      if (keepsText(v, aff)) return v;
      return misfit(`${what} (this TEXT would be stored as a number again)`);
    }
    if (isInteger(v) || typeof v === 'number') {
      const text = numberText(v, aff);
      if (text !== undefined) return text;
    }
    return misfit(what);
  };
  switch (spec.type) {
    case 'string':
      return (v) => textual(v, 'a text');
    case 'uuid':
      return (v) => (typeof v === 'string' && UUID_LOWER.test(v) ? v : misfit('a lower-case uuid text'));
    case 'integer':
      return (v) => {
        if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
          return Number(v);
        if (
          typeof v === 'number' &&
          Number.isSafeInteger(v) &&
          (aff === 'INTEGER' || aff === 'NUMERIC' || aff === 'REAL')
        )
          return v;
        return misfit('an INTEGER within ±(2^53-1) (declare the field bigint for larger ones)');
      };
    case 'bigint':
      return (v) => {
        let b: bigint | undefined;
        if (typeof v === 'bigint') b = v;
        else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
        else if (typeof v === 'string' && aff === 'TEXT' && /^-?\d+$/.test(v) && String(BigInt(v)) === v) b = BigInt(v);
        if (b !== undefined && (spec.unsigned ? b >= 0n && b < 2n ** 64n : b >= INT64_MIN && b <= INT64_MAX)) return b;
        return misfit(spec.unsigned ? 'an INTEGER from 0 to 2^64-1' : 'a signed 64-bit INTEGER');
      };
    case 'number':
      return (v) => {
        // A REAL (a double written back is stored as the same REAL, or as the same INTEGER where the affinity makes
        // one of a whole double).
        if (typeof v === 'number' && aff !== 'TEXT') return v;
        if (typeof v === 'bigint' && (aff === 'INTEGER' || aff === 'NUMERIC') && Number.isSafeInteger(Number(v)))
          return Number(v);
        if (isBlob(v) && v.byteLength === 8) {
          // Koan writes NaN and -0 (which a REAL cannot keep) as their 8 bytes: only those read back as numbers.
          const x = Buffer.from(v.buffer, v.byteOffset, 8).readDoubleLE(0);
          if (Number.isNaN(x) || Object.is(x, -0)) return x;
        }
        return misfit('a REAL');
      };
    case 'decimal':
      return (v) => {
        if (typeof v === 'string') return DECIMAL.test(v) && keepsText(v, aff) ? v : misfit('a decimal number');
        return textual(v, 'a decimal number');
      };
    case 'boolean':
      // Read with safeIntegers where the affinity may hold REALs too: a number is then a REAL.
      return (v) => {
        const real = typeof v === 'number';
        if (real ? aff === 'BLOB' || aff === 'TEXT' : aff === 'REAL' || aff === 'TEXT')
          return misfit('the INTEGER 0 or 1');
        if (v === 0 || v === 0n) return false;
        if (v === 1 || v === 1n) return true;
        return misfit('the INTEGER 0 or 1');
      };
    case 'datetime':
      return (v) =>
        typeof v === 'string' && isArchiveDatetime(v)
          ? v
          : misfit('a datetime text "YYYY-MM-DDTHH:MM:SS.ffffffZ" (or infinity, an expanded year, a zero date)');
    case 'date':
      return (v) => (typeof v === 'string' && isArchiveDate(v) ? v : misfit('a date text "YYYY-MM-DD"'));
    case 'json':
      return (v, exactJson) => {
        const text = textual(v, 'JSON text');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          return misfit('JSON text');
        }
        return exactJson ? new JsonText(text) : parsed;
      };
    case 'binary':
      return (v) => (isBlob(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : misfit('a BLOB'));
    case 'vector':
      return (v) =>
        isBlob(v) && v.byteLength === (spec.dimension ?? 0) * 4
          ? bytesFloat32(v)
          : misfit(`a BLOB of ${(spec.dimension ?? 0) * 4} bytes (${spec.dimension} float32s)`);
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/*
 * Vectors are copied as bytes or uint32 words, never read into a JS number: a float32 read as a double has its
 * signalling NaN quieted (0x7f800001 becomes 0x7fc00001), so float reads and writes would lose NaN payloads.
 */

/** The little-endian bytes of a vector, bit for bit. */
export function float32Bytes(v: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  const words = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const out = Buffer.allocUnsafe(v.byteLength);
  for (let i = 0; i < words.length; i++) out.writeUInt32LE(words[i]!, i * 4);
  return out;
}

/** A Float32Array (own buffer) of little-endian float32 bytes, bit for bit. */
function bytesFloat32(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(b);
  else {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const words = new Uint32Array(out.buffer);
    for (let i = 0; i < words.length; i++) words[i] = view.getUint32(i * 4, true);
  }
  return out;
}

/** A refused write: the reason, completed by the writer with the entity, field and key. */
export class Refusal extends Error {}

const refuse = (reason: string): never => {
  throw new Refusal(reason);
};

/** A text to write: JavaScript strings with a lone surrogate would be stored with U+FFFD in its place. */
function wellFormed(s: string): string {
  // String.prototype.isWellFormed is in Node 20 (ES2024), past this project's TypeScript lib.
  return (s as string & { isWellFormed(): boolean }).isWellFormed()
    ? s
    : refuse('it holds a lone UTF-16 surrogate, which UTF-8 text cannot hold');
}

/**
 * A text written into a column of `aff`: kept as TEXT, or turned by the affinity into a number that reads back as
 * this same text (`"1714557600"`, which a NUMERIC column held as the INTEGER it reads as); refused when the number
 * would read back as another text (`"007"`, `"1e2"`, `"3.0"`).
 */
function keptText(s: string, aff: Affinity, what: string): string {
  const stored = storedText(s, aff);
  if (typeof stored === 'string' || numberText(stored, aff) === s) return wellFormed(s);
  return refuse(
    `the ${aff} column would store ${what} ${JSON.stringify(s)} as the number ${String(stored)}, not as that text`,
  );
}

type Writer = (v: unknown) => unknown;

/**
 * The writer of one column: a field value (never null or undefined) to the value bound for a column of affinity
 * `aff`, or a {@link Refusal} when SQLite would store something else (a rounded decimal, a text turned into a
 * number, an unsigned bigint beyond 2^63-1 in a numeric column).
 */
export function writerOf(spec: FieldSpec, aff: Affinity): Writer {
  switch (spec.type) {
    case 'string':
    case 'uuid':
    case 'datetime':
    case 'date':
      return aff === 'TEXT' || aff === 'BLOB'
        ? (v) => wellFormed(v as string)
        : (v) => keptText(v as string, aff, 'the text');
    case 'json':
      return (v) => {
        const text = jsonTextOf(v);
        if (v instanceof JsonText) {
          // SQLite does not check JSON: a JsonText made without JsonText.parse is checked here.
          try {
            JSON.parse(text);
          } catch (e) {
            refuse(`it is not JSON text (${(e as Error).message})`);
          }
        }
        return aff === 'TEXT' || aff === 'BLOB' ? wellFormed(text) : keptText(text, aff, 'the JSON text');
      };
    case 'integer':
      // Bound as a double an integer would be stored as REAL 5.0 (or TEXT '5.0'): bound as an INTEGER.
      return aff === 'INTEGER' || aff === 'NUMERIC' ? (v) => v : (v) => BigInt(v as number);
    case 'bigint':
      return (v) => {
        const b = v as bigint;
        if (aff === 'TEXT') return b.toString();
        if (b > INT64_MAX || b < INT64_MIN)
          return refuse(`${b} is beyond SQLite's signed 64-bit INTEGER (max 9223372036854775807)`);
        if (aff === 'REAL' && (b > 2n ** 53n || b < -(2n ** 53n)))
          return refuse(`the REAL column would round ${b} to a double`);
        return b;
      };
    case 'number':
      if (aff === 'TEXT') return () => refuse('a TEXT column would store the number as text');
      return (v) => {
        const n = v as number;
        if (!Number.isNaN(n) && !Object.is(n, -0)) return n;
        // SQLite turns NaN into NULL and -0 into 0: kept as their 8 bytes, which the reader knows.
        const b = Buffer.allocUnsafe(8);
        b.writeDoubleLE(n);
        return b;
      };
    case 'decimal':
      if (aff === 'TEXT' || aff === 'BLOB') return (v) => v;
      return (v) => {
        const s = v as string;
        if (keepsText(s, aff)) return s; // NaN, Infinity: kept as text
        if (/^[+-]?\d+$/.test(s)) {
          const b = BigInt(s);
          if (b >= INT64_MIN && b <= INT64_MAX && (aff !== 'REAL' || (b <= 2n ** 53n && b >= -(2n ** 53n)))) return b;
        }
        const x = Number(s);
        if (Number.isFinite(x) && sameNumber(s.replace(/^\+/, ''), String(x))) return x;
        return refuse(
          `the ${aff} column stores decimals as 64-bit integers or doubles: ${s} would become ${String(storedText(s, aff))}`,
        );
      };
    case 'boolean':
      if (aff === 'TEXT') return () => refuse('a TEXT column would store the boolean as the text "1" or "0"');
      return (v) => (v ? 1 : 0);
    case 'binary':
      return (v) => Buffer.from((v as Uint8Array).buffer, (v as Uint8Array).byteOffset, (v as Uint8Array).byteLength);
    case 'vector':
      return (v) => float32Bytes(v as Float32Array);
  }
}

/** `UNSUPPORTED_VALUE` for a refused write, naming the entity, field and key. */
export function refusedWrite(entity: string, field: string, key: string, reason: string): DataError {
  return new DataError(
    'UNSUPPORTED_VALUE',
    `[sqlite] ${entity}.${field} of record ${key}: ${reason}. Nothing was written; change the value or the column's type.`,
    { details: { entity, field, key } },
  );
}

/** A key value (or rowid) as shown in messages: numbers as digits, text quoted, bytes in hex. */
export function describeKeyValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Uint8Array) return `x'${Buffer.from(v).toString('hex')}'`;
  return String(v);
}

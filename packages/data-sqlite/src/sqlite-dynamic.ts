/**
 * `dynamic` fields (see `FieldSpec.dynamic`): a column declared without a type (or `ANY` in a STRICT table) holds
 * INTEGERs, REALs, TEXT and BLOBs side by side. Each value is carried as the SQLite literal that spells it, and written
 * back as the value of that storage class: exact, whatever the mix.
 */
import type { FieldSpec } from '@koan/data';
import { type Affinity, keepsText, Misfit, NATURAL_AFFINITY, Refusal } from './sqlite-values.js';

/** The affinity of the column Koan creates for a field: none (BLOB affinity) for a dynamic one. */
export function naturalAffinity(spec: FieldSpec): Affinity {
  return spec.dynamic ? 'BLOB' : NATURAL_AFFINITY[spec.type];
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A REAL as a literal SQLite reads back as the same double: the shortest text of it, always with a point. */
function realLiteral(x: number): string {
  if (!Number.isFinite(x)) return x > 0 ? '9.0e+999' : '-9.0e+999';
  if (Object.is(x, -0)) return '-0.0';
  const text = String(x);
  if (text.includes('.')) return text;
  const e = text.indexOf('e');
  return e < 0 ? `${text}.0` : `${text.slice(0, e)}.0${text.slice(e)}`;
}

/** The literal of a stored value (INTEGERs are read as bigints, REALs as numbers). */
export function dynamicRead(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return realLiteral(v);
  if (typeof v === 'string') return `'${v.replaceAll("'", "''")}'`;
  if (v instanceof Uint8Array)
    return `X'${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex').toUpperCase()}'`;
  throw new Misfit('an INTEGER, REAL, TEXT or BLOB');
}

const INTEGER_LITERAL = /^[+-]?\d+$/;
const REAL_LITERAL = /^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$/;
const TEXT_LITERAL = /^'((?:[^']|'')*)'$/s;
const BLOB_LITERAL = /^[xX]'((?:[0-9a-fA-F]{2})*)'$/;

type Stored = bigint | number | string | Buffer;

/** The value a literal spells, with its storage class; a {@link Refusal} for anything else. */
function parseLiteral(literal: string): Stored {
  if (INTEGER_LITERAL.test(literal)) {
    const i = BigInt(literal);
    if (i >= INT64_MIN && i <= INT64_MAX) return i;
    throw new Refusal(`${literal} is beyond SQLite's signed 64-bit INTEGER`);
  }
  if (REAL_LITERAL.test(literal)) return Number(literal);
  const text = TEXT_LITERAL.exec(literal);
  if (text) return text[1]!.replaceAll("''", "'");
  const blob = BLOB_LITERAL.exec(literal);
  if (blob) return Buffer.from(blob[1]!, 'hex');
  throw new Refusal(
    `${JSON.stringify(literal.length > 80 ? `${literal.slice(0, 80)}…` : literal)} is not a SQLite literal (INTEGER 5, REAL 1.5, TEXT 'a', BLOB X'00')`,
  );
}

const classOf = (v: Stored) =>
  typeof v === 'bigint' ? 'INTEGER' : typeof v === 'number' ? 'REAL' : typeof v === 'string' ? 'TEXT' : 'BLOB';

/** What a column of affinity `aff` would turn a value into, or undefined when it stores it as it is. */
function conversion(v: Stored, aff: Affinity): string | undefined {
  if (aff === 'BLOB' || Buffer.isBuffer(v)) return undefined;
  if (typeof v === 'string') return keepsText(v, aff) ? undefined : 'a number';
  if (aff === 'TEXT') return 'TEXT';
  if (typeof v === 'bigint') return aff === 'REAL' ? 'a REAL' : undefined;
  // INTEGER and NUMERIC affinity store a REAL that is a whole 64-bit integer (-0.0 too) as that INTEGER.
  return aff !== 'REAL' && Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 63 ? 'an INTEGER' : undefined;
}

/** The bound value of a literal for a column of affinity `aff`; a {@link Refusal} where the column would change it. */
export function dynamicWriter(aff: Affinity): (v: unknown) => unknown {
  return (v) => {
    if (typeof v !== 'string') throw new Refusal('a dynamic field takes the SQLite literal of a value, as text');
    const value = parseLiteral(v);
    const to = conversion(value, aff);
    if (to !== undefined)
      throw new Refusal(
        `the ${aff} column would store the ${classOf(value)} ${v} as ${to} (a column declared without a type keeps every value as it is)`,
      );
    return value;
  };
}

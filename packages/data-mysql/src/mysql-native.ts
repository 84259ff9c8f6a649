/**
 * The native columns of a table as `information_schema` describes them, and what each column type is to the adapter:
 * the field type introspection gives it, and the facts reads and writes need to stay exact (FLOAT is read as the
 * double it holds, BIT as its digits, YEAR as a number, generated columns are never written...).
 */
import type { FieldSpec, FieldType } from '@koan/data';
import type { PoolConnection } from 'mysql2/promise';

/** One column of a table, from `information_schema.COLUMNS` (and `CHECK_CONSTRAINTS` for MariaDB's JSON). */
export interface NativeColumn {
  readonly table: string;
  readonly name: string;
  /** `DATA_TYPE`, lower case (`int`, `bit`, `longtext`...). */
  readonly dataType: string;
  /** `COLUMN_TYPE`, lower case (`int(10) unsigned zerofill`, `enum('a','b')`...). */
  readonly columnType: string;
  readonly nullable: boolean;
  /** `NUMERIC_PRECISION` (digits of a DECIMAL, bits of a BIT), or null. */
  readonly precision: number | null;
  readonly scale: number | null;
  /** `DATETIME_PRECISION`: fraction digits of DATETIME, TIMESTAMP and TIME columns. */
  readonly fraction: number | null;
  /** `CHARACTER_MAXIMUM_LENGTH` (characters of text, bytes of binary strings), or null. */
  readonly maxLength: number | null;
  /** `COLUMN_COMMENT`: a `fieldNote` on the columns Koan created. */
  readonly note: string;
  /** The store computes the column (`GENERATED ALWAYS AS (...) VIRTUAL | STORED`). */
  readonly generated?: 'stored' | 'virtual';
  /** `AUTO_INCREMENT` column. */
  readonly autoIncrement: boolean;
  /** A JSON column: MySQL's `json`, or MariaDB's `LONGTEXT` with a `json_valid` check. */
  readonly json: boolean;
}

/** What a column holds, as reads and writes need to know it. */
export type NativeKind =
  | { readonly kind: 'int'; readonly min: bigint; readonly max: bigint; readonly zerofill: boolean }
  | { readonly kind: 'year' }
  | { readonly kind: 'bit'; readonly bits: number }
  | { readonly kind: 'float' }
  | { readonly kind: 'double' }
  | { readonly kind: 'decimal'; readonly precision: number; readonly scale: number; readonly zerofill: boolean }
  | { readonly kind: 'date' }
  | { readonly kind: 'datetime'; readonly fraction: number }
  | { readonly kind: 'timestamp'; readonly fraction: number }
  | { readonly kind: 'time' }
  /** ENUM and SET: ordered by their members' positions, not their text. */
  | { readonly kind: 'enum' }
  | { readonly kind: 'text' }
  | { readonly kind: 'json' }
  | { readonly kind: 'binary'; readonly fixed?: number }
  /** Spatial types: carried as MariaDB's own bytes (4-byte little-endian SRID, then WKB). */
  | { readonly kind: 'geometry' }
  /** MariaDB's UUID type. */
  | { readonly kind: 'uuid' }
  | { readonly kind: 'unknown' };

const INT_BITS: Readonly<Record<string, number>> = { tinyint: 8, smallint: 16, mediumint: 24, int: 32, integer: 32 };
const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'inet4', 'inet6']);
const BINARY_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);
export const GEOMETRY_TYPES: ReadonlySet<string> = new Set([
  'geometry',
  'point',
  'linestring',
  'polygon',
  'multipoint',
  'multilinestring',
  'multipolygon',
  'geometrycollection',
  'geomcollection',
]);

/** The kind of a column (see {@link NativeKind}). */
export function nativeKind(c: NativeColumn): NativeKind {
  const t = c.dataType;
  const unsigned = /\bunsigned\b/.test(c.columnType);
  const zerofill = /\bzerofill\b/.test(c.columnType);
  if (c.json) return { kind: 'json' };
  if (t === 'bigint')
    return unsigned
      ? { kind: 'int', min: 0n, max: 2n ** 64n - 1n, zerofill }
      : { kind: 'int', min: -(2n ** 63n), max: 2n ** 63n - 1n, zerofill };
  const bits = INT_BITS[t];
  if (bits !== undefined)
    return unsigned
      ? { kind: 'int', min: 0n, max: 2n ** BigInt(bits) - 1n, zerofill }
      : { kind: 'int', min: -(2n ** BigInt(bits - 1)), max: 2n ** BigInt(bits - 1) - 1n, zerofill };
  if (t === 'year') return { kind: 'year' };
  if (t === 'bit') return { kind: 'bit', bits: c.precision ?? 1 };
  if (t === 'float') return { kind: 'float' };
  if (t === 'double' || t === 'real' || t === 'double precision') return { kind: 'double' };
  if (t === 'decimal' || t === 'numeric')
    return { kind: 'decimal', precision: c.precision ?? 10, scale: c.scale ?? 0, zerofill };
  if (t === 'date') return { kind: 'date' };
  if (t === 'datetime') return { kind: 'datetime', fraction: c.fraction ?? 0 };
  if (t === 'timestamp') return { kind: 'timestamp', fraction: c.fraction ?? 0 };
  if (t === 'time') return { kind: 'time' };
  if (t === 'enum' || t === 'set') return { kind: 'enum' };
  if (t === 'json') return { kind: 'json' };
  if (TEXT_TYPES.has(t)) return { kind: 'text' };
  if (t === 'binary') return { kind: 'binary', fixed: c.maxLength ?? 1 };
  if (BINARY_TYPES.has(t)) return { kind: 'binary' };
  if (GEOMETRY_TYPES.has(t)) return { kind: 'geometry' };
  if (t === 'uuid') return { kind: 'uuid' };
  return { kind: 'unknown' };
}

/**
 * The field an introspected column becomes, or why it cannot become one. Exact in both directions: every value the
 * column holds is a value of the field, and writes it back unchanged.
 *
 * | column                                           | field                                                 |
 * |--------------------------------------------------|-------------------------------------------------------|
 * | `tinyint` (also `tinyint(1)`), `smallint`, `mediumint`, `int` (signed or unsigned), `year` | integer |
 * | `bigint`                                         | bigint (`unsigned: true` for `bigint unsigned`)       |
 * | `bit(n)`                                         | string of n `0`/`1` digits                            |
 * | `float`, `double`                                | number (FLOAT read as the double it holds)            |
 * | `decimal(p,s)`                                   | decimal (precision, scale)                            |
 * | `date`                                           | date (zero dates in the codec's special forms)        |
 * | `datetime`, `timestamp`                          | datetime (UTC; zero dates too)                        |
 * | `time`, `enum`, `set`, `char`, `varchar`, `*text`, `inet4`, `inet6` | string                             |
 * | `json` (MariaDB: `LONGTEXT` + `json_valid`)      | json (its exact text)                                 |
 * | `binary`, `varbinary`, `*blob`                   | binary                                                |
 * | spatial types                                    | binary: MariaDB's bytes (SRID, then WKB)              |
 * | `uuid` (MariaDB 10.7+)                           | uuid                                                  |
 */
export function fieldOfColumn(c: NativeColumn): { type: FieldType; unsigned?: boolean } | { problem: string } {
  const k = nativeKind(c);
  switch (k.kind) {
    case 'int':
      return k.max > 2n ** 53n ? { type: 'bigint', ...(k.min === 0n ? { unsigned: true } : {}) } : { type: 'integer' };
    case 'year':
      return { type: 'integer' };
    case 'bit':
    case 'time':
    case 'enum':
    case 'text':
      return { type: 'string' };
    case 'float':
    case 'double':
      return { type: 'number' };
    case 'decimal':
      return { type: 'decimal' };
    case 'date':
      return { type: 'date' };
    case 'datetime':
    case 'timestamp':
      return { type: 'datetime' };
    case 'json':
      return { type: 'json' };
    case 'binary':
    case 'geometry':
      return { type: 'binary' };
    case 'uuid':
      return { type: 'uuid' };
    case 'unknown':
      return { problem: `column ${c.name} has type ${c.columnType}, which cannot be carried exactly` };
  }
}

/** Whether the column type orders and compares differently from its text (ENUM, SET) or is bits (BIT). */
export function pagesByNumber(kind: NativeKind): boolean {
  return kind.kind === 'enum' || kind.kind === 'bit';
}

async function rows<T>(conn: PoolConnection, sql: string, values: unknown[], map: (r: unknown[]) => T): Promise<T[]> {
  const [out] = await conn.query({ sql, values, rowsAsArray: true });
  return (out as unknown as unknown[][]).map(map);
}

/** MariaDB keeps JSON as LONGTEXT with a `json_valid(col)` check (`table\0column` of each); MySQL reports `json`. */
export async function jsonColumns(conn: PoolConnection, table?: string): Promise<Set<string>> {
  try {
    const found = await rows(
      conn,
      'SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()' +
        (table === undefined ? '' : ' AND TABLE_NAME = ?'),
      table === undefined ? [] : [table],
      (r) => ({ table: String(r[0]), clause: String(r[1]) }),
    );
    const out = new Set<string>();
    for (const { table: t, clause } of found) {
      const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(clause.trim());
      if (m) out.add(`${t}\0${m[1]!.replaceAll('``', '`')}`);
    }
    return out;
  } catch {
    return new Set(); // servers without CHECK_CONSTRAINTS (MySQL 5.7) have no such columns
  }
}

/** The columns of `table` (every table of the database when undefined), in table and column order. */
export async function nativeColumns(conn: PoolConnection, table?: string): Promise<NativeColumn[]> {
  const json = await jsonColumns(conn, table);
  return rows(
    conn,
    'SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, ' +
      'CHARACTER_MAXIMUM_LENGTH, COLUMN_COMMENT, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()' +
      `${table === undefined ? '' : ' AND TABLE_NAME = ?'} ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    table === undefined ? [] : [table],
    (r) => {
      const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
      const extra = String(r[10] ?? '');
      const generated = /\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b/i.exec(extra)?.[1]?.toLowerCase();
      const dataType = String(r[2]).toLowerCase();
      return {
        table: String(r[0]),
        name: String(r[1]),
        dataType,
        columnType: String(r[3]).toLowerCase(),
        nullable: r[4] === 'YES',
        precision: num(r[5]),
        scale: num(r[6]),
        fraction: num(r[7]),
        maxLength: num(r[8]),
        note: String(r[9] ?? ''),
        ...(generated ? { generated: generated === 'virtual' ? ('virtual' as const) : ('stored' as const) } : {}),
        autoIncrement: /\bauto_increment\b/i.test(extra),
        json: dataType === 'json' || json.has(`${String(r[0])}\0${String(r[1])}`),
      };
    },
  );
}

/** The native columns of one table by name; empty when the table does not exist. */
export async function nativeTable(conn: PoolConnection, table: string): Promise<ReadonlyMap<string, NativeColumn>> {
  return new Map((await nativeColumns(conn, table)).map((c) => [c.name, c]));
}

/** A field spec for an introspected column (see {@link fieldOfColumn}); the caller adds key, nullability and refs. */
export function introspectedSpec(c: NativeColumn, type: FieldType, unsigned: boolean, nullable: boolean): FieldSpec {
  return Object.freeze({
    type,
    optional: false,
    nullable,
    ...(unsigned ? { unsigned: true } : {}),
    ...(type === 'decimal' && c.precision !== null ? { precision: c.precision, scale: c.scale ?? 0 } : {}),
    ...(c.generated ? { generated: c.generated } : {}),
  });
}

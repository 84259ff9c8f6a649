import { DataError, type EntitySchema, type FieldSpec, type FieldType } from '@koan/data';
import { normalizeDatetime } from '@koan/data/adapter-kit';

/**
 * How each field type is stored. Key columns use a binary, NO PAD collation so `ORDER BY key` is UTF-8
 * byte order (the order of `compareKeyValues`) and `'a'` and `'a '` are different keys.
 *
 * | field type | column                                                        | notes |
 * |------------|---------------------------------------------------------------|-------|
 * | string     | `LONGTEXT` (key: `VARCHAR(768)` utf8mb4, binary NO PAD collation) | keys up to 768 characters (3072 index bytes) |
 * | uuid       | `CHAR(36) CHARACTER SET ascii COLLATE ascii_bin`             | lower-case canonical text |
 * | integer    | `BIGINT`                                                      | |
 * | number     | `DOUBLE`                                                      | round-trips exactly (shortest repr.); NaN and ±Infinity are rejected |
 * | bigint     | `BIGINT` (`BIGINT UNSIGNED` when `unsigned`)                  | full 64-bit range |
 * | decimal    | `DECIMAL(p,s)` when `precision` is declared, else `VARCHAR(1024) ascii` | undeclared decimals keep their exact text (`"12.50"`) |
 * | boolean    | `TINYINT(1)`                                                  | read back as `true`/`false` |
 * | datetime   | `DATETIME(6)`                                                 | UTC (session `time_zone = '+00:00'`), microseconds |
 * | date       | `DATE`                                                        | |
 * | json       | `JSON`                                                        | MariaDB: LONGTEXT + `JSON_VALID` check; the text is kept as written |
 * | binary     | `LONGBLOB`                                                    | |
 * | vector     | `LONGBLOB`                                                    | little-endian float32, bit-exact |
 */
export const MYSQL_TYPE_MAPPING: Readonly<Record<FieldType, string>> = Object.freeze({
  string: 'LONGTEXT',
  uuid: 'CHAR(36) CHARACTER SET ascii COLLATE ascii_bin',
  integer: 'BIGINT',
  number: 'DOUBLE',
  bigint: 'BIGINT',
  decimal: 'VARCHAR(1024) CHARACTER SET ascii COLLATE ascii_bin',
  boolean: 'TINYINT(1)',
  datetime: 'DATETIME(6)',
  date: 'DATE',
  json: 'JSON',
  binary: 'LONGBLOB',
  vector: 'LONGBLOB',
});

/** Longest string key, in characters: 768 × 4 bytes is InnoDB's 3072-byte index limit. */
export const MAX_STRING_KEY_LENGTH = 768;

/** Key columns of types whose ordinary column cannot be indexed whole (TEXT, BLOB) or is not exact as a key. */
const KEY_COLUMN: Partial<Record<FieldType, string>> = {
  binary: 'VARBINARY(3072)',
  decimal: 'VARCHAR(767) CHARACTER SET ascii COLLATE ascii_bin',
};

/** InnoDB's limit on the bytes of one index's columns (the primary key's, whole). */
const INDEX_BYTES = 3072;
/** Index bytes of key columns of a fixed size (InnoDB's storage of each type). */
const FIXED_KEY_BYTES: Partial<Record<FieldType, number>> = {
  integer: 8,
  bigint: 8,
  number: 8,
  boolean: 1,
  uuid: 36,
  date: 3,
  datetime: 8,
};

/**
 * Lengths of the variable key columns (strings in characters, binaries and undeclared decimals in bytes) of a key of
 * `keyFields`, so the whole key fits InnoDB's 3072-byte index: one column takes the most it can (768 characters); a
 * composite key shares what its fixed-size columns leave among its variable ones.
 */
export function keyColumnLengths(schema: EntitySchema, keyFields: readonly string[]): Map<string, number> {
  const variable = keyFields.filter(
    (k) => FIXED_KEY_BYTES[schema.fields[k]!.type] === undefined && !isSizedDecimal(schema.fields[k]!),
  );
  const fixed = keyFields.reduce(
    (n, k) => n + (FIXED_KEY_BYTES[schema.fields[k]!.type] ?? (isSizedDecimal(schema.fields[k]!) ? 30 : 0)),
    0,
  );
  const share = variable.length ? Math.floor((INDEX_BYTES - fixed) / variable.length) : 0;
  const lengths = new Map<string, number>();
  for (const k of variable) {
    const type = schema.fields[k]!.type;
    lengths.set(
      k,
      type === 'string'
        ? Math.min(MAX_STRING_KEY_LENGTH, Math.floor(share / 4))
        : Math.min(type === 'binary' ? 3072 : 767, share),
    );
  }
  return lengths;
}

function isSizedDecimal(spec: FieldSpec): boolean {
  return spec.type === 'decimal' && spec.precision !== undefined;
}

/**
 * The column type of a field. `binaryCollation` is the server's utf8mb4 binary NO PAD collation; `keyLength` the
 * length of a variable key column (see {@link keyColumnLengths}).
 */
export function columnType(spec: FieldSpec, isKey: boolean, binaryCollation: string, keyLength?: number): string {
  if (isKey && spec.type === 'string')
    return `VARCHAR(${keyLength ?? MAX_STRING_KEY_LENGTH}) CHARACTER SET utf8mb4 COLLATE ${binaryCollation}`;
  if (isKey && keyLength !== undefined && spec.type === 'binary') return `VARBINARY(${keyLength})`;
  if (isKey && keyLength !== undefined && spec.type === 'decimal' && spec.precision === undefined)
    return `VARCHAR(${keyLength}) CHARACTER SET ascii COLLATE ascii_bin`;
  if (spec.type === 'decimal' && spec.precision !== undefined) {
    const scale = spec.scale ?? 0;
    if (spec.precision >= 1 && spec.precision <= 65 && scale >= 0 && scale <= 30 && scale <= spec.precision)
      return `DECIMAL(${spec.precision},${scale})`;
  }
  if (spec.type === 'bigint' && spec.unsigned) return 'BIGINT UNSIGNED';
  if (isKey && KEY_COLUMN[spec.type]) return KEY_COLUMN[spec.type]!;
  return MYSQL_TYPE_MAPPING[spec.type];
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function quoteId(name: string): string {
  return '`' + name.replaceAll('`', '``') + '`';
}

/**
 * Hidden column for entities with fields that are both optional and nullable: SQL has one NULL for two
 * states, so it lists (as a JSON array) the fields of the row that are absent rather than null.
 */
export const ABSENT_COLUMN = '_koan_absent';

/** Fields whose absence cannot be told from null by the column alone. */
export function ambiguousFields(schema: EntitySchema): string[] {
  return Object.entries(schema.fields).flatMap(([name, spec]) =>
    spec.optional && spec.nullable && name !== schema.key ? [name] : [],
  );
}

/** The {@link ABSENT_COLUMN} value of a record: the absent ones among `fields`, or null when none is. */
export function absentList(record: Record<string, unknown>, fields: readonly string[]): string | null {
  const list = fields.filter((f) => record[f] === undefined);
  return list.length ? JSON.stringify(list) : null;
}

/** Canonical datetime text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) to `YYYY-MM-DD HH:MM:SS.ffffff`. */
export function sqlDatetime(entity: string, field: string, v: unknown): string {
  let s =
    typeof v === 'string' && v.length === 27 && v.charCodeAt(26) === 90 && v.charCodeAt(10) === 84 ? v : undefined;
  s ??= normalizeDatetime(v);
  if (s === undefined)
    throw new DataError('INVALID_VALUE', `${entity}.${field}: expected a datetime, got ${String(v).slice(0, 40)}`, {
      details: { entity, field },
    });
  return s.slice(0, 10) + ' ' + s.slice(11, 26);
}

/** The little-endian bytes of a vector, bit for bit (a `number[]` holds doubles, so it has no signalling NaN). */
export function float32Bytes(v: unknown): Buffer {
  const arr = v instanceof Float32Array ? v : Float32Array.from(v as number[]);
  if (LITTLE_ENDIAN) return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
  const words = new Uint32Array(arr.buffer, arr.byteOffset, arr.length);
  const buf = Buffer.allocUnsafe(arr.byteLength);
  for (let i = 0; i < words.length; i++) buf.writeUInt32LE(words[i]!, i * 4);
  return buf;
}

export function bytesOf(v: unknown): Buffer {
  const b = v as Uint8Array;
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

const TSV_SPECIAL = /[\\\t\n\r\0]/;
const TSV_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
};

/** Text as a field of `LOAD DATA` text (tab-separated, backslash escapes). */
export function tsvText(s: string): string {
  return TSV_SPECIAL.test(s) ? s.replace(/[\\\t\n\r\0]/g, (c) => TSV_ESCAPES[c]!) : s;
}

import {
  DataError,
  decodeValue,
  type EntitySchema,
  type FieldSpec,
  type FieldType,
  type LineTarget,
  normalizeDatetime,
} from '@koan/data';
import { escape as sqlEscape } from 'mysql2/promise';

/**
 * How each field type is stored. Key columns use a binary, NO PAD collation so `ORDER BY key` is UTF-8
 * byte order (the order of `compareKeys`) and `'a'` and `'a '` are different keys.
 *
 * | field type | column                                                        | notes |
 * |------------|---------------------------------------------------------------|-------|
 * | string     | `LONGTEXT` (key: `VARCHAR(768)` utf8mb4, binary NO PAD collation) | keys up to 768 characters (3072 index bytes) |
 * | uuid       | `CHAR(36) CHARACTER SET ascii COLLATE ascii_bin`             | lower-case canonical text |
 * | integer    | `BIGINT`                                                      | |
 * | number     | `DOUBLE`                                                      | round-trips exactly (shortest repr.); NaN and ±Infinity are rejected |
 * | bigint     | `BIGINT`                                                      | full signed 64-bit range |
 * | decimal    | `DECIMAL(p,s)` when `precision` is declared, else `VARCHAR(1024) ascii` | undeclared decimals keep their exact text (`"12.50"`) |
 * | boolean    | `TINYINT(1)`                                                  | read back as `true`/`false` |
 * | datetime   | `DATETIME(6)`                                                 | UTC (session `time_zone = '+00:00'`), microseconds |
 * | date       | `DATE`                                                        | |
 * | json       | `JSON`                                                        | MariaDB: LONGTEXT + `JSON_VALID` check; read back value-equal |
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

/** The column type of a field. `binaryCollation` is the server's utf8mb4 binary NO PAD collation. */
export function columnType(spec: FieldSpec, isKey: boolean, binaryCollation: string): string {
  if (isKey && spec.type === 'string')
    return `VARCHAR(${MAX_STRING_KEY_LENGTH}) CHARACTER SET utf8mb4 COLLATE ${binaryCollation}`;
  if (spec.type === 'decimal' && spec.precision !== undefined) {
    const scale = spec.scale ?? 0;
    if (spec.precision >= 1 && spec.precision <= 65 && scale >= 0 && scale <= 30 && scale <= spec.precision)
      return `DECIMAL(${spec.precision},${scale})`;
  }
  return MYSQL_TYPE_MAPPING[spec.type];
}

export function quoteId(name: string): string {
  return '`' + name.replaceAll('`', '``') + '`';
}

/** Converts a value as the text protocol returns it (`dateStrings`, `bigNumberStrings`, `jsonStrings`) to its runtime form. */
export type ReadConverter = (value: unknown) => unknown;

const identity: ReadConverter = (v) => v;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readDatetime(v: unknown): string {
  const s = String(v);
  if (s.length === 26) return s.slice(0, 10) + 'T' + s.slice(11) + 'Z';
  // DATETIME/TIMESTAMP without 6 fraction digits (introspected tables).
  const frac = s.length > 20 ? s.slice(20) : '';
  return s.slice(0, 10) + 'T' + s.slice(11, 19) + '.' + (frac + '000000').slice(0, 6) + 'Z';
}

/*
 * Vectors are copied as bytes or uint32 words, never read into a JS number: a float32 read as a double has its
 * signalling NaN quieted (0x7f800001 becomes 0x7fc00001), so float reads and writes would lose NaN payloads.
 */

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

export function readConverter(type: FieldType): ReadConverter {
  switch (type) {
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
      return (v) => JSON.parse(typeof v === 'string' ? v : String(v));
    case 'binary':
      return (v) => new Uint8Array(v as Uint8Array);
    case 'vector':
      return readFloat32;
    default:
      return identity;
  }
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

/**
 * Builds records from `rowsAsArray` rows selected in `columns` order, followed by {@link ABSENT_COLUMN}
 * when `withAbsent`.
 */
export function rowReader(
  schema: EntitySchema,
  columns: readonly string[],
  withAbsent: boolean,
): (row: unknown[]) => Record<string, unknown> {
  const specs = columns.map((c) => schema.fields[c]!);
  const convs = specs.map((s) => readConverter(s.type));
  const n = columns.length;
  return (row) => {
    const out: Record<string, unknown> = {};
    const absent = withAbsent && row[n] !== null ? (JSON.parse(String(row[n])) as string[]) : undefined;
    for (let i = 0; i < n; i++) {
      const v = row[i];
      if (v === null || v === undefined) {
        const spec = specs[i]!;
        // NULL in an optional field that is not nullable means "absent"; for optional nullable ones the list says.
        if (spec.optional && (!spec.nullable || absent?.includes(columns[i]!))) continue;
        out[columns[i]!] = null;
      } else out[columns[i]!] = convs[i]!(v);
    }
    return out;
  };
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

function finiteNumber(entity: string, field: string, v: unknown): string {
  const n = v as number;
  if (Number.isFinite(n)) return Object.is(n, -0) ? '-0e0' : String(n);
  throw new DataError('UNSUPPORTED_VALUE', `${entity}.${field}: MySQL DOUBLE cannot store ${String(n)}`, {
    details: { entity, field },
  });
}

/** Converts a runtime value to an SQL literal for a multi-row INSERT. */
export type LiteralWriter = (value: unknown) => string;

export function literalWriter(entity: string, field: string, spec: FieldSpec): LiteralWriter {
  const nullable =
    (w: LiteralWriter): LiteralWriter =>
    (v) =>
      v === null || v === undefined ? 'NULL' : w(v);
  switch (spec.type) {
    case 'integer':
    case 'bigint':
      return nullable((v) => String(v));
    case 'number':
      return nullable((v) => finiteNumber(entity, field, v));
    case 'boolean':
      return nullable((v) => (v ? '1' : '0'));
    case 'datetime':
      return nullable((v) => `'${sqlDatetime(entity, field, v)}'`);
    case 'json':
      return nullable((v) => sqlEscape(JSON.stringify(v)));
    case 'binary':
      return nullable((v) => "X'" + bytesOf(v).toString('hex') + "'");
    case 'vector':
      return nullable((v) => "X'" + float32Bytes(v).toString('hex') + "'");
    case 'decimal':
      return nullable((v) => sqlEscape(String(v)));
    default:
      return nullable((v) => sqlEscape(String(v)));
  }
}

const TSV_SPECIAL = /[\\\t\n\r\0]/;
const TSV_ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
};

function tsvText(s: string): string {
  return TSV_SPECIAL.test(s) ? s.replace(/[\\\t\n\r\0]/g, (c) => TSV_ESCAPES[c]!) : s;
}

/** Converts a runtime value to a field of `LOAD DATA` text (tab-separated, backslash escapes, `\N` for NULL). */
export function tsvWriter(entity: string, field: string, spec: FieldSpec): LiteralWriter {
  const nullable =
    (w: LiteralWriter): LiteralWriter =>
    (v) =>
      v === null || v === undefined ? '\\N' : w(v);
  switch (spec.type) {
    case 'integer':
    case 'bigint':
      return nullable((v) => String(v));
    case 'number':
      return nullable((v) => finiteNumber(entity, field, v));
    case 'boolean':
      return nullable((v) => (v ? '1' : '0'));
    case 'datetime':
      return nullable((v) => sqlDatetime(entity, field, v));
    case 'json':
      return nullable((v) => tsvText(JSON.stringify(v)));
    case 'binary':
      return nullable((v) => bytesOf(v).toString('hex'));
    case 'vector':
      return nullable((v) => float32Bytes(v).toString('hex'));
    default:
      return nullable((v) => tsvText(String(v)));
  }
}

/** Field type of an introspected column, from `information_schema.COLUMNS`; undefined when unsupported. */
export function fieldTypeOfColumn(dataType: string, columnType: string): FieldType | undefined {
  const t = dataType.toLowerCase();
  const full = columnType.toLowerCase();
  if (t === 'tinyint' && /^tinyint\(1\)/.test(full)) return 'boolean';
  switch (t) {
    case 'char':
    case 'varchar':
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
    case 'enum':
    case 'set':
    case 'time':
      return 'string';
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'int':
    case 'integer':
    case 'year':
      return 'integer';
    case 'bigint':
      return 'bigint';
    case 'decimal':
    case 'numeric':
      return 'decimal';
    case 'float':
    case 'double':
    case 'real':
      return 'number';
    case 'datetime':
    case 'timestamp':
      return 'datetime';
    case 'date':
      return 'date';
    case 'json':
      return 'json';
    case 'binary':
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return 'binary';
    default:
      return undefined;
  }
}

/**
 * `LOAD DATA` text of archive lines (see `lineTranscoder` in `@koan/data`): the same text {@link tsvWriter} makes of
 * the decoded values. Canonical values need no escaping (they hold no backslash and no control character).
 */
export function loadDataTarget(entity: string): LineTarget {
  return {
    null: '\\N',
    separator: '\t',
    canonical(spec) {
      switch (spec.type) {
        case 'integer':
          return (raw) => String(Number(raw));
        case 'bigint':
          return (raw) => BigInt(raw).toString();
        case 'number':
          return (raw) => {
            const v = raw === '-0' ? -0 : Number(raw);
            if (!Number.isFinite(v)) return undefined; // NaN and ±Infinity: the parsing path refuses them by name
            return Object.is(v, -0) ? '-0e0' : String(v);
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
          return (raw) => raw;
      }
    },
    parsed(spec, name) {
      const write = tsvWriter(entity, name, spec);
      return (value) => write(decodeValue(spec, value));
    },
  };
}

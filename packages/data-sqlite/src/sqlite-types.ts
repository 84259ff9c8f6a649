/**
 * How Koan field types live in SQLite columns, both ways.
 *
 * | field type | declared column type | stored as |
 * |------------|----------------------|-----------|
 * | string     | `TEXT`               | TEXT |
 * | uuid       | `UUID_TEXT`          | TEXT, lower case |
 * | integer    | `INTEGER`            | INTEGER |
 * | number     | `REAL`               | REAL; `NaN` and `-0` (which SQLite cannot keep in REAL) as an 8-byte little-endian float64 BLOB |
 * | bigint     | `BIGINT`             | INTEGER (64-bit), read with `safeIntegers` so it is exact |
 * | decimal    | `DECIMAL_TEXT`       | TEXT, exactly as given (`"12.50"`) |
 * | boolean    | `BOOLEAN`            | INTEGER 0/1 |
 * | datetime   | `DATETIME_TEXT`      | TEXT, canonical `2024-05-01T10:00:00.123456Z` |
 * | date       | `DATE_TEXT`          | TEXT `YYYY-MM-DD` |
 * | json       | `JSON_TEXT`          | TEXT (JSON) |
 * | binary     | `BLOB`               | BLOB |
 * | vector     | `VECTOR_F32_BLOB`    | BLOB of little-endian float32s |
 *
 * The `_TEXT` names keep SQLite's TEXT affinity (a plain `DECIMAL` column would turn `"12.50"` into 12.5).
 */
import type { DataRecord, EntitySchema, FieldSpec, FieldType } from '@koan/data';
import { decodeArchiveLines, decodeValue, type JsonEncoding, normalizeDatetime, scanCanonicalLine } from '@koan/data';

export const COLUMN_TYPE: Readonly<Record<FieldType, string>> = Object.freeze({
  string: 'TEXT',
  uuid: 'UUID_TEXT',
  integer: 'INTEGER',
  number: 'REAL',
  bigint: 'BIGINT',
  decimal: 'DECIMAL_TEXT',
  boolean: 'BOOLEAN',
  datetime: 'DATETIME_TEXT',
  date: 'DATE_TEXT',
  json: 'JSON_TEXT',
  binary: 'BLOB',
  vector: 'VECTOR_F32_BLOB',
});

const KOAN_TYPE = new Map(Object.entries(COLUMN_TYPE).map(([field, column]) => [column, field as FieldType]));

/**
 * The field type of a column declared in a database Koan did not create, by SQLite's affinity rules
 * refined by common names (`DATETIME`, `BOOLEAN`, `NUMERIC(10,2)`, `BIGINT`...).
 */
export function fieldTypeOfColumn(declared: string): FieldType {
  const d = declared.trim().toUpperCase();
  const koan = KOAN_TYPE.get(d);
  if (koan) return koan;
  if (d.includes('BOOL')) return 'boolean';
  if (/BIGINT|INT8/.test(d)) return 'bigint';
  if (d.includes('INT')) return 'integer';
  if (/DATETIME|TIMESTAMP/.test(d)) return 'datetime';
  if (d === 'DATE') return 'date';
  if (d.includes('JSON')) return 'json';
  if (/CHAR|CLOB|TEXT/.test(d)) return 'string';
  if (d.includes('BLOB')) return 'binary';
  if (/REAL|FLOA|DOUB/.test(d)) return 'number';
  if (/DEC|NUM|MONEY/.test(d)) return 'decimal';
  return 'string';
}

export const ABSENT_COLUMN = '__koan_absent';

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/*
 * Vectors are copied as bytes or uint32 words, never read into a JS number: a float32 read as a double has its
 * signalling NaN quieted (0x7f800001 becomes 0x7fc00001), so float reads and writes would lose NaN payloads.
 */

/** The little-endian bytes of a vector, bit for bit. */
function float32Bytes(v: Float32Array): Buffer {
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

type ToSqlite = (v: unknown) => unknown;
type FromSqlite = (v: unknown) => unknown;

function toSqlite(type: FieldType): ToSqlite | undefined {
  switch (type) {
    case 'number':
      return (v) => {
        const n = v as number;
        if (!Number.isNaN(n) && !Object.is(n, -0)) return n;
        const b = Buffer.allocUnsafe(8);
        b.writeDoubleLE(n);
        return b;
      };
    case 'boolean':
      return (v) => (v ? 1 : 0);
    case 'json':
      return (v) => JSON.stringify(v);
    case 'binary':
      return (v) => Buffer.from((v as Uint8Array).buffer, (v as Uint8Array).byteOffset, (v as Uint8Array).byteLength);
    case 'vector':
      return (v) => float32Bytes(v as Float32Array);
    default:
      return undefined; // stored as is: strings, safe integers, bigints
  }
}

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
  return String(v);
}

/** `lenient` for tables Koan did not create, where a column may hold any storage class. */
function fromSqlite(type: FieldType, lenient: boolean): FromSqlite {
  switch (type) {
    case 'integer':
      return (v) => (typeof v === 'number' ? v : Number(v));
    case 'bigint':
      return (v) =>
        typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : BigInt(asText(v));
    case 'number':
      return (v) =>
        typeof v === 'number'
          ? v
          : v instanceof Uint8Array && v.byteLength === 8
            ? Buffer.from(v).readDoubleLE(0)
            : Number(v);
    case 'boolean':
      return (v) => (typeof v === 'string' ? v === '1' || v.toLowerCase() === 'true' : Number(v) !== 0);
    case 'json':
      return lenient
        ? (v) => {
            try {
              return JSON.parse(asText(v));
            } catch {
              return asText(v);
            }
          }
        : (v) => JSON.parse(v as string);
    case 'binary':
      return (v) =>
        v instanceof Uint8Array
          ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
          : new Uint8Array(Buffer.from(asText(v), 'utf8'));
    case 'vector':
      return (v) => bytesFloat32(v as Uint8Array);
    case 'datetime':
      return lenient ? (v) => normalizeDatetime(asText(v)) ?? asText(v) : asText;
    default:
      return asText;
  }
}

/** Row conversion for one entity schema: the column list and record <-> positional row. */
export interface RowCodec {
  /** Field columns, then the hidden absent-fields column where the schema needs one. */
  readonly columns: readonly string[];
  readonly hasAbsentColumn: boolean;
  /** Read statements must return integers as bigint (the schema has bigint fields). */
  readonly safeIntegers: boolean;
  toRow(record: DataRecord): unknown[];
  fromRow(row: readonly unknown[]): DataRecord;
}

const codecs = new WeakMap<EntitySchema, RowCodec>();

/**
 * `__koan_absent` (a JSON array of field names) exists only when some field is both optional and nullable:
 * it is what tells a missing value from `null` there, since both are SQL NULL.
 */
export function rowCodec(schema: EntitySchema): RowCodec {
  let codec = codecs.get(schema);
  if (codec) return codec;
  const fields = Object.entries(schema.fields) as [string, FieldSpec][];
  const names = fields.map(([name]) => name);
  const to = fields.map(([, spec]) => toSqlite(spec.type));
  const lenient = schema.origin === 'introspected';
  const from = fields.map(([, spec]) => fromSqlite(spec.type, lenient));
  const ambiguous = fields.map(([, spec]) => spec.optional && spec.nullable);
  const nullIsNull = fields.map(([, spec]) => spec.nullable || !spec.optional);
  const hasAbsentColumn = ambiguous.some(Boolean);
  const n = fields.length;
  codec = {
    columns: hasAbsentColumn ? [...names, ABSENT_COLUMN] : names,
    hasAbsentColumn,
    safeIntegers: fields.some(([, spec]) => spec.type === 'bigint'),
    toRow(record) {
      const row: unknown[] = new Array(hasAbsentColumn ? n + 1 : n);
      let absent: string[] | undefined;
      for (let i = 0; i < n; i++) {
        const v = record[names[i]!];
        if (v === undefined || v === null) {
          row[i] = null;
          if (v === undefined && ambiguous[i]) {
            absent ??= [];
            absent.push(names[i]!);
          }
        } else {
          const convert = to[i];
          row[i] = convert ? convert(v) : v;
        }
      }
      if (hasAbsentColumn) row[n] = absent ? JSON.stringify(absent) : null;
      return row;
    },
    fromRow(row) {
      const out: DataRecord = {};
      const absent = hasAbsentColumn && row[n] != null ? new Set(JSON.parse(row[n] as string) as string[]) : undefined;
      for (let i = 0; i < n; i++) {
        const v = row[i];
        const name = names[i]!;
        if (v === null || v === undefined) {
          if (nullIsNull[i] && !absent?.has(name)) out[name] = null;
        } else out[name] = from[i]!(v);
      }
      return out;
    },
  };
  codecs.set(schema, codec);
  return codec;
}

const JSON_LINE_TYPES: ReadonlySet<FieldType> = new Set([
  'string',
  'uuid',
  'integer',
  'bigint',
  'decimal',
  'boolean',
  'datetime',
  'date',
  'json',
]);

/** SQL that renders archive JSON lines inside SQLite, for the export fast path. */
export interface JsonLinesSql {
  /** Expression building one record's JSON line from a row. */
  readonly render: string;
}

const jsonLinesCache = new WeakMap<EntitySchema, JsonLinesSql | null>();

const sqlString = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * The export fast path serves an entity when SQLite's own JSON functions produce exactly the archive encoding of
 * every field: no doubles (SQLite prints 15 digits), no binary or vectors (no base64), no optional fields
 * (json_object cannot omit a key), and only tables Koan created (introspected columns may hold any storage class).
 * Anything else goes through `exportEntity`. (Imports of lines serve every entity: see {@link lineRows}.)
 */
export function jsonLinesSql(schema: EntitySchema): JsonLinesSql | undefined {
  const cached = jsonLinesCache.get(schema);
  if (cached !== undefined) return cached ?? undefined;
  const fields = Object.entries(schema.fields) as [string, FieldSpec][];
  const ok =
    schema.origin === 'declared' &&
    fields.every(([, f]) => JSON_LINE_TYPES.has(f.type) && !f.optional) &&
    !schema.keyFields?.length;
  if (!ok) {
    jsonLinesCache.set(schema, null);
    return undefined;
  }
  const parts: string[] = [];
  for (const [name, f] of fields) {
    const col = quoteIdent(name);
    let render: string;
    switch (f.type) {
      case 'bigint':
        render = `CAST(${col} AS TEXT)`;
        break;
      case 'boolean':
        render = `CASE WHEN ${col} IS NULL THEN NULL WHEN ${col} THEN json('true') ELSE json('false') END`;
        break;
      case 'json':
        render = `json(${col})`;
        break;
      default:
        render = col;
    }
    parts.push(`${sqlString(name)}, ${render}`);
  }
  const sql: JsonLinesSql = { render: `json_object(${parts.join(', ')})` };
  jsonLinesCache.set(schema, sql);
  return sql;
}

/** A bound SQLite value from a canonical line's raw value (see `scanCanonicalLine`); `undefined` declines the line. */
function canonicalToSqlite(spec: FieldSpec): (raw: string) => unknown {
  const store = toSqlite(spec.type);
  switch (spec.type) {
    case 'integer':
      return Number;
    case 'bigint':
      return BigInt;
    case 'number':
      return (raw) =>
        store!(raw === 'NaN' || raw === 'Infinity' || raw === '-Infinity' ? decodeValue(spec, raw) : Number(raw));
    case 'boolean':
      return (raw) => (raw === 'true' ? 1 : 0);
    case 'binary':
      return (raw) => Buffer.from(raw, 'base64');
    case 'vector':
      return (raw) => {
        const bytes = Buffer.from(raw, 'base64');
        if (bytes.length % 4 !== 0 || (spec.dimension !== undefined && bytes.length !== spec.dimension * 4))
          return undefined;
        return bytes; // the archive's bytes are the stored form already (little-endian float32s)
      };
    default: // text kinds and json text are stored as they are written
      return (raw) => raw;
  }
}

const lineRowsCaches: Record<JsonEncoding, WeakMap<EntitySchema, (line: string, index: number) => unknown[]>> = {
  text: new WeakMap(),
  nested: new WeakMap(),
};

/**
 * The bound row (`rowCodec(schema).columns` order) of an archive line: canonical lines are cut up without
 * `JSON.parse` or record objects; any other line is parsed and decoded like `decodeRecord` (which names what is
 * wrong, `details.line` = `index`). Both give the row `rowCodec(schema).toRow` gives for the decoded record.
 */
export function lineRows(schema: EntitySchema, json: JsonEncoding): (line: string, index: number) => unknown[] {
  const lineRowsCache = lineRowsCaches[json];
  let read = lineRowsCache.get(schema);
  if (read) return read;
  const codec = rowCodec(schema);
  const convert = Object.values(schema.fields).map(canonicalToSqlite);
  const scans = !codec.hasAbsentColumn;
  read = (line, index) => {
    const tokens = scans ? scanCanonicalLine(schema, line, json) : undefined;
    if (tokens) {
      const row: unknown[] = tokens;
      let ok = true;
      for (let i = 0; i < tokens.length; i++) {
        const raw = tokens[i];
        if (raw === null || raw === undefined) row[i] = null;
        else {
          const v = convert[i]!(raw);
          if (v === undefined) {
            ok = false;
            break;
          }
          row[i] = v;
        }
      }
      if (ok) return row;
    }
    return codec.toRow(decodeArchiveLines(schema, [line], json, index)[0]!);
  };
  lineRowsCache.set(schema, read);
  return read;
}

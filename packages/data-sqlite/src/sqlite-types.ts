/**
 * How Koan field types live in SQLite columns, both ways.
 *
 * | field type | declared column type | stored as |
 * |------------|----------------------|-----------|
 * | string     | `TEXT`               | TEXT |
 * | uuid       | `UUID_TEXT`          | TEXT, lower case |
 * | integer    | `INTEGER`            | INTEGER |
 * | number     | `REAL`               | REAL; `NaN` and `-0` (which SQLite cannot keep in REAL) as an 8-byte little-endian float64 BLOB |
 * | bigint     | `BIGINT`             | INTEGER (64-bit), read with `safeIntegers` so it is exact; beyond 2^63-1 refused |
 * | decimal    | `DECIMAL_TEXT`       | TEXT, exactly as given (`"12.50"`) |
 * | boolean    | `BOOLEAN`            | INTEGER 0/1 |
 * | datetime   | `DATETIME_TEXT`      | TEXT, canonical `2024-05-01T10:00:00.123456Z` |
 * | date       | `DATE_TEXT`          | TEXT `YYYY-MM-DD` |
 * | json       | `JSON_TEXT`          | TEXT, the JSON text exactly as given (checked to be JSON) |
 * | binary     | `BLOB`               | BLOB |
 * | vector     | `VECTOR_F32_BLOB`    | BLOB of little-endian float32s |
 *
 * The `_TEXT` names keep SQLite's TEXT affinity (a plain `DECIMAL` column would turn `"12.50"` into 12.5).
 */
import { DataError, type DataRecord, type EntitySchema, type FieldSpec, type FieldType } from '@koan/data';
import {
  decodeArchiveLines,
  decodeValue,
  describeKey,
  type JsonEncoding,
  keyFieldsOf,
  scanCanonicalLine,
} from '@koan/data/adapter-kit';
import { dynamicRead, dynamicWriter, naturalAffinity } from './sqlite-dynamic.js';
import {
  type Affinity,
  describeKeyValue,
  describeStored,
  Misfit,
  NATURAL_AFFINITY,
  Refusal,
  readerOf,
  refusedWrite,
  writerOf,
} from './sqlite-values.js';

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
 * refined by common names (`BOOLEAN`, `NUMERIC(10,2)`, `BIGINT`, `DATE`...). `DATETIME`/`TIMESTAMP` columns are
 * strings (their text is kept exactly as spelled). Values that do not fit are refused by name when read (see
 * `sqlite-values.ts`).
 */
export function fieldTypeOfColumn(declared: string): FieldType {
  const d = declared.trim().toUpperCase();
  const koan = KOAN_TYPE.get(d);
  if (koan) return koan;
  if (d.includes('BOOL')) return 'boolean';
  if (/BIGINT|INT8/.test(d)) return 'bigint';
  if (d.includes('INT')) return 'integer';
  // SQLite has no datetime storage: DATETIME and TIMESTAMP columns hold text in any spelling ('2024-05-01 10:00:00',
  // ISO 8601 with T and Z...) or numbers. Carried as strings, the spelling comes back exactly.
  if (/DATETIME|TIMESTAMP/.test(d)) return 'string';
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

/** What the adapter knows of one column of a physical table. */
export interface ColumnShape {
  readonly affinity: Affinity;
  /** A generated column (`GENERATED ALWAYS AS ...`): read, never written. */
  readonly generated: boolean;
}

/** The columns of a physical table by name (`PRAGMA table_xinfo`), or undefined when the table does not exist. */
export type TableShape = ReadonlyMap<string, ColumnShape>;

/** Row conversion for one entity schema over one table: the column lists and record <-> positional row. */
export interface RowCodec {
  /** Columns read: the fields, then the hidden absent-fields column where the schema needs one. */
  readonly columns: readonly string[];
  /** Columns written (`columns` without the table's generated columns), in that order. */
  readonly writeColumns: readonly string[];
  readonly hasAbsentColumn: boolean;
  /** Read statements return INTEGERs as bigints (always: see `buildCodec`). */
  readonly safeIntegers: boolean;
  /**
   * Every column has its field type's own affinity (the table's columns are the ones Koan creates) and none is
   * generated: archive lines can be bound without building records (`lineRows`) and SQLite can render lines itself.
   */
  readonly natural: boolean;
  /** The bound row of a record in `writeColumns` order; `UNSUPPORTED_VALUE` when SQLite would store another value. */
  toRow(record: DataRecord): unknown[];
  /**
   * The record of a row read in `columns` order (for a keyless table, its rowid follows). `exactJson` gives json
   * fields as `JsonText`. A value its field cannot carry exactly fails with `UNSUPPORTED_VALUE` naming the table,
   * column, key (or rowid) and value.
   */
  fromRow(row: readonly unknown[], exactJson?: boolean): DataRecord;
}

const codecs = new WeakMap<EntitySchema, Map<string, RowCodec>>();

/** The shape of a table Koan creates for `schema`: each column with its field type's own affinity. */
function naturalShape(schema: EntitySchema): TableShape {
  return new Map(
    Object.entries(schema.fields).map(([name, spec]) => [name, { affinity: naturalAffinity(spec), generated: false }]),
  );
}

/**
 * The row codec of `schema` over a table of `shape` (default: the table Koan creates for it). Columns the table
 * lacks keep their field's own affinity (writing them fails naming the column).
 *
 * `__koan_absent` (a JSON array of field names) exists only when some field is both optional and nullable:
 * it is what tells a missing value from `null` there, since both are SQL NULL.
 */
export function rowCodec(schema: EntitySchema, shape?: TableShape): RowCodec {
  const table = shape ?? naturalShape(schema);
  const signature = [...table].map(([n, c]) => `${n}\u0000${c.affinity}\u0000${c.generated ? 1 : 0}`).join('\u0001');
  let bySignature = codecs.get(schema);
  if (!bySignature) {
    bySignature = new Map();
    codecs.set(schema, bySignature);
  }
  let codec = bySignature.get(signature);
  if (!codec) {
    codec = buildCodec(schema, table);
    bySignature.set(signature, codec);
  }
  return codec;
}

function buildCodec(schema: EntitySchema, table: TableShape): RowCodec {
  const fields = Object.entries(schema.fields) as [string, FieldSpec][];
  const names = fields.map(([name]) => name);
  const affinities = fields.map(([name, spec]) => table.get(name)?.affinity ?? naturalAffinity(spec));
  const written = fields.map(([name]) => table.get(name)?.generated !== true);
  const to = fields.map(([, spec], i) =>
    spec.dynamic ? dynamicWriter(affinities[i]!) : writerOf(spec, affinities[i]!),
  );
  const from = fields.map(([, spec], i) => (spec.dynamic ? dynamicRead : readerOf(spec, affinities[i]!)));
  const ambiguous = fields.map(([, spec]) => spec.optional && spec.nullable);
  const nullIsNull = fields.map(([, spec]) => spec.nullable || !spec.optional);
  const hasAbsentColumn = ambiguous.some(Boolean);
  const n = fields.length;
  // A dynamic field's archive value is a literal, not the stored value: never the natural shape.
  const natural = fields.every(
    ([, spec], i) => !spec.dynamic && affinities[i] === NATURAL_AFFINITY[spec.type] && written[i],
  );
  const keyIndexes = keyFieldsOf(schema).map((k) => names.indexOf(k));
  const table_ = schema.table ?? schema.name;
  const where = (row: readonly unknown[]) =>
    schema.keyless
      ? `rowid ${String(row[hasAbsentColumn ? n + 1 : n])}`
      : `key ${keyIndexes.map((i) => describeKeyValue(row[i])).join(', ')}`;
  // INTEGERs are read as bigints: exact whatever their size (a value beyond 2^53 is named as stored), and told from
  // REALs (read as numbers) where a column may hold both.
  const safeIntegers = true;
  const columns = hasAbsentColumn ? [...names, ABSENT_COLUMN] : names;
  const writeColumns = columns.filter((_, i) => i >= n || written[i]);
  return {
    columns,
    writeColumns,
    hasAbsentColumn,
    natural,
    safeIntegers,
    toRow(record) {
      const row: unknown[] = [];
      let absent: string[] | undefined;
      for (let i = 0; i < n; i++) {
        if (!written[i]) continue;
        const v = record[names[i]!];
        if (v === undefined || v === null) {
          row.push(null);
          if (v === undefined && ambiguous[i]) {
            absent ??= [];
            absent.push(names[i]!);
          }
        } else {
          try {
            row.push(to[i]!(v));
          } catch (e) {
            if (!(e instanceof Refusal)) throw e;
            throw refusedWrite(schema.name, names[i]!, describeKey(schema, record), e.message);
          }
        }
      }
      if (hasAbsentColumn) row.push(absent ? JSON.stringify(absent) : null);
      return row;
    },
    fromRow(row, exactJson = false) {
      const out: DataRecord = {};
      const absent = hasAbsentColumn && row[n] != null ? new Set(JSON.parse(row[n] as string) as string[]) : undefined;
      for (let i = 0; i < n; i++) {
        const v = row[i];
        const name = names[i]!;
        if (v === null || v === undefined) {
          if (nullIsNull[i] && !absent?.has(name)) out[name] = null;
          else if (keyIndexes.includes(i))
            throw misfitRead(schema, table_, name, where(row), describeStored(v), 'a key value, not NULL');
        } else {
          try {
            out[name] = from[i]!(v, exactJson);
          } catch (e) {
            if (!(e instanceof Misfit)) throw e;
            throw misfitRead(schema, table_, name, where(row), describeStored(v, safeIntegers), e.message);
          }
        }
      }
      return out;
    },
  };
}

/** `UNSUPPORTED_VALUE` for a stored value its field cannot carry exactly: the read fails instead of changing it. */
function misfitRead(
  schema: EntitySchema,
  table: string,
  field: string,
  where: string,
  value: string,
  expected: string,
): DataError {
  const spec = schema.fields[field]!;
  return new DataError(
    'UNSUPPORTED_VALUE',
    `[sqlite] Table ${table}, column ${field}, row with ${where}: holds ${value}, which the ${spec.type} field ${schema.name}.${field} cannot carry exactly (it takes ${expected}). Nothing is changed silently: fix the value in the database, or exclude the entity.`,
    { details: { entity: schema.name, table, field, row: where, value } },
  );
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

/** An SQL expression that fails the statement ("malformed JSON"): rendered for a stored value its field cannot carry. */
export const MISFIT_SQL = "json('koan: misfit')";

/** Whether an SQLite error is the one {@link MISFIT_SQL} raises. */
export function isMisfitError(e: unknown): boolean {
  return e instanceof Error && /malformed JSON/.test(e.message);
}

/**
 * The export fast path serves an entity when SQLite's own JSON functions produce exactly the archive encoding of
 * every field: no doubles (SQLite prints 15 digits), no binary or vectors (no base64), no optional fields
 * (json_object cannot omit a key), no composite or missing key, and only tables Koan created (introspected columns
 * may hold any storage class; the caller also checks the table has the natural shape). A stored value its field
 * cannot carry (a TEXT in an INTEGER column, `5` in a BOOLEAN one) renders {@link MISFIT_SQL}, so the page fails and
 * the caller names the value through `exportEntity`. json fields render their stored text as a JSON string (line
 * format 2), exactly as stored. Anything else goes through `exportEntity`. (Imports of lines serve every entity: see
 * {@link lineRows}.)
 */
export function jsonLinesSql(schema: EntitySchema): JsonLinesSql | undefined {
  const cached = jsonLinesCache.get(schema);
  if (cached !== undefined) return cached ?? undefined;
  const fields = Object.entries(schema.fields) as [string, FieldSpec][];
  const ok =
    schema.origin === 'declared' &&
    !schema.keyless &&
    fields.every(([, f]) => JSON_LINE_TYPES.has(f.type) && !f.optional && !f.dynamic) &&
    !schema.keyFields?.length;
  if (!ok) {
    jsonLinesCache.set(schema, null);
    return undefined;
  }
  const parts: string[] = [];
  for (const [name, f] of fields) {
    const col = quoteIdent(name);
    const when = (test: string, render: string) =>
      `CASE WHEN ${col} IS NULL THEN NULL WHEN ${test} THEN ${render} ELSE ${MISFIT_SQL} END`;
    let render: string;
    switch (f.type) {
      case 'integer':
        render = when(`typeof(${col}) = 'integer' AND ${col} BETWEEN -9007199254740991 AND 9007199254740991`, col);
        break;
      case 'bigint':
        render = when(`typeof(${col}) = 'integer'${f.unsigned ? ` AND ${col} >= 0` : ''}`, `CAST(${col} AS TEXT)`);
        break;
      case 'boolean':
        render = when(
          `typeof(${col}) = 'integer' AND ${col} IN (0, 1)`,
          `json(CASE ${col} WHEN 1 THEN 'true' ELSE 'false' END)`,
        );
        break;
      case 'json':
        render = when(`typeof(${col}) = 'text' AND json_valid(${col})`, col);
        break;
      default:
        render = when(`typeof(${col}) = 'text'`, col);
    }
    parts.push(`${sqlString(name)}, ${render}`);
  }
  const sql: JsonLinesSql = { render: `json_object(${parts.join(', ')})` };
  jsonLinesCache.set(schema, sql);
  return sql;
}

/**
 * A bound SQLite value from a canonical line's raw value (see `scanCanonicalLine`), for a table of the natural shape;
 * `undefined` declines the line (the record path then names what is wrong).
 */
function canonicalToSqlite(spec: FieldSpec): (raw: string) => unknown {
  const store = writerOf(spec, NATURAL_AFFINITY[spec.type]);
  switch (spec.type) {
    case 'integer':
      return Number;
    case 'bigint':
      return (raw) => {
        const b = BigInt(raw);
        return b >= INT64_MIN && b <= INT64_MAX && (!spec.unsigned || b >= 0n) ? b : undefined;
      };
    case 'number':
      return (raw) =>
        store(
          raw === 'NaN' || raw === 'Infinity' || raw === '-Infinity' || raw === '-0'
            ? decodeValue(spec, raw)
            : Number(raw),
        );
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
    default: // text kinds and json text (checked to be JSON by the scan) are stored as they are written
      return (raw) => raw;
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const lineRowsCaches: Record<JsonEncoding, WeakMap<RowCodec, (line: string, index: number) => unknown[]>> = {
  text: new WeakMap(),
  nested: new WeakMap(),
};

/**
 * The bound row (`codec.writeColumns` order) of an archive line: for a table of the natural shape, canonical lines
 * are cut up without `JSON.parse` or record objects; any other line is parsed and decoded like `decodeRecord`
 * (which names what is wrong, `details.line` = `index`). Both give the row `codec.toRow` gives for the decoded record.
 */
export function lineRows(
  schema: EntitySchema,
  json: JsonEncoding,
  codec: RowCodec = rowCodec(schema),
): (line: string, index: number) => unknown[] {
  const lineRowsCache = lineRowsCaches[json];
  let read = lineRowsCache.get(codec);
  if (read) return read;
  const convert = Object.values(schema.fields).map(canonicalToSqlite);
  const scans = !codec.hasAbsentColumn && codec.natural;
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
  lineRowsCache.set(codec, read);
  return read;
}

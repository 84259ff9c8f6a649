/**
 * The plan of one entity set's table: how its rows are selected, paged, read, checked and written, built from the
 * entity's fields and the table's native columns (see `mysql-values.ts`). Plans are built per call (or per
 * transaction and snapshot), so a table created or altered in between is seen as it is.
 */
import type { DataRecord, EntitySchema, KeyValue } from '@koan/data';
import { keyFieldsOf, type LineTarget, physicalName } from '@koan/data/adapter-kit';
import { escape as sqlEscape } from 'mysql2/promise';
import type { NativeColumn } from './mysql-native.js';
import { ABSENT_COLUMN, ambiguousFields, quoteId } from './mysql-types.js';
import { type ColumnCodec, columnCodec, unsupportedValue } from './mysql-values.js';

export interface TablePlan {
  readonly table: string;
  /** The key field, or '' for a table without a primary key. */
  readonly key: string;
  /** The primary key columns, in order (`[key]` unless composite; empty for a keyless table). */
  readonly keys: readonly string[];
  /** One codec per field, in schema order. */
  readonly codecs: readonly ColumnCodec[];
  /** Optional nullable fields, tracked in {@link ABSENT_COLUMN} when there are any. */
  readonly ambiguous: readonly string[];
  /** The SELECT list: each field's expression, {@link ABSENT_COLUMN} if used, then the paging columns. */
  readonly selectList: string;
  /** `ORDER BY` of key order ('' for a keyless table). */
  readonly orderBy: string;
  /** Where each key column's paging value is in a selected row. */
  readonly pageIndexes: readonly number[];
  /** Records from selected rows; `exact` gives json fields as `JsonText`. */
  read(row: unknown[], exact: boolean): DataRecord;
  /** The columns an INSERT writes: every field the table does not compute, then {@link ABSENT_COLUMN} if used. */
  readonly insertColumnList: string;
  /** The SQL tuple of a record, in {@link TablePlan.insertColumnList} order. */
  tuple(record: DataRecord): string;
  /** `LOAD DATA` text of a record (every field, then the absent list), without the newline. */
  tsvRow(record: DataRecord, absentTsv: (v: unknown) => string): string;
  /** The column list and `SET` clause of a `LOAD DATA` of {@link TablePlan.tsvRow} text (or archive lines). */
  readonly loadColumns: string;
  readonly loadSets: string;
  /** `LOAD DATA` text of archive lines (see `lineTranscoder`). */
  readonly target: LineTarget;
  /** `ON DUPLICATE KEY UPDATE ...` for upserts ('' for a keyless table, which has nothing to match). */
  readonly upsertClause: string;
  /** Refuses, before anything is written, a record value the table cannot hold (`UNSUPPORTED_VALUE`). */
  assertStorable(records: readonly DataRecord[], describe: (record: DataRecord) => string): void;
  /** The SQL literal of a key value of the `key` field, for `WHERE key IN (...)`. */
  keyLiteral(value: KeyValue): string;
  /**
   * Statements counting the rows whose whole key is one of `records`' (`(key columns) IN (...)`, the key values as an
   * INSERT writes them, compared with the columns' own collations), `perStatement` records each.
   */
  countKeysSql(records: readonly DataRecord[], perStatement: number): string[];
  /** The keyset condition after `lastRow` (a selected row), in key order. */
  after(lastRow: readonly unknown[]): string;
}

/**
 * The plan of `schema`'s set `set` in a table with `native` columns (empty when the table does not exist: the field
 * types alone decide, as for a table `ensureEntity` would create).
 */
export function tablePlan(
  schema: EntitySchema,
  set: string,
  native: ReadonlyMap<string, NativeColumn>,
  mariadb: boolean,
): TablePlan {
  const table = physicalName(schema, set);
  const names = Object.keys(schema.fields);
  const codecs = names.map((n) => columnCodec(schema.name, n, schema.fields[n]!, native.get(n), mariadb));
  const ambiguous = ambiguousFields(schema);
  const keys = keyFieldsOf(schema);
  const withAbsent = ambiguous.length > 0;
  const keyCodecs = keys.map((k) => codecs[names.indexOf(k)]!);
  const extra = keyCodecs.filter((c) => c.pageSelect !== undefined);
  const base = names.length + (withAbsent ? 1 : 0);
  const pageIndexes = keyCodecs.map((c) =>
    c.pageSelect === undefined ? names.indexOf(c.name) : base + extra.indexOf(c),
  );
  const writable = codecs.filter((c) => c.writable);
  const n = codecs.length;
  const readRow = (row: unknown[], exact: boolean): DataRecord => {
    const out: DataRecord = {};
    const absent = withAbsent && row[n] !== null ? (JSON.parse(String(row[n])) as string[]) : undefined;
    for (let i = 0; i < n; i++) {
      const v = row[i];
      const c = codecs[i]!;
      if (v === null || v === undefined) {
        // NULL in an optional field that is not nullable means "absent"; for optional nullable ones the list says.
        if (c.spec.optional && (!c.spec.nullable || absent?.includes(c.name))) continue;
        out[c.name] = null;
      } else out[c.name] = c.read(v, exact);
    }
    return out;
  };
  const absentOf = (record: DataRecord) => {
    const list = ambiguous.filter((f) => record[f] === undefined);
    return list.length ? JSON.stringify(list) : null;
  };
  const others = [
    ...writable.filter((c) => !keys.includes(c.name)).map((c) => c.name),
    ...(withAbsent ? [ABSENT_COLUMN] : []),
  ];
  const keyCodec = keys.length ? codecs[names.indexOf(keys[0]!)]! : undefined;
  return {
    table,
    key: schema.keyless ? '' : schema.key,
    keys,
    codecs,
    ambiguous,
    selectList: [
      ...codecs.map((c) => c.select),
      ...(withAbsent ? [quoteId(ABSENT_COLUMN)] : []),
      ...extra.map((c) => c.pageSelect!),
    ].join(', '),
    orderBy: keys.length ? ` ORDER BY ${keys.map(quoteId).join(', ')}` : '',
    pageIndexes,
    read: readRow,
    insertColumnList: [...writable.map((c) => c.name), ...(withAbsent ? [ABSENT_COLUMN] : [])].map(quoteId).join(', '),
    tuple(record) {
      let t = '(';
      for (let i = 0; i < writable.length; i++) t += (i ? ',' : '') + writable[i]!.literal(record[writable[i]!.name]);
      if (withAbsent) {
        const absent = absentOf(record);
        t += `,${absent === null ? 'NULL' : sqlEscape(absent)}`;
      }
      return `${t})`;
    },
    tsvRow(record, absentTsv) {
      let text = '';
      for (let i = 0; i < n; i++) text += (i ? '\t' : '') + codecs[i]!.tsv(record[codecs[i]!.name]);
      if (withAbsent) text += `\t${absentTsv(absentOf(record))}`;
      return text;
    },
    loadColumns: [...codecs.map((c) => c.loadTarget), ...(withAbsent ? [quoteId(ABSENT_COLUMN)] : [])].join(', '),
    loadSets: codecs.flatMap((c) => (c.loadSet ? [c.loadSet] : [])).join(', '),
    target: lineTarget(codecs),
    upsertClause: keys.length
      ? `ON DUPLICATE KEY UPDATE ${
          others.length
            ? others.map((c) => `${quoteId(c)} = VALUES(${quoteId(c)})`).join(', ')
            : `${quoteId(keys[0]!)} = VALUES(${quoteId(keys[0]!)})`
        }`
      : '',
    assertStorable(records, describe) {
      for (const c of codecs) {
        if (!c.writable) continue;
        for (const record of records) {
          const v = record[c.name];
          if (v === null || v === undefined) continue;
          const why = c.refuse(v);
          if (why) throw unsupportedValue(schema.name, c.name, describe(record), why);
        }
      }
    },
    keyLiteral(value) {
      if (!keyCodec) throw new TypeError(`${schema.name} has no primary key`);
      if ((value as unknown) instanceof Uint8Array) return `X'${Buffer.from(value as never).toString('hex')}'`;
      if (typeof value !== 'string') return String(value);
      const type = keyCodec.spec.type;
      if ((type === 'integer' || type === 'bigint') && /^-?\d+$/.test(value)) return value;
      if (type === 'decimal' && keyCodec.kind?.kind === 'decimal' && /^-?\d+(\.\d+)?$/.test(value)) return value;
      return sqlEscape(type === 'uuid' ? value.toLowerCase() : value);
    },
    countKeysSql: (records, perStatement) => countKeysSql(table, keyCodecs, records, perStatement),
    after(lastRow) {
      const values = keyCodecs.map((c, i) => c.pageLiteral(lastRow[pageIndexes[i]!]));
      return keys.length === 1
        ? `${quoteId(keys[0]!)} > ${values[0]}`
        : `(${keys.map(quoteId).join(', ')}) > (${values.join(', ')})`;
    },
  };
}

/** See `TablePlan.countKeysSql`. */
function countKeysSql(
  table: string,
  keyCodecs: readonly ColumnCodec[],
  records: readonly DataRecord[],
  perStatement: number,
): string[] {
  const tuple = (r: DataRecord) => `(${keyCodecs.map((c) => c.literal(r[c.name])).join(', ')})`;
  const columns = keyCodecs.map((c) => quoteId(c.name)).join(', ');
  const out: string[] = [];
  for (let i = 0; i < records.length; i += perStatement)
    out.push(
      `SELECT count(*) FROM ${quoteId(table)} WHERE (${columns}) IN (${records
        .slice(i, i + perStatement)
        .map(tuple)
        .join(', ')})`,
    );
  return out;
}

/** The `LOAD DATA` text of archive lines, field by field (see `LineTarget`). */
function lineTarget(codecs: readonly ColumnCodec[]): LineTarget {
  const byName = new Map(codecs.map((c) => [c.name, c]));
  return {
    null: '\\N',
    separator: '\t',
    canonical: (_spec, name) => byName.get(name)!.canonical,
    parsed: (_spec, name) => byName.get(name)!.parsed,
  };
}

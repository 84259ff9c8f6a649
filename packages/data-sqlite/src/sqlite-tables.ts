/** What SQLite says about one table: its columns (generated ones included), affinities, STRICT, rowid names. */
import { type DataRecord, type EntitySchema, keyFieldsOf, physicalName } from '@koan/data';
import type Database from 'better-sqlite3';
import { quoteIdent, rowCodec, type TableShape } from './sqlite-types.js';
import { affinityOf } from './sqlite-values.js';

/** A column as `PRAGMA table_xinfo` reports it. */
export interface XColumn {
  readonly name: string;
  readonly type: string;
  readonly notnull: number;
  readonly pk: number;
  /** 0: ordinary; 1: hidden (virtual tables); 2: generated VIRTUAL; 3: generated STORED. */
  readonly hidden: number;
}

/** Every column of a table, generated ones included (`PRAGMA table_info` leaves them out); [] when it does not exist. */
export function tableColumns(db: Database.Database, physical: string, schema = 'main'): XColumn[] {
  return db
    .prepare(`PRAGMA ${quoteIdent(schema)}.table_xinfo(${quoteIdent(physical)})`)
    .safeIntegers(false)
    .all() as XColumn[];
}

/** Whether the table is declared STRICT (its `ANY` columns keep every value as given). */
export function isStrict(db: Database.Database, physical: string): boolean {
  const row = db
    .prepare('SELECT strict FROM pragma_table_list WHERE schema = ? AND name = ?')
    .safeIntegers(false)
    .get('main', physical) as { strict: number } | undefined;
  return row?.strict === 1;
}

/** The columns of `physical` with their affinities, or undefined when the table does not exist. */
export function tableShape(db: Database.Database, physical: string): TableShape | undefined {
  const columns = tableColumns(db, physical);
  if (columns.length === 0) return undefined;
  const strict = columns.some((c) => c.type.toUpperCase() === 'ANY') && isStrict(db, physical);
  return new Map(
    columns
      .filter((c) => c.hidden !== 1)
      .map((c) => [c.name, { affinity: affinityOf(c.type, strict), generated: c.hidden === 2 || c.hidden === 3 }]),
  );
}

/** A name of the rowid that no column shadows (`rowid`, `_rowid_`, `oid`), or undefined when all three are taken. */
export function rowidAlias(columns: ReadonlyMap<string, unknown> | readonly string[]): string | undefined {
  const taken = new Set(
    (Array.isArray(columns)
      ? (columns as readonly string[])
      : [...(columns as ReadonlyMap<string, unknown>).keys()]
    ).map((c) => c.toLowerCase()),
  );
  return ['rowid', '_rowid_', 'oid'].find((n) => !taken.has(n));
}

/**
 * How many of `records` have a key stored in the entity set's table, matched by every key column with the values an
 * upsert of them binds (see `DataAdapter.countExisting`); 0 when the table does not exist.
 */
export function countExistingKeys(
  db: Database.Database,
  entity: EntitySchema,
  set: string,
  records: readonly DataRecord[],
): number {
  if (entity.keyless || records.length === 0) return 0;
  const physical = physicalName(entity, set);
  const shape = tableShape(db, physical);
  if (!shape) return 0;
  const codec = rowCodec(entity, shape);
  const keys = keyFieldsOf(entity);
  const at = keys.map((k) => codec.writeColumns.indexOf(k));
  const probe = db
    .prepare(`SELECT 1 FROM ${quoteIdent(physical)} WHERE ${keys.map((k) => `${quoteIdent(k)} = ?`).join(' AND ')}`)
    .pluck(true);
  let n = 0;
  for (const record of records) {
    // Only the key fields are bound: the other values are checked by the write itself.
    const row = codec.toRow(Object.fromEntries(keys.map((k) => [k, record[k]])));
    if (probe.get(...at.map((i) => row[i])) !== undefined) n++;
  }
  return n;
}

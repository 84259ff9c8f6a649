/** What SQLite says about one table: its columns (generated ones included), affinities, STRICT, rowid names. */
import { rmdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { DataError, type DataRecord, type EntitySchema } from '@koan/data';
import { keyFieldsOf, physicalName } from '@koan/data/adapter-kit';
import type Database from 'better-sqlite3';
import { ABSENT_COLUMN, COLUMN_TYPE, quoteIdent, rowCodec, type TableShape } from './sqlite-types.js';
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

/** The table where Koan records the schemas of the tables it created (`KOAN_META_TABLE` of the introspector). */
const META_TABLE = '_koan_entities';

/**
 * Whether the database holds nothing: no table, index, view or trigger (but an empty `_koan_entities`), and no
 * `user_version` or `application_id`.
 */
export function holdsNothing(db: Database.Database): boolean {
  const objects = db.prepare('SELECT name FROM sqlite_master WHERE name <> ?').pluck(true).all(META_TABLE);
  if (objects.length) return false;
  if (tableColumns(db, META_TABLE).length && db.prepare(`SELECT 1 FROM ${META_TABLE} LIMIT 1`).get() !== undefined)
    return false;
  return !Number(db.pragma('user_version', { simple: true })) && !Number(db.pragma('application_id', { simple: true }));
}

/**
 * Removes a database file (closed) with its WAL, shared-memory and journal files, then the folders made for it,
 * innermost first up to `folder` (the first one made), while they are empty.
 */
export function removeDatabaseFiles(path: string, folder: string | undefined): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${path}${suffix}`, { force: true });
  for (let d = dirname(path); folder !== undefined; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      break;
    }
    if (d === folder) break;
  }
}

/** The CREATE TABLE of an entity set's table from its field types (see `ensureEntity`). */
export function createTableSql(entity: EntitySchema, physical: string): string {
  const codec = rowCodec(entity);
  const keys = keyFieldsOf(entity);
  const composite = keys.length > 1;
  const defs = Object.entries(entity.fields).map(([name, spec]) => {
    const isKey = keys.includes(name);
    // A dynamic field's column has no declared type: it keeps every value with its own storage class.
    const type = isKey && spec.type === 'integer' ? 'INTEGER' : spec.dynamic ? '' : COLUMN_TYPE[spec.type];
    const notNull = isKey || (!spec.nullable && !spec.optional);
    return `${quoteIdent(name)}${type ? ` ${type}` : ''}${notNull ? ' NOT NULL' : ''}${isKey && !composite ? ' PRIMARY KEY' : ''}`;
  });
  if (composite) defs.push(`PRIMARY KEY (${keys.map(quoteIdent).join(', ')})`);
  if (codec.hasAbsentColumn) defs.push(`${quoteIdent(ABSENT_COLUMN)} TEXT`);
  // Other keys cluster the table on the key (ordered scans read in place); a single integer key aliases the rowid,
  // and a table without a primary key is an ordinary rowid table (rows read in rowid order).
  const rowid = entity.keyless || (entity.keyType === 'integer' && !composite);
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(physical)} (${defs.join(', ')})${rowid ? '' : ' WITHOUT ROWID'}`;
}

/** A foreign key of a table, as `PRAGMA foreign_key_list` describes it. */
export interface ForeignKey {
  /** SQLite names no constraint: this describes it, `FOREIGN KEY (a) REFERENCES P (b)`. */
  readonly constraint: string;
  readonly parent: string;
  readonly columns: readonly string[];
  readonly parentColumns: readonly string[];
}

/** `FOREIGN_KEY_VIOLATION` naming the record, the parent and the values it references. */
export function foreignKeyViolation(
  entity: EntitySchema,
  set: string,
  key: string,
  fk: ForeignKey,
  values: readonly unknown[],
  cause?: unknown,
): DataError {
  const shown = values.map((v) => JSON.stringify(v)).join(', ');
  return new DataError(
    'FOREIGN_KEY_VIOLATION',
    `[sqlite] ${entity.name} record ${JSON.stringify(key)} references ${fk.parent} (${fk.parentColumns.join(', ')}) = (${shown}), which does not exist (constraint ${fk.constraint}).`,
    {
      ...(cause ? { cause } : {}),
      details: { entity: entity.name, set, key, constraint: fk.constraint, references: fk.parent },
    },
  );
}

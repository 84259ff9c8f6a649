import type { EntitySchema, FieldSpec, FieldType } from '@koan/data';
import {
  buildSchema,
  type IntrospectionResult,
  KEY_FIELD_TYPES,
  type NotDataObject,
  type SkippedTable,
} from '@koan/data/adapter-kit';
import type Database from 'better-sqlite3';
import { rowidAlias, tableColumns, type XColumn } from './sqlite-tables.js';
import { fieldTypeOfColumn, quoteIdent } from './sqlite-types.js';

/** Where Koan records the tables it created (so introspection leaves them out). */
export const KOAN_META_TABLE = '_koan_entities';

interface ForeignKeyInfo {
  id: number;
  seq: number;
  table: string;
  from: string;
  to: string | null;
}

/** A row of `PRAGMA table_list`: every table, view, virtual table and shadow table of the main schema. */
interface TableListRow {
  name: string;
  type: 'table' | 'view' | 'shadow' | 'virtual';
  strict: number;
}

/** An entity name for a table name: letters, digits and `_`, starting with a letter or `_`. */
export function entityNameOf(table: string): string {
  const cleaned = table.replace(/[^A-Za-z0-9_]/g, '_');
  return (/^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`).slice(0, 63);
}

/** The field type of an introspected column: by its declared type; a key column by a type keys can have. */
function fieldTypeOf(column: XColumn, isKey: boolean): FieldType {
  const type = fieldTypeOfColumn(column.type);
  // No dimension is known for a vector column of a table Koan did not record: its bytes are kept as binary.
  if (type === 'vector') return 'binary';
  if (isKey && !KEY_FIELD_TYPES.has(type)) return 'string';
  return type;
}

/**
 * Maps every table Koan did not create to an entity: declared column types to field types (see
 * `fieldTypeOfColumn`), the primary key of any type to the key (a composite one to `keyFields`), a table without a
 * primary key to a keyless entity (rows read in rowid order), generated columns to `generated`, single-column
 * foreign keys to `references`, `DECIMAL(p,s)`/`NUMERIC(p,s)` to decimal precision and scale. Views, SQLite's own
 * tables and the shadow tables of virtual tables are listed in `notData`; virtual tables (FTS, R*Tree...) in
 * `skipped`: their rows are not read.
 */
export function introspectDatabase(db: Database.Database, source: string): IntrospectionResult {
  const metaExists =
    db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`).pluck(true).get(KOAN_META_TABLE) !==
    undefined;
  const koanTables = new Set<string>(
    metaExists ? (db.prepare(`SELECT physical FROM ${KOAN_META_TABLE}`).pluck(true).all() as string[]) : [],
  );
  const { tables, skipped, notData } = classifyObjects(db, koanTables);
  const columnsOf = new Map(tables.map((t) => [t.name, tableColumns(db, t.name).filter((c) => c.hidden !== 1)]));
  const primaryKeyOf = (table: string) =>
    (columnsOf.get(table) ?? tableColumns(db, table))
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
  const entities: EntitySchema[] = [];
  const usedNames = new Set<string>();
  for (const table of tables) {
    const columns = columnsOf.get(table.name)!;
    const pk = primaryKeyOf(table.name);
    if (pk.length === 0 && !rowidAlias(columns.map((c) => c.name))) {
      skipped.push({
        table: table.name,
        reason:
          'no primary key, and columns named rowid, _rowid_ and oid hide its rowid: its rows have no stable order',
      });
      continue;
    }
    let name = entityNameOf(table.name);
    for (let i = 2; usedNames.has(name); i++) name = `${entityNameOf(table.name).slice(0, 58)}_${i}`;
    usedNames.add(name);
    const fields = fieldsOf(db, table, columns, pk, primaryKeyOf);
    entities.push(
      buildSchema(
        pk.length === 0
          ? { name, keyless: true, fields, source, table: table.name }
          : { name, key: pk[0]!, fields, source, table: table.name, ...(pk.length > 1 ? { keyFields: pk } : {}) },
        'introspected',
      ),
    );
  }
  // Tables a Koan application created keep their exact declared schema in the meta table: an app (or the
  // CLI's --source) that does not declare them still finds them, with their real types.
  if (koanTables.size) entities.push(...recordedEntities(db, source, usedNames, skipped));
  return { entities, skipped, notData };
}

/**
 * The tables of the main schema to map to entities (not Koan's, not SQLite's own), and the objects that are not
 * data (views, shadow and internal tables) or cannot be read (virtual tables), each with why.
 */
function classifyObjects(
  db: Database.Database,
  koanTables: ReadonlySet<string>,
): { tables: TableListRow[]; skipped: SkippedTable[]; notData: NotDataObject[] } {
  const list = (
    db
      .prepare(`SELECT name, type, strict FROM pragma_table_list WHERE schema = 'main'`)
      .safeIntegers(false)
      .all() as TableListRow[]
  ).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const skipped: SkippedTable[] = [];
  const notData: NotDataObject[] = [];
  const virtual = list.filter((t) => t.type === 'virtual').map((t) => t.name);
  const tables: TableListRow[] = [];
  for (const t of list) {
    if (
      t.name.startsWith('_koan_') ||
      koanTables.has(t.name) ||
      t.name === 'sqlite_schema' ||
      t.name === 'sqlite_temp_schema'
    )
      continue;
    if (t.type === 'view')
      notData.push({
        name: t.name,
        kind: 'view',
        note: 'a view holds no rows of its own; backups carry its definition when they hold every table it reads, and restores into SQLite recreate it',
      });
    else if (t.type === 'virtual')
      skipped.push({
        table: t.name,
        reason: `virtual table (${virtualModule(db, t.name)}): its rows are kept by its module and are not backed up; exclude it (its shadow tables go with it)`,
      });
    else if (t.type === 'shadow') {
      const owner = virtual.find((v) => t.name.startsWith(`${v}_`));
      notData.push({ name: t.name, kind: 'shadow table', note: `part of the virtual table ${owner ?? '(unknown)'}` });
    } else if (t.name.startsWith('sqlite_'))
      notData.push({
        name: t.name,
        kind: 'internal table',
        note:
          t.name === 'sqlite_sequence'
            ? "SQLite's AUTOINCREMENT counters: captured with the structure, and advanced past the restored ids"
            : "SQLite's statistics (ANALYZE): not data; run ANALYZE after a restore",
      });
    else tables.push(t);
  }
  return { tables, skipped, notData };
}

/**
 * The fields of one table's columns: types by declared type (a column without one, or `ANY` in a STRICT table, is a
 * `dynamic` string field: it holds values of any type), generated columns, single-column foreign keys.
 */
function fieldsOf(
  db: Database.Database,
  table: TableListRow,
  columns: readonly XColumn[],
  pk: readonly string[],
  primaryKeyOf: (table: string) => string[],
): Record<string, FieldSpec> {
  const references = new Map<string, FieldSpec['references']>();
  const fks = db
    .prepare(`PRAGMA foreign_key_list(${quoteIdent(table.name)})`)
    .safeIntegers(false)
    .all() as ForeignKeyInfo[];
  for (const fk of fks) {
    if (fks.filter((f) => f.id === fk.id).length !== 1) continue; // multi-column keys do not map to a field reference
    const field = fk.to ?? primaryKeyOf(fk.table)[0];
    if (field) references.set(fk.from, { entity: entityNameOf(fk.table), field });
  }
  const fields: Record<string, FieldSpec> = {};
  for (const c of columns) {
    const isKey = pk.includes(c.name);
    const type = fieldTypeOf(c, isKey);
    const ref = references.get(c.name);
    const size = type === 'decimal' ? /\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(c.type) : null;
    const declared = c.type.trim().toUpperCase();
    // Keys keep a type with an order (their values are compared and paged): only other columns are dynamic.
    const dynamic = !isKey && (declared === '' || (declared === 'ANY' && table.strict === 1));
    fields[c.name] = {
      type,
      optional: false,
      nullable: !isKey && c.notnull === 0,
      ...(dynamic ? { dynamic: true } : {}),
      ...(size ? { precision: Number(size[1]), scale: Number(size[2] ?? 0) } : {}),
      ...(c.hidden === 2 ? { generated: 'virtual' as const } : c.hidden === 3 ? { generated: 'stored' as const } : {}),
      ...(ref ? { references: ref } : {}),
    };
  }
  return fields;
}

/** The schemas recorded in {@link KOAN_META_TABLE} for the tables a Koan application created. */
function recordedEntities(
  db: Database.Database,
  source: string,
  usedNames: Set<string>,
  skipped: SkippedTable[],
): EntitySchema[] {
  const out: EntitySchema[] = [];
  const stored = db.prepare(`SELECT physical, schema FROM ${KOAN_META_TABLE} ORDER BY physical`).all() as {
    physical: string;
    schema: string;
  }[];
  for (const row of stored) {
    let schema: EntitySchema;
    try {
      schema = JSON.parse(row.schema) as EntitySchema;
    } catch {
      skipped.push({ table: row.physical, reason: `${KOAN_META_TABLE} holds an unreadable schema for it` });
      continue;
    }
    if (row.physical !== (schema.table ?? schema.name) || usedNames.has(schema.name)) continue;
    usedNames.add(schema.name);
    out.push(Object.freeze({ ...schema, source }));
  }
  return out;
}

/** The module of a virtual table (`fts5`, `rtree`...), from its `CREATE VIRTUAL TABLE ... USING module` text. */
function virtualModule(db: Database.Database, table: string): string {
  const sql = db.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).pluck(true).get(table) as string | undefined;
  const m = /\bUSING\s+("?)([A-Za-z0-9_]+)\1/i.exec(sql ?? '');
  return m ? `USING ${m[2]}` : 'a module';
}

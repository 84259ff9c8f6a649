import {
  type EntitySchema,
  entityNamesForTables,
  type FieldSpec,
  fieldFromNote,
  type SkippedTable,
  type StoreDescription,
} from '@koan/data';
import type { PoolConnection } from 'mysql2/promise';
import { ABSENT_COLUMN, fieldTypeOfColumn } from './mysql-types.js';

/** Marks tables created for declared entities, with the entity's name: `introspect()` names them after it. */
export const ENTITY_COMMENT_PREFIX = 'koan-entity:';

interface ColumnRow {
  table: string;
  name: string;
  dataType: string;
  columnType: string;
  nullable: boolean;
  precision: number | null;
  scale: number | null;
  /** The column's comment: a `fieldNote` on columns Koan created. */
  note: string;
}

interface KeyUsageRow {
  table: string;
  constraint: string;
  column: string;
  referencedTable: string | null;
  referencedColumn: string | null;
}

async function rows<T>(conn: PoolConnection, sql: string, values: unknown[], map: (r: unknown[]) => T): Promise<T[]> {
  const [out] = await conn.query({ sql, values, rowsAsArray: true });
  return (out as unknown as unknown[][]).map(map);
}

function columns(conn: PoolConnection, table?: string): Promise<ColumnRow[]> {
  return rows(
    conn,
    'SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE, COLUMN_COMMENT FROM information_schema.COLUMNS ' +
      `WHERE TABLE_SCHEMA = DATABASE()${table === undefined ? '' : ' AND TABLE_NAME = ?'} ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    table === undefined ? [] : [table],
    (r) => ({
      table: String(r[0]),
      name: String(r[1]),
      dataType: String(r[2]),
      columnType: String(r[3]),
      nullable: r[4] === 'YES',
      precision: r[5] === null ? null : Number(r[5]),
      scale: r[6] === null ? null : Number(r[6]),
      note: String(r[7] ?? ''),
    }),
  );
}

function keyUsage(conn: PoolConnection, table?: string): Promise<KeyUsageRow[]> {
  return rows(
    conn,
    'SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE ' +
      `WHERE TABLE_SCHEMA = DATABASE()${table === undefined ? '' : ' AND TABLE_NAME = ?'} ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`,
    table === undefined ? [] : [table],
    (r) => ({
      table: String(r[0]),
      constraint: String(r[1]),
      column: String(r[2]),
      referencedTable: r[3] === null ? null : String(r[3]),
      referencedColumn: r[4] === null ? null : String(r[4]),
    }),
  );
}

/** MariaDB stores JSON as LONGTEXT with a `json_valid(col)` check; MySQL reports `json` itself. */
async function jsonColumns(conn: PoolConnection): Promise<Set<string>> {
  try {
    const found = await rows(
      conn,
      'SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()',
      [],
      (r) => ({ table: String(r[0]), clause: String(r[1]) }),
    );
    const out = new Set<string>();
    for (const { table, clause } of found) {
      const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(clause.trim());
      if (m) out.add(`${table}\0${m[1]!.replaceAll('``', '`')}`);
    }
    return out;
  } catch {
    return new Set();
  }
}

function foreignKeys(usage: readonly KeyUsageRow[]): NonNullable<StoreDescription['foreignKeys']> {
  const byName = new Map<string, KeyUsageRow[]>();
  for (const u of usage) {
    if (u.referencedTable === null) continue;
    const list = byName.get(u.constraint) ?? [];
    list.push(u);
    byName.set(u.constraint, list);
  }
  return [...byName].map(([name, list]) => ({
    name,
    columns: list.map((u) => u.column),
    references: list[0]!.referencedTable!,
    referencedColumns: list.map((u) => u.referencedColumn!),
  }));
}

export async function describeTable(conn: PoolConnection, table: string): Promise<StoreDescription> {
  const [info] = await rows(
    conn,
    'SELECT ENGINE, TABLE_COLLATION, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
    [table],
    (r) => ({ engine: r[0], collation: r[1], comment: r[2] }),
  );
  const cols = (await columns(conn, table)).filter((c) => c.table === table);
  const usage = (await keyUsage(conn, table)).filter((u) => u.table === table);
  const json = info ? await jsonColumns(conn) : new Set<string>();
  return {
    provider: 'mysql',
    location: table,
    exists: info !== undefined,
    columns: cols.map((c) => ({
      name: c.name,
      storeType: json.has(`${table}\0${c.name}`) ? 'json' : c.columnType,
      nullable: c.nullable,
    })),
    primaryKey: usage.filter((u) => u.constraint === 'PRIMARY').map((u) => u.column),
    foreignKeys: foreignKeys(usage),
    ...(info ? { extra: { engine: info.engine, collation: info.collation, comment: info.comment } } : {}),
  };
}

/**
 * Entities for the tables of the current database. A table name that is not a valid entity name gets a cleaned one
 * (see `entityNamesForTables`) and keeps its table; tables Koan created (the `koan-entity:` comment) are named after
 * their entity, without Koan's bookkeeping column, and their `#` set tables are sets, not entities. (Discovery
 * registers an introspected schema only under a name no declared entity has.) Tables that cannot be mapped are left
 * out and listed in `skipped` with the reason.
 */
export async function introspectDatabase(
  conn: PoolConnection,
  source: string,
): Promise<{ schemas: EntitySchema[]; skipped: SkippedTable[] }> {
  const tables = await rows(
    conn,
    "SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    [],
    (r) => ({ name: String(r[0]), comment: String(r[1] ?? '') }),
  );
  // Koan's tables keep the entity names they were created for (their other sets' tables, `<table>#<set>`, are sets
  // of those entities); the other tables get valid entity names that do not clash with them.
  const koanName = (t: { comment: string }) =>
    t.comment.startsWith(ENTITY_COMMENT_PREFIX) ? t.comment.slice(ENTITY_COMMENT_PREFIX.length) : undefined;
  const entityOf = new Map<string, string>();
  for (const t of tables) {
    const name = koanName(t);
    if (
      name &&
      !t.name.includes('#') &&
      /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name) &&
      ![...entityOf.values()].includes(name)
    )
      entityOf.set(t.name, name);
  }
  const others = tables.filter((t) => !entityOf.has(t.name) && !(koanName(t) && t.name.includes('#')));
  for (const [table, name] of entityNamesForTables(
    others.map((t) => t.name),
    new Set(entityOf.values()),
  ))
    entityOf.set(table, name);
  const allColumns = await columns(conn);
  const allUsage = await keyUsage(conn);
  const json = await jsonColumns(conn);
  const schemas: EntitySchema[] = [];
  const skipped: SkippedTable[] = [];
  for (const table of tables) {
    const name = entityOf.get(table.name);
    if (name === undefined) continue;
    const all = allColumns.filter((c) => c.table === table.name);
    // Koan's bookkeeping column is not a field of a table Koan created (a table comment, or noted columns).
    const koanMade = koanName(table) !== undefined || all.some((c) => fieldFromNote(c.note));
    const cols = all.filter((c) => !(c.name === ABSENT_COLUMN && koanMade));
    const usage = allUsage.filter((u) => u.table === table.name);
    const pk = usage.filter((u) => u.constraint === 'PRIMARY').map((u) => u.column);
    if (pk.length === 0) {
      skipped.push({ table: table.name, reason: 'no primary key' });
      continue;
    }
    const key = pk[0]!;
    const references = new Map<string, { entity: string; field: string }>();
    for (const fk of foreignKeys(usage))
      if (fk.columns.length === 1)
        references.set(fk.columns[0]!, {
          entity: entityOf.get(fk.references) ?? fk.references,
          field: fk.referencedColumns[0]!,
        });
    const fields: Record<string, FieldSpec> = {};
    let problem: string | undefined;
    for (const c of cols) {
      // A column Koan created says which field it holds: its type, optional vs nullable, dimension... exactly.
      const noted = fieldFromNote(c.note);
      if (noted) {
        const ref = references.get(c.name);
        fields[c.name] = ref ? Object.freeze({ ...noted, references: ref }) : noted;
        continue;
      }
      let type = json.has(`${table.name}\0${c.name}`) ? 'json' : fieldTypeOfColumn(c.dataType, c.columnType);
      if (type === undefined) {
        problem = `column ${c.name} has unsupported type ${c.columnType}`;
        break;
      }
      if (type === 'bigint' && /unsigned/i.test(c.columnType)) type = 'decimal';
      if (pk.includes(c.name)) {
        if (type === 'bigint') type = 'integer';
        if (type !== 'integer' && type !== 'string') {
          problem = `key column ${c.name} has type ${c.columnType}, not an integer or text`;
          break;
        }
      }
      const ref = references.get(c.name);
      fields[c.name] = Object.freeze({
        type,
        optional: false,
        nullable: !pk.includes(c.name) && c.nullable,
        ...(type === 'decimal' && c.precision !== null ? { precision: c.precision, scale: c.scale ?? 0 } : {}),
        ...(ref ? { references: ref } : {}),
      });
    }
    if (problem) {
      skipped.push({ table: table.name, reason: problem });
      continue;
    }
    schemas.push(
      Object.freeze({
        name,
        key,
        keyType: fields[key]!.type === 'integer' ? 'integer' : fields[key]!.type === 'uuid' ? 'uuid' : 'string',
        ...(pk.length > 1 ? { keyFields: Object.freeze([...pk]) } : {}),
        fields: Object.freeze(fields),
        source,
        table: table.name,
        origin: 'introspected',
      }),
    );
  }
  return { schemas, skipped };
}

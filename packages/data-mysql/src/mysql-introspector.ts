import type { EntitySchema, FieldSpec } from '@koan/data';
import {
  buildSchema,
  entityNamesForTables,
  fieldFromNote,
  KEY_FIELD_TYPES,
  type NotDataObject,
  type SkippedTable,
  type StoreDescription,
} from '@koan/data/adapter-kit';
import type { PoolConnection } from 'mysql2/promise';
import { fieldOfColumn, introspectedSpec, type NativeColumn, nativeColumns } from './mysql-native.js';
import { ABSENT_COLUMN } from './mysql-types.js';

/** Marks tables created for declared entities, with the entity's name: `introspect()` names them after it. */
export const ENTITY_COMMENT_PREFIX = 'koan-entity:';

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
  const cols = info ? await nativeColumns(conn, table) : [];
  const usage = info ? await keyUsage(conn, table) : [];
  const generated = cols.filter((c) => c.generated).map((c) => c.name);
  return {
    provider: 'mysql',
    location: table,
    exists: info !== undefined,
    columns: cols.map((c) => ({ name: c.name, storeType: c.json ? 'json' : c.columnType, nullable: c.nullable })),
    primaryKey: usage.filter((u) => u.constraint === 'PRIMARY').map((u) => u.column),
    foreignKeys: foreignKeys(usage),
    ...(info
      ? {
          extra: {
            engine: info.engine,
            collation: info.collation,
            comment: info.comment,
            ...(generated.length ? { generated } : {}),
          },
        }
      : {}),
  };
}

interface TableRow {
  readonly name: string;
  readonly type: string;
  readonly comment: string;
}

/** What the tables and views that are not entities are, by `TABLE_TYPE`. */
function notDataOf(t: TableRow): NotDataObject | SkippedTable | undefined {
  switch (t.type) {
    case 'VIEW':
      return {
        name: t.name,
        kind: 'view',
        note: "a view holds no rows of its own (they are its tables'); a backup keeps its definition with the structure when it backs up every table the view reads",
      };
    case 'SEQUENCE':
      return {
        name: t.name,
        kind: 'sequence',
        note: 'a MariaDB sequence holds no rows to back up; its definition and current value are not backed up',
      };
    case 'SYSTEM VERSIONED':
      return {
        table: t.name,
        reason:
          'it is system-versioned: its history rows are not visible to SELECT and cannot be backed up (exclude it, or back up its current rows from a copy without versioning)',
      };
    default:
      return undefined;
  }
}

/**
 * The entity of one base table, or why it cannot be one. Columns Koan created (noted) give back their declared
 * fields; other columns map as `fieldOfColumn` says; a table without a primary key is `keyless`.
 */
function entityOfTable(
  name: string,
  table: TableRow,
  cols: readonly NativeColumn[],
  usage: readonly KeyUsageRow[],
  entityOf: ReadonlyMap<string, string>,
  source: string,
): EntitySchema | string {
  const pk = usage.filter((u) => u.constraint === 'PRIMARY').map((u) => u.column);
  const references = new Map<string, { entity: string; field: string }>();
  for (const fk of foreignKeys(usage))
    if (fk.columns.length === 1)
      references.set(fk.columns[0]!, {
        entity: entityOf.get(fk.references) ?? fk.references,
        field: fk.referencedColumns[0]!,
      });
  const fields: Record<string, FieldSpec> = {};
  for (const c of cols) {
    const ref = references.get(c.name);
    // A column Koan created says which field it holds: its type, optional vs nullable, dimension... exactly.
    const noted = fieldFromNote(c.note);
    if (noted) {
      fields[c.name] = ref ? Object.freeze({ ...noted, references: ref }) : noted;
      continue;
    }
    const mapped = fieldOfColumn(c);
    if ('problem' in mapped) return mapped.problem;
    if (pk.includes(c.name) && !KEY_FIELD_TYPES.has(mapped.type))
      return `key column ${c.name} has type ${c.columnType}, which has no order a key can page by`;
    const spec = introspectedSpec(c, mapped.type, mapped.unsigned === true, !pk.includes(c.name) && c.nullable);
    fields[c.name] = ref ? Object.freeze({ ...spec, references: ref }) : spec;
  }
  try {
    return buildSchema(
      {
        name,
        fields,
        source,
        table: table.name,
        ...(pk.length === 0 ? { keyless: true } : { key: pk[0]! }),
        ...(pk.length > 1 ? { keyFields: pk } : {}),
      },
      'introspected',
    );
  } catch (e) {
    return (e as Error).message;
  }
}

/** MariaDB/MySQL refusals of a SELECT: on the table (1142), on a column (1143). */
const SELECT_DENIED = new Set([1142, 1143]);

/**
 * Why the current user may not read every row and column of `table`, or undefined when it may. The server is asked
 * (`SELECT *` of no rows): privileges come from the user, its roles and wildcards, which `information_schema` lists
 * only in part. A table the user has no privilege on at all is not listed to it in the first place (MariaDB and
 * MySQL hide it): that cannot be detected here, see the README.
 */
async function selectDenied(conn: PoolConnection, table: string): Promise<string | undefined> {
  try {
    await conn.query(`SELECT * FROM \`${table.replaceAll('`', '``')}\` LIMIT 0`);
    return undefined;
  } catch (e) {
    if (!SELECT_DENIED.has((e as { errno?: number }).errno ?? 0)) throw e;
    const [who] = await rows(conn, 'SELECT CURRENT_USER(), DATABASE()', [], (r) => r.map(String));
    const some = await rows(
      conn,
      'SELECT 1 FROM information_schema.COLUMN_PRIVILEGES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? LIMIT 1',
      [table],
      () => true,
    );
    const [user, database] = who!;
    return `permission denied: user ${user} may not SELECT ${some.length ? 'every column of it (only some: the others are hidden from it)' : 'it'} (GRANT SELECT ON \`${database}\`.\`${table}\` TO the user, or exclude it)`;
  }
}

/**
 * Entities for the tables of the current database. A table name that is not a valid entity name gets a cleaned one
 * (see `entityNamesForTables`) and keeps its table; tables Koan created (the `koan-entity:` comment) are named after
 * their entity, without Koan's bookkeeping column, and their `#` set tables are sets, not entities. (Discovery
 * registers an introspected schema only under a name no declared entity has.) A table without a primary key is a
 * keyless entity. Tables that cannot be mapped are listed in `skipped` with the reason; views and sequences in
 * `notData`.
 */
export async function introspectDatabase(
  conn: PoolConnection,
  source: string,
): Promise<{ schemas: EntitySchema[]; skipped: SkippedTable[]; notData: NotDataObject[] }> {
  const all = await rows(
    conn,
    "SELECT TABLE_NAME, TABLE_TYPE, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'TEMPORARY' ORDER BY TABLE_NAME",
    [],
    (r): TableRow => ({ name: String(r[0]), type: String(r[1]), comment: String(r[2] ?? '') }),
  );
  const skipped: SkippedTable[] = [];
  const notData: NotDataObject[] = [];
  for (const t of all) {
    const other = notDataOf(t);
    if (other && 'reason' in other) skipped.push(other);
    else if (other) notData.push(other);
  }
  const tables = all.filter((t) => t.type === 'BASE TABLE');
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
  const allColumns = await nativeColumns(conn);
  const allUsage = await keyUsage(conn);
  const schemas: EntitySchema[] = [];
  for (const table of tables) {
    const name = entityOf.get(table.name);
    if (name === undefined) continue;
    // A table the user may see but not read whole is named, never backed up with columns missing (the columns it
    // may not read are not even listed to it).
    const denied = await selectDenied(conn, table.name);
    if (denied) {
      skipped.push({ table: table.name, reason: denied });
      continue;
    }
    const cols = allColumns.filter((c) => c.table === table.name);
    // Koan's bookkeeping column is not a field of a table Koan created (a table comment, or noted columns).
    const koanMade = koanName(table) !== undefined || cols.some((c) => fieldFromNote(c.note));
    const fieldColumns = cols.filter((c) => !(c.name === ABSENT_COLUMN && koanMade));
    const usage = allUsage.filter((u) => u.table === table.name);
    const made = entityOfTable(name, table, fieldColumns, usage, entityOf, source);
    if (typeof made === 'string') skipped.push({ table: table.name, reason: made });
    else schemas.push(made);
  }
  return { schemas, skipped, notData };
}

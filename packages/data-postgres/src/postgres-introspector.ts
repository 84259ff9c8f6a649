import type { EntitySchema, FieldSpec, FieldType } from '@koan/data';
import {
  entityNamesForTables,
  fieldFromNote,
  type IntrospectionResult,
  type KeyType,
  type NotDataObject,
  type SkippedTable,
} from '@koan/data/adapter-kit';
import pg from 'pg';
import { ABSENT } from './session-rows.js';
import { q } from './type-mapping.js';

/** The comment on tables Koan created: `koan:<Entity>`. */
export const KOAN_COMMENT = 'koan:';

/** Schemas that are the server's own, never an application's. */
export const SYSTEM_SCHEMAS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

/** A table of the database as the catalog describes it. */
export interface TableInfo {
  readonly schema: string;
  readonly name: string;
  /** `r` table, `p` partitioned table. */
  readonly relkind: string;
  readonly comment: string | undefined;
  /** What the session's role may read of it (a role without SELECT cannot back it up; see `accessProblem`). */
  readonly access: TableAccess;
  readonly columns: readonly ColumnInfo[];
  readonly primaryKey: readonly string[];
  readonly foreignKeys: readonly {
    columns: string[];
    references: string;
    referencesSchema: string;
    referencedColumns: string[];
    name: string;
  }[];
}

/** The session role's access to a table's rows. */
export interface TableAccess {
  /** The session's role (`current_user`). */
  readonly role: string;
  /** USAGE on the table's schema. */
  readonly schemaUsage: boolean;
  /** SELECT on the whole table. */
  readonly select: boolean;
  /** SELECT on some of its columns (column privileges) without SELECT on the table. */
  readonly someColumns: boolean;
  /** Row-level security applies to the role: its policies may hide rows (not the owner, not BYPASSRLS). */
  readonly rowSecurity: boolean;
}

/**
 * Why the session's role cannot read every row and column of a table (so a backup would leave something out), or
 * undefined when it can.
 */
export function accessProblem(table: TableInfo): string | undefined {
  const { role, schemaUsage, select, someColumns, rowSecurity } = table.access;
  const name = `${q(table.schema)}.${q(table.name)}`;
  if (!schemaUsage)
    return `permission denied: role ${role} has no USAGE on schema ${table.schema} (GRANT USAGE ON SCHEMA ${q(table.schema)} TO ${q(role)}, or exclude it)`;
  if (!select)
    return `permission denied: role ${role} has no SELECT privilege on it${someColumns ? ' (only on some of its columns)' : ''} (GRANT SELECT ON ${name} TO ${q(role)}, or exclude it)`;
  if (rowSecurity)
    return `row-level security: its policies may hide rows from role ${role} (back it up as its owner, a superuser or a role with BYPASSRLS, or exclude it)`;
  return undefined;
}

export interface ColumnInfo {
  readonly name: string;
  readonly storeType: string;
  /** The type's name; a domain's base type's (two levels deep) for a domain. */
  readonly typeName: string;
  /** `b` base, `e` enum, `r` range, `m` multirange, `c` composite (of the base type for a domain). */
  readonly typeKind: string;
  readonly isArray: boolean;
  readonly nullable: boolean;
  readonly typmod: number;
  readonly generated: boolean;
  /** The column's comment (a `fieldNote` on columns Koan created). */
  readonly note?: string | undefined;
}

/**
 * Reads the tables (plain and partitioned, not partitions) of every application schema, or of one table, with their
 * columns, primary keys and foreign keys, in three queries.
 */
export async function readTables(
  pool: pg.Pool | pg.ClientBase,
  only?: { readonly schema: string; readonly table: string },
): Promise<TableInfo[]> {
  const filter = only ? 'AND n.nspname = $1 AND c.relname = $2' : '';
  const params = only ? [only.schema, only.table] : [];
  const from = `pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace`;
  const where = `${SYSTEM_SCHEMAS} AND c.relkind IN ('r', 'p') AND NOT c.relispartition ${filter}`;
  const readTableList = () =>
    pool.query<{
      s: string;
      t: string;
      relkind: string;
      comment: string | null;
      role: string;
      usage: boolean;
      sel: boolean;
      cols: boolean;
      rls: boolean;
    }>(
      `SELECT n.nspname AS s, c.relname AS t, c.relkind, obj_description(c.oid, 'pg_class') AS comment,
              current_user AS role, has_schema_privilege(n.oid, 'USAGE') AS usage,
              has_table_privilege(c.oid, 'SELECT') AS sel, has_any_column_privilege(c.oid, 'SELECT') AS cols,
              c.relrowsecurity AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))
                AND NOT (SELECT r.rolsuper OR r.rolbypassrls FROM pg_roles r WHERE r.rolname = current_user) AS rls
       FROM ${from} WHERE ${where} ORDER BY n.nspname, c.relname`,
      params,
    );
  const readColumns = () =>
    pool.query<{
      s: string;
      t: string;
      name: string;
      store: string;
      typname: string;
      kind: string;
      arr: boolean;
      notnull: boolean;
      typmod: number;
      generated: boolean;
      note: string | null;
    }>(
      `SELECT n.nspname AS s, c.relname AS t, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS store,
              col_description(c.oid, a.attnum) AS note, coalesce(b2.typname, b.typname, ty.typname) AS typname,
              coalesce(b2.typtype, b.typtype, ty.typtype) AS kind,
              coalesce(b2.typcategory, b.typcategory, ty.typcategory) = 'A' AS arr, a.attnotnull AS notnull,
              CASE WHEN ty.typtype = 'd' THEN ty.typtypmod ELSE a.atttypmod END AS typmod,
              a.attgenerated <> '' AS generated
       FROM pg_attribute a JOIN ${from} ON c.oid = a.attrelid
       JOIN pg_type ty ON ty.oid = a.atttypid
       LEFT JOIN pg_type b ON b.oid = ty.typbasetype AND ty.typtype = 'd'
       LEFT JOIN pg_type b2 ON b2.oid = b.typbasetype AND b.typtype = 'd'
       WHERE ${where} AND a.attnum > 0 AND NOT a.attisdropped
       ORDER BY n.nspname, c.relname, a.attnum`,
      params,
    );
  const readConstraints = () =>
    pool.query<{
      s: string;
      t: string;
      name: string;
      type: string;
      cols: string[];
      ref: string | null;
      refschema: string | null;
      refcols: string[] | null;
    }>(
      `SELECT n.nspname AS s, c.relname AS t, k.conname AS name, k.contype AS type,
              ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i)::text[] AS cols,
              r.relname AS ref, rn.nspname AS refschema,
              ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)::text[] AS refcols
       FROM pg_constraint k JOIN ${from} ON c.oid = k.conrelid
       LEFT JOIN pg_class r ON r.oid = k.confrelid LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
       WHERE ${where} AND k.contype IN ('p', 'f') AND k.conparentid = 0 ORDER BY k.conname`,
      params,
    );
  // A pool runs the three at once on three connections; a client (a transaction's) runs one query at a time.
  const [tables, columns, constraints] =
    pool instanceof pg.Pool
      ? await Promise.all([readTableList(), readColumns(), readConstraints()])
      : [await readTableList(), await readColumns(), await readConstraints()];
  const same = (s: string, t: string) => (x: { s: string; t: string }) => x.s === s && x.t === t;
  return tables.rows.map(({ s, t, relkind, comment, role, usage, sel, cols, rls }) => ({
    schema: s,
    name: t,
    relkind,
    comment: comment ?? undefined,
    access: { role, schemaUsage: usage, select: sel, someColumns: !sel && cols, rowSecurity: rls },
    columns: columns.rows.filter(same(s, t)).map((c) => ({
      name: c.name,
      storeType: c.store,
      typeName: c.typname,
      typeKind: c.kind,
      isArray: c.arr,
      nullable: !c.notnull,
      typmod: c.typmod,
      generated: c.generated,
      note: c.note ?? undefined,
    })),
    primaryKey: constraints.rows.find((k) => same(s, t)(k) && k.type === 'p')?.cols ?? [],
    foreignKeys: constraints.rows
      .filter((k) => same(s, t)(k) && k.type === 'f' && k.ref !== null)
      .map((k) => ({
        columns: k.cols,
        references: k.ref!,
        referencesSchema: k.refschema!,
        referencedColumns: k.refcols ?? [],
        name: k.name,
      })),
  }));
}

/** Field types of PostgreSQL base types; every other type (arrays, enums, ranges, intervals...) is its text. */
const FIELD_TYPES: Readonly<Record<string, FieldType>> = {
  text: 'string',
  varchar: 'string',
  bpchar: 'string',
  name: 'string',
  citext: 'string',
  int2: 'integer',
  int4: 'integer',
  int8: 'bigint',
  numeric: 'decimal',
  money: 'decimal',
  float4: 'number',
  float8: 'number',
  bool: 'boolean',
  timestamp: 'datetime',
  timestamptz: 'datetime',
  date: 'date',
  json: 'json',
  jsonb: 'json',
  bytea: 'binary',
  uuid: 'uuid',
};

/** The field of a column: arrays, enums and types with no closer match are carried as their text. */
function fieldOf(column: ColumnInfo): FieldSpec {
  // A column Koan created says which field it holds: its type, optional vs nullable, dimension... exactly.
  const noted = fieldFromNote(column.note);
  if (noted) return noted;
  const type: FieldType =
    column.isArray || column.typeKind !== 'b' ? 'string' : (FIELD_TYPES[column.typeName] ?? 'string');
  const spec: { -readonly [K in keyof FieldSpec]: FieldSpec[K] } = { type, optional: false, nullable: column.nullable };
  if (type === 'decimal' && column.typeName === 'numeric' && column.typmod >= 4) {
    spec.precision = ((column.typmod - 4) >> 16) & 0xffff;
    spec.scale = (column.typmod - 4) & 0xffff;
  }
  if (column.generated) spec.generated = 'stored';
  return spec;
}

/** Other objects of the database that hold no rows of their own, or whose rows are backed up elsewhere. */
async function readNotData(pool: pg.Pool, schema: string): Promise<NotDataObject[]> {
  const res = await pool.query<{
    s: string;
    t: string;
    relkind: string;
    root: string | null;
    rootschema: string | null;
    ext: string | null;
    server: string | null;
  }>(
    `SELECT n.nspname AS s, c.relname AS t, c.relkind, rc.relname AS root, rn.nspname AS rootschema,
            (SELECT e.extname FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e' LIMIT 1) AS ext,
            (SELECT s.srvname FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
             WHERE ft.ftrelid = c.oid) AS server
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_class rc ON c.relispartition AND rc.oid = pg_partition_root(c.oid)
     LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
     WHERE ${SYSTEM_SCHEMAS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
     ORDER BY n.nspname, c.relname`,
  );
  const name = (s: string, t: string) => (s === schema ? t : `${s}.${t}`);
  const out: NotDataObject[] = [];
  for (const r of res.rows) {
    const it = name(r.s, r.t);
    if (r.ext) out.push({ name: it, kind: 'extension table', note: `created and filled by the extension ${r.ext}` });
    else if (r.root)
      out.push({ name: it, kind: 'partition', note: `its rows are backed up through ${name(r.rootschema!, r.root)}` });
    else if (r.relkind === 'v') out.push({ name: it, kind: 'view', note: 'a view holds no rows of its own' });
    else if (r.relkind === 'm')
      out.push({
        name: it,
        kind: 'materialized view',
        note: 'computed from its query: refreshed, not backed up as data',
      });
    else if (r.relkind === 'f')
      out.push({ name: it, kind: 'foreign table', note: `its rows live on the foreign server ${r.server ?? '?'}` });
  }
  return out;
}

/** Key types of PostgreSQL key columns' field types (other key columns are ordered by their own type's order). */
function keyTypeOf(spec: FieldSpec): KeyType | undefined {
  return spec.type === 'json' || spec.type === 'vector' ? undefined : spec.type;
}

/**
 * Turns the tables of every application schema into introspected entities: the primary key becomes the key (a
 * composite one also `keyFields`), a table without one a `keyless` entity, single-column foreign keys become
 * references. Tables outside `schema` carry their `namespace` and are named `<schema>_<table>`; a table name that is
 * not a valid entity name gets a cleaned one (see `entityNamesForTables`) and keeps its table. Tables Koan created (a
 * `koan:<Entity>` comment) are named after their entity, their other sets' tables (`<table>#<set>`) are sets of it,
 * not entities, and the column Koan uses to tell missing optional values from nulls is not a field. Partitions,
 * views, materialized views, foreign tables and extensions' tables are listed as `notData`.
 */
export async function introspectSchema(pool: pg.Pool, schema: string, source: string): Promise<IntrospectionResult> {
  const entities: EntitySchema[] = [];
  const skipped: SkippedTable[] = [];
  const notData = await readNotData(pool, schema);
  const extensionTables = new Set(notData.filter((n) => n.kind === 'extension table').map((n) => n.name));
  const id = (t: { schema: string; name: string }) => (t.schema === schema ? t.name : `${t.schema}.${t.name}`);
  const tables = (await readTables(pool))
    .filter((t) => !(t.comment?.startsWith(KOAN_COMMENT) && t.name.includes('#')))
    .filter((t) => !extensionTables.has(id(t)))
    // The source's own schema first: its tables keep their plain names.
    .sort((a, b) => Number(a.schema !== schema) - Number(b.schema !== schema));
  const koanName = (t: TableInfo) =>
    t.comment?.startsWith(KOAN_COMMENT) ? t.comment.slice(KOAN_COMMENT.length) : undefined;
  // Koan's tables keep the entity names they were created for; the others get names that do not clash with them.
  const names = new Map<string, string>();
  for (const t of tables) {
    const name = koanName(t);
    if (name && /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name) && ![...names.values()].includes(name))
      names.set(id(t), name);
  }
  // One table at a time: `billing.invoice` and a table named `billing_invoice` ask for the same name.
  const taken = new Set(names.values());
  for (const t of tables.filter((x) => !names.has(id(x)))) {
    const wanted = t.schema === schema ? t.name : `${t.schema}_${t.name}`;
    names.set(id(t), entityNamesForTables([wanted], taken).get(wanted)!);
  }
  for (const table of tables) {
    // A table the role cannot read whole is named, never backed up with rows or columns missing.
    const denied = accessProblem(table);
    if (denied) {
      skipped.push({ table: id(table), reason: denied });
      continue;
    }
    const keyless = table.primaryKey.length === 0;
    const fields: Record<string, FieldSpec> = {};
    for (const column of table.columns) {
      if (column.name === ABSENT && koanName(table)) continue;
      let spec = fieldOf(column);
      if (table.primaryKey.includes(column.name)) spec = { ...spec, nullable: false };
      const fk = table.foreignKeys.find((f) => f.columns.length === 1 && f.columns[0] === column.name);
      if (fk?.referencedColumns[0])
        spec = {
          ...spec,
          references: {
            entity: names.get(id({ schema: fk.referencesSchema, name: fk.references })) ?? fk.references,
            field: fk.referencedColumns[0],
          },
        };
      fields[column.name] = spec;
    }
    const [key] = table.primaryKey;
    const keyType = key === undefined ? 'none' : keyTypeOf(fields[key]!);
    if (keyType === undefined) {
      skipped.push({
        table: id(table),
        reason: `key column ${key} is ${table.columns.find((c) => c.name === key)!.storeType}, which has no order an archive can keep`,
      });
      continue;
    }
    entities.push({
      name: names.get(id(table))!,
      key: key ?? '',
      keyType,
      ...(table.primaryKey.length > 1 ? { keyFields: [...table.primaryKey] } : {}),
      ...(keyless ? { keyless: true } : {}),
      fields,
      source,
      table: table.name,
      ...(table.schema !== schema ? { namespace: table.schema } : {}),
      origin: 'introspected',
    });
  }
  return { entities, skipped, notData };
}

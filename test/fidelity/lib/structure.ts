/**
 * Structure of a database as its own tools describe it: counts of each kind of object (for the report and the
 * same-provider assertions), sequence/AUTO_INCREMENT positions, `pg_dump --schema-only` split into objects, and
 * MariaDB's `SHOW CREATE TABLE`.
 */
import type { Table } from './catalog.js';
import { pgDumpSchema, type Scratch } from './scratch.js';

/** Object kind → how many the database holds. */
export type StructureCounts = Record<string, number>;

const PG_NS = `(SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%')`;
const PG_REL = `(SELECT c.* FROM pg_class c WHERE c.relnamespace IN ${PG_NS})`;
const PG_COLS = `(SELECT a.* FROM pg_attribute a JOIN ${PG_REL} r ON r.oid = a.attrelid WHERE r.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped)`;
const pgCon = (type: string) =>
  `SELECT count(*) FROM pg_constraint WHERE contype = '${type}' AND conrelid <> 0 AND connamespace IN ${PG_NS}`;

const PG_COUNTS: Record<string, string> = {
  tables: `SELECT count(*) FROM ${PG_REL} r WHERE relkind IN ('r', 'p') AND NOT relispartition`,
  partitions: `SELECT count(*) FROM ${PG_REL} r WHERE relispartition AND relkind IN ('r', 'p')`,
  indexes: `SELECT count(*) FROM ${PG_REL} r WHERE relkind IN ('i', 'I')`,
  'primary keys': pgCon('p'),
  'unique constraints': pgCon('u'),
  checks: pgCon('c'),
  'foreign keys': pgCon('f'),
  sequences: `SELECT count(*) FROM ${PG_REL} r WHERE relkind = 'S'`,
  'identity columns': `SELECT count(*) FROM ${PG_COLS} a WHERE attidentity <> ''`,
  'generated columns': `SELECT count(*) FROM ${PG_COLS} a WHERE attgenerated <> ''`,
  defaults: `SELECT count(*) FROM ${PG_COLS} a WHERE atthasdef AND attgenerated = ''`,
  'not-null columns': `SELECT count(*) FROM ${PG_COLS} a WHERE attnotnull`,
  triggers: `SELECT count(*) FROM pg_trigger t JOIN ${PG_REL} r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal`,
  views: `SELECT count(*) FROM ${PG_REL} r WHERE relkind = 'v'`,
  'materialized views': `SELECT count(*) FROM ${PG_REL} r WHERE relkind = 'm'`,
  functions: `SELECT count(*) FROM pg_proc WHERE pronamespace IN ${PG_NS}`,
  enums: `SELECT count(*) FROM pg_type WHERE typtype = 'e' AND typnamespace IN ${PG_NS}`,
  domains: `SELECT count(*) FROM pg_type WHERE typtype = 'd' AND typnamespace IN ${PG_NS}`,
  schemas: `SELECT count(*) FROM pg_namespace WHERE oid IN ${PG_NS} AND nspname <> 'public'`,
  comments: `SELECT count(*) FROM pg_description d JOIN ${PG_REL} r ON r.oid = d.objoid`,
};

const MY_COUNTS: Record<string, string> = {
  tables: `SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'`,
  indexes: `SELECT count(DISTINCT TABLE_NAME, INDEX_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()`,
  'primary keys': `SELECT count(*) FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_TYPE = 'PRIMARY KEY'`,
  'unique constraints': `SELECT count(*) FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_TYPE = 'UNIQUE'`,
  checks: `SELECT count(*) FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()`,
  'foreign keys': `SELECT count(*) FROM information_schema.TABLE_CONSTRAINTS WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_TYPE = 'FOREIGN KEY'`,
  'auto-increment columns': `SELECT count(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND EXTRA LIKE '%auto_increment%'`,
  'on-update columns': `SELECT count(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND EXTRA LIKE '%on update%'`,
  'generated columns': `SELECT count(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND IS_GENERATED = 'ALWAYS'`,
  defaults: `SELECT count(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_DEFAULT IS NOT NULL AND COLUMN_DEFAULT <> 'NULL' AND IS_GENERATED = 'NEVER'`,
  'not-null columns': `SELECT count(*) FROM information_schema.COLUMNS c JOIN information_schema.TABLES t USING (TABLE_SCHEMA, TABLE_NAME) WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' AND IS_NULLABLE = 'NO'`,
  triggers: `SELECT count(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()`,
  views: `SELECT count(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()`,
  routines: `SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE()`,
};

const SQLITE_COUNTS: Record<string, string> = {
  tables: `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`,
  indexes: `SELECT count(*) FROM sqlite_master WHERE type = 'index'`,
  'primary keys': `SELECT count(DISTINCT m.name) FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND p.pk > 0`,
  'foreign keys': `SELECT count(DISTINCT m.name || '.' || f.id) FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table'`,
  defaults: `SELECT count(*) FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND p.dflt_value IS NOT NULL`,
  'not-null columns': `SELECT count(*) FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table' AND p."notnull"`,
  checks: `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND upper(sql) LIKE '%CHECK%'`,
  triggers: `SELECT count(*) FROM sqlite_master WHERE type = 'trigger'`,
  views: `SELECT count(*) FROM sqlite_master WHERE type = 'view'`,
};

export async function structureCounts(db: Scratch): Promise<StructureCounts> {
  const queries = db.provider === 'postgres' ? PG_COUNTS : db.provider === 'mysql' ? MY_COUNTS : SQLITE_COUNTS;
  const out: StructureCounts = {};
  for (const [kind, sql] of Object.entries(queries)) out[kind] = Number((await db.query(sql))[0]![0]);
  return out;
}

/**
 * Where each sequence or AUTO_INCREMENT counter stands: `name → next value` (PostgreSQL: `last_value` and whether it
 * was called; MariaDB: the table's AUTO_INCREMENT).
 */
export async function counters(db: Scratch): Promise<Record<string, string>> {
  const rows =
    db.provider === 'postgres'
      ? await db.query(
          `SELECT schemaname || '.' || sequencename, coalesce(last_value::text, 'never called') FROM pg_sequences ORDER BY 1`,
        )
      : db.provider === 'mysql'
        ? await db.query(
            `SELECT TABLE_NAME, CAST(AUTO_INCREMENT AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND AUTO_INCREMENT IS NOT NULL ORDER BY 1`,
          )
        : [];
  return Object.fromEntries((rows as string[][]).map(([k, v]) => [k!, v!]));
}

/** One object of a `pg_dump --schema-only` script. */
export interface DumpObject {
  /** `TYPE schema.name` as in pg_dump's header comment. */
  readonly id: string;
  readonly type: string;
  readonly name: string;
  /** The table it belongs to (`schema.table`, `public.` left out), when it belongs to one. */
  readonly table?: string;
  readonly sql: string;
}

const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replaceAll('""', '"') : s);
const qualified = (schema: string, name: string) => (schema === 'public' ? name : `${schema}.${name}`);
const IDENT = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
const TABLE_REF = new RegExp(String.raw`(?:TABLE(?: ONLY)?|ON(?: ONLY)?|OWNED BY|PARTITION OF) (${IDENT})\.(${IDENT})`);

/** Splits a `pg_dump --schema-only` script into its objects, each attributed to its table where it has one. */
export function parsePgDump(dump: string): DumpObject[] {
  const header = /^-- Name: (.*); Type: (.*); Schema: (.*); Owner: .*$/gm;
  const marks = [...dump.matchAll(header)];
  const objects: DumpObject[] = [];
  for (let i = 0; i < marks.length; i++) {
    const m = marks[i]!;
    const end = i + 1 < marks.length ? marks[i + 1]!.index! : dump.length;
    const sql = dump
      .slice(m.index! + m[0].length, end)
      .split('\n')
      .filter((l) => l.trim() && l.trim() !== '--' && !/^(SET |SELECT pg_catalog\.set_config|\\(un)?restrict )/.test(l))
      .join('\n')
      .trim();
    const [, name, type, schema] = m;
    const ref = TABLE_REF.exec(sql);
    const table = ref ? qualified(unquote(ref[1]!), unquote(ref[2]!)) : undefined;
    objects.push({ id: `${type} ${schema}.${name}`, type: type!, name: name!, ...(table ? { table } : {}), sql });
  }
  // A serial's CREATE SEQUENCE names no table: it belongs to the table its OWNED BY names.
  const owner = new Map(
    objects.filter((o) => o.type === 'SEQUENCE OWNED BY' && o.table).map((o) => [o.name, o.table!] as const),
  );
  return objects.map((o) =>
    o.type === 'SEQUENCE' && !o.table && owner.has(o.name) ? { ...o, table: owner.get(o.name)! } : o,
  );
}

export async function pgDumpObjects(db: Scratch): Promise<{ text: string; objects: DumpObject[] }> {
  const text = await pgDumpSchema(db);
  return { text, objects: parsePgDump(text) };
}

/** Differences between two sets of dump objects: missing from `restored`, added in it, changed (with both texts). */
export interface DumpDiff {
  readonly missing: DumpObject[];
  readonly added: DumpObject[];
  readonly changed: { readonly source: DumpObject; readonly restored: DumpObject }[];
}

export function diffDumps(source: readonly DumpObject[], restored: readonly DumpObject[]): DumpDiff {
  const byId = new Map(restored.map((o) => [o.id, o]));
  const sourceIds = new Set(source.map((o) => o.id));
  const changed: DumpDiff['changed'] = [];
  const missing: DumpObject[] = [];
  for (const o of source) {
    const r = byId.get(o.id);
    if (!r) missing.push(o);
    else if (r.sql !== o.sql) changed.push({ source: o, restored: r });
  }
  return { missing, added: restored.filter((o) => !sourceIds.has(o.id)), changed };
}

/** `SHOW CREATE TABLE` of each table of a MariaDB database, by table name. */
export async function showCreateTables(db: Scratch, tables: readonly Table[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const t of tables) out.set(t.id, String((await db.query(`SHOW CREATE TABLE ${t.sql}`))[0]![1]));
  return out;
}

/** Every object of a SQLite database as `sqlite_master` holds it: `type name → sql`. */
export async function sqliteObjects(db: Scratch): Promise<Map<string, { table: string; sql: string }>> {
  const rows = await db.query(
    `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'`,
  );
  return new Map(
    (rows as string[][]).map(([type, name, table, sql]) => [`${type} ${name}`, { table: table!, sql: sql! }]),
  );
}

/** Triggers and views of a MariaDB database: `kind name → definition`. */
export async function myNonTables(db: Scratch): Promise<Map<string, string>> {
  const rows = await db.query(
    `SELECT 'trigger', TRIGGER_NAME, CONCAT(ACTION_TIMING, ' ', EVENT_MANIPULATION, ' ON ', EVENT_OBJECT_TABLE, ': ', ACTION_STATEMENT)
       FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()
     UNION ALL SELECT 'view', TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()`,
  );
  return new Map(
    (rows as string[][]).map(([kind, name, def]) => [`${kind} ${name}`, def!.replaceAll(db.name, '<db>')]),
  );
}

/** A line diff of two texts (the lines of each not in the other, in order), for failure messages. */
export function lineDiff(a: string, b: string): string {
  const al = a.split('\n');
  const bl = b.split('\n');
  const bs = new Set(bl);
  const as = new Set(al);
  return [
    ...al.filter((l) => !bs.has(l)).map((l) => `- ${l}`),
    ...bl.filter((l) => !as.has(l)).map((l) => `+ ${l}`),
  ].join('\n');
}

/**
 * What a database holds, read from its own catalog: tables, columns with their native types, primary keys, and the
 * structure counts the report compares (indexes, foreign keys, sequences, defaults, checks, triggers, views...).
 */
import type { Provider, Scratch } from './scratch.js';

/** How a column's values are compared: decided by the *source* column's native type. */
export type ValueKind =
  | 'int'
  | 'decimal'
  | 'money'
  | 'float4'
  | 'float8'
  | 'bool'
  | 'timestamp'
  | 'date'
  | 'json'
  | 'binary'
  | 'uuid'
  | 'pgbits'
  | 'mybits'
  | 'array-num'
  | 'array-text'
  | 'text';

export interface Column {
  readonly name: string;
  /** As the store spells it (`format_type`, `COLUMN_TYPE`, the declared SQLite type). */
  readonly nativeType: string;
  readonly kind: ValueKind;
  /** SQL that reads the column as text (PostgreSQL, MariaDB) or as stored (SQLite). */
  readonly read: string;
}

export interface Table {
  /** `schema.table` outside PostgreSQL's `public`, else the table name. */
  readonly id: string;
  readonly namespace?: string;
  readonly name: string;
  /** The table as SQL: quoted, qualified where needed. */
  readonly sql: string;
  readonly columns: readonly Column[];
  readonly primaryKey: readonly string[];
}

const pgIdent = (s: string) => `"${s.replaceAll('"', '""')}"`;
const myIdent = (s: string) => `\`${s.replaceAll('`', '``')}\``;
export const quoteIdent = (provider: Provider, s: string) => (provider === 'mysql' ? myIdent(s) : pgIdent(s));

function pgKind(base: string, category: string, elem: string): ValueKind {
  if (category === 'A') return /^(int[248]|numeric|float[48]|oid)$/.test(elem) ? 'array-num' : 'array-text';
  if (/^(int[248]|oid)$/.test(base)) return 'int';
  const kinds: Record<string, ValueKind> = {
    numeric: 'decimal',
    money: 'money',
    float4: 'float4',
    float8: 'float8',
    bool: 'bool',
    timestamptz: 'timestamp',
    timestamp: 'timestamp',
    date: 'date',
    json: 'json',
    jsonb: 'json',
    bytea: 'binary',
    uuid: 'uuid',
    bit: 'pgbits',
    varbit: 'pgbits',
  };
  return kinds[base] ?? 'text';
}

async function pgTables(db: Scratch): Promise<Table[]> {
  const rows = (await db.query(`
    SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), bt.typname, bt.typcategory,
           coalesce(et.typname, ''), array_position(i.indkey::int2[], a.attnum)::text
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_type t ON t.oid = a.atttypid
    JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
    LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
    LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY 1, 2, a.attnum`)) as (string | null)[][];
  const out = new Map<string, Table & { columns: Column[]; keyAt: [number, string][] }>();
  for (const [ns, name, col, type, base, category, elem, pkAt] of rows) {
    const id = ns === 'public' ? name! : `${ns}.${name}`;
    let t = out.get(id);
    if (!t) {
      t = {
        id,
        ...(ns === 'public' ? {} : { namespace: ns! }),
        name: name!,
        sql: `${pgIdent(ns!)}.${pgIdent(name!)}`,
        columns: [],
        primaryKey: [],
        keyAt: [],
      };
      out.set(id, t);
    }
    t.columns.push({
      name: col!,
      nativeType: type!,
      kind: pgKind(base!, category!, elem!),
      // The driver hands every value over as its type's output text (inet without /32, unlike ::text).
      read: base === 'bytea' ? `encode(${pgIdent(col!)}, 'hex')` : pgIdent(col!),
    });
    if (pkAt !== null) t.keyAt.push([Number(pkAt), col!]);
  }
  return [...out.values()].map(({ keyAt, ...t }) => ({
    ...t,
    primaryKey: keyAt.sort((a, b) => a[0] - b[0]).map(([, c]) => c),
  }));
}

function myKind(dataType: string, isJson: boolean): ValueKind {
  if (isJson) return 'json';
  if (/^(tinyint|smallint|mediumint|int|bigint|year)$/.test(dataType)) return 'int';
  if (/^(binary|varbinary|tinyblob|blob|mediumblob|longblob)$/.test(dataType)) return 'binary';
  const kinds: Record<string, ValueKind> = {
    decimal: 'decimal',
    float: 'float4',
    double: 'float8',
    date: 'date',
    datetime: 'timestamp',
    timestamp: 'timestamp',
    bit: 'mybits',
  };
  return kinds[dataType] ?? 'text';
}

function myRead(col: string, kind: ValueKind): string {
  const c = myIdent(col);
  if (kind === 'binary') return `HEX(${c})`;
  if (kind === 'mybits') return `CAST(${c} + 0 AS CHAR)`;
  // FLOAT as the exact float widened to double: FLOAT's own text keeps 6 significant digits.
  if (kind === 'float4') return `CAST(${c} + 0e0 AS CHAR)`;
  return `CAST(${c} AS CHAR)`;
}

async function myTables(db: Scratch): Promise<Table[]> {
  const checks = await db.query(
    `SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()`,
  );
  const jsonCols = new Set(
    (checks as string[][]).flatMap(([t, clause]) => {
      const m = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(clause!.trim());
      return m ? [`${t}\u0000${m[1]!.replaceAll('``', '`')}`] : [];
    }),
  );
  const cols = (await db.query(
    `SELECT c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.DATA_TYPE FROM information_schema.COLUMNS c
     JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
     WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`,
  )) as string[][];
  const keys = (await db.query(
    `SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
     WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION`,
  )) as string[][];
  const out = new Map<string, Table & { columns: Column[]; primaryKey: string[] }>();
  for (const [name, col, type, dataType] of cols) {
    let t = out.get(name!);
    if (!t) {
      t = { id: name!, name: name!, sql: myIdent(name!), columns: [], primaryKey: [] };
      out.set(name!, t);
    }
    const kind = myKind(dataType!.toLowerCase(), jsonCols.has(`${name}\u0000${col}`) || dataType === 'json');
    t.columns.push({ name: col!, nativeType: type!, kind, read: myRead(col!, kind) });
  }
  for (const [name, col] of keys) out.get(name!)?.primaryKey.push(col!);
  return [...out.values()];
}

function sqliteKind(declared: string): ValueKind {
  const t = declared.toUpperCase();
  if (/INT/.test(t)) return 'int';
  if (/^(NUMERIC|DECIMAL)/.test(t)) return 'decimal';
  if (/REAL|FLOA|DOUB/.test(t)) return 'float8';
  if (/^DATETIME|^TIMESTAMP/.test(t)) return 'timestamp';
  if (/^DATE/.test(t)) return 'date';
  if (/JSON/.test(t)) return 'json';
  if (/BLOB/.test(t) || t === '') return 'binary';
  if (/BOOL/.test(t)) return 'bool';
  return 'text';
}

async function sqliteTables(db: Scratch): Promise<Table[]> {
  const rels = await db.query(
    `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1`,
  );
  const out: Table[] = [];
  for (const [name] of rels as string[][]) {
    const info = (await db.query(`SELECT name, type, pk FROM pragma_table_info(?)`, [name])) as [
      string,
      string,
      bigint,
    ][];
    out.push({
      id: name!,
      name: name!,
      sql: pgIdent(name!),
      columns: info.map(([col, type]) => ({ name: col, nativeType: type, kind: sqliteKind(type), read: pgIdent(col) })),
      primaryKey: info
        .filter((c) => Number(c[2]) > 0)
        .sort((a, b) => Number(a[2]) - Number(b[2]))
        .map((c) => c[0]),
    });
  }
  return out;
}

/** Every base table of the database (PostgreSQL: partitioned parents, not their partitions), with columns and keys. */
export function tablesOf(db: Scratch): Promise<Table[]> {
  return db.provider === 'postgres' ? pgTables(db) : db.provider === 'mysql' ? myTables(db) : sqliteTables(db);
}

const sanitized = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

/**
 * The table of `tables` that holds what was `id` in the source: the same id, else the same name in another namespace,
 * else the name with other characters than letters, digits and `_` replaced by `_` (an entity name), in any case.
 */
export function findTable(tables: readonly Table[], id: string): Table | undefined {
  const bare = id.includes('.') ? id.slice(id.indexOf('.') + 1) : id;
  const candidates = [id, bare, sanitized(id), sanitized(bare)];
  for (const c of candidates) {
    const hit = tables.find((t) => t.id === c) ?? tables.find((t) => t.name === c);
    if (hit) return hit;
  }
  for (const c of candidates) {
    const hit = tables.find((t) => t.name.toLowerCase() === c.toLowerCase());
    if (hit) return hit;
  }
  return undefined;
}

/** The column of `table` that holds what was `name` in the source (same name, else sanitized, else any case). */
export function findColumn(table: Table, name: string): Column | undefined {
  return (
    table.columns.find((c) => c.name === name) ??
    table.columns.find((c) => c.name === sanitized(name)) ??
    table.columns.find((c) => c.name.toLowerCase() === name.toLowerCase()) ??
    table.columns.find((c) => c.name.toLowerCase() === sanitized(name).toLowerCase())
  );
}

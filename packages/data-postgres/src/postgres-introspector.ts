import {
  type EntitySchema,
  entityNamesForTables,
  type FieldSpec,
  type FieldType,
  fieldFromNote,
  type IntrospectionResult,
  type KeyType,
  type SkippedTable,
} from '@koan/data';
import type pg from 'pg';
import { ABSENT } from './postgres-session.js';

/** The comment on tables Koan created: `koan:<Entity>`. */
export const KOAN_COMMENT = 'koan:';

/** A table of the schema as the catalog describes it. */
export interface TableInfo {
  readonly name: string;
  readonly comment: string | undefined;
  readonly columns: readonly ColumnInfo[];
  readonly primaryKey: readonly string[];
  readonly foreignKeys: readonly { columns: string[]; references: string; referencedColumns: string[]; name: string }[];
}

interface ColumnInfo {
  readonly name: string;
  readonly storeType: string;
  readonly typeName: string;
  readonly isArray: boolean;
  readonly nullable: boolean;
  readonly typmod: number;
  /** The column's comment (a `fieldNote` on columns Koan created). */
  readonly note?: string | undefined;
}

/** Reads tables, columns, primary keys and foreign keys of one schema (or one table of it) in three queries. */
export async function readTables(pool: pg.Pool, schema: string, only?: string): Promise<TableInfo[]> {
  const filter = only === undefined ? '' : 'AND c.relname = $2';
  const params = only === undefined ? [schema] : [schema, only];
  const [tables, columns, constraints] = await Promise.all([
    pool.query<{ t: string; comment: string | null }>(
      `SELECT c.relname AS t, obj_description(c.oid, 'pg_class') AS comment
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ${filter} ORDER BY c.relname`,
      params,
    ),
    pool.query<{
      t: string;
      name: string;
      store: string;
      typname: string;
      arr: boolean;
      notnull: boolean;
      typmod: number;
      note: string | null;
    }>(
      `SELECT c.relname AS t, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS store,
              col_description(c.oid, a.attnum) AS note,
              coalesce(et.typname, ty.typname) AS typname, ty.typcategory = 'A' AS arr, a.attnotnull AS notnull, a.atttypmod AS typmod
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type ty ON ty.oid = a.atttypid LEFT JOIN pg_type et ON et.oid = ty.typbasetype AND ty.typtype = 'd'
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ${filter}
       ORDER BY c.relname, a.attnum`,
      params,
    ),
    pool.query<{ t: string; name: string; type: string; cols: string[]; ref: string | null; refcols: string[] | null }>(
      `SELECT c.relname AS t, k.conname AS name, k.contype AS type,
              ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i)::text[] AS cols,
              r.relname AS ref,
              ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                    JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)::text[] AS refcols
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_class r ON r.oid = k.confrelid
       WHERE n.nspname = $1 AND k.contype IN ('p', 'f') ${filter} ORDER BY k.conname`,
      params,
    ),
  ]);
  return tables.rows.map(({ t, comment }) => ({
    name: t,
    comment: comment ?? undefined,
    columns: columns.rows
      .filter((c) => c.t === t)
      .map((c) => ({
        name: c.name,
        storeType: c.store,
        typeName: c.typname,
        isArray: c.arr,
        nullable: !c.notnull,
        typmod: c.typmod,
        note: c.note ?? undefined,
      })),
    primaryKey: constraints.rows.find((k) => k.t === t && k.type === 'p')?.cols ?? [],
    foreignKeys: constraints.rows
      .filter((k) => k.t === t && k.type === 'f' && k.ref !== null)
      .map((k) => ({ columns: k.cols, references: k.ref!, referencedColumns: k.refcols ?? [], name: k.name })),
  }));
}

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

const KEY_TYPES: Readonly<Record<string, KeyType>> = {
  int2: 'integer',
  int4: 'integer',
  // int8 keys are read as JS numbers: exact while they stay within ±2^53 (serial/identity keys do).
  int8: 'integer',
  text: 'string',
  varchar: 'string',
  bpchar: 'string',
  citext: 'string',
  uuid: 'uuid',
};

/** The field of a column: arrays become json; types with no closer match are carried as their text. */
function fieldOf(column: ColumnInfo): FieldSpec {
  // A column Koan created says which field it holds: its type, optional vs nullable, dimension... exactly.
  const noted = fieldFromNote(column.note);
  if (noted) return noted;
  const type: FieldType = column.isArray ? 'json' : (FIELD_TYPES[column.typeName] ?? 'string');
  const spec: { -readonly [K in keyof FieldSpec]: FieldSpec[K] } = { type, optional: false, nullable: column.nullable };
  if (type === 'decimal' && column.typmod >= 4) {
    spec.precision = ((column.typmod - 4) >> 16) & 0xffff;
    spec.scale = (column.typmod - 4) & 0xffff;
  }
  return spec;
}

/**
 * Turns the tables of the schema into introspected entities: the primary key becomes the key (a composite one
 * also `keyFields`), single-column foreign keys become references. A table name that is not a valid entity name
 * gets a cleaned entity name (see `entityNamesForTables`) and keeps its table. Tables Koan created (a `koan:<Entity>`
 * comment) are named after their entity, their other sets' tables (`<table>#<set>`) are sets of it, not entities,
 * and the column Koan uses to tell missing optional values from nulls is not a field. (An application that declares
 * the entity keeps its declaration: discovery registers an introspected schema only under a name not yet taken.)
 */
export async function introspectSchema(pool: pg.Pool, schema: string, source: string): Promise<IntrospectionResult> {
  const entities: EntitySchema[] = [];
  const skipped: SkippedTable[] = [];
  const tables = (await readTables(pool, schema)).filter(
    (t) => !(t.comment?.startsWith(KOAN_COMMENT) && t.name.includes('#')),
  );
  const koanName = (t: TableInfo) =>
    t.comment?.startsWith(KOAN_COMMENT) ? t.comment.slice(KOAN_COMMENT.length) : undefined;
  // Koan's tables keep the entity names they were created for; the others get names that do not clash with them.
  const names = new Map<string, string>();
  for (const t of tables) {
    const name = koanName(t);
    if (name && /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name) && ![...names.values()].includes(name))
      names.set(t.name, name);
  }
  const others = entityNamesForTables(
    tables.filter((t) => !names.has(t.name)).map((t) => t.name),
    new Set(names.values()),
  );
  for (const [table, name] of others) names.set(table, name);
  for (const table of tables) {
    const [key] = table.primaryKey;
    if (key === undefined) {
      skipped.push({ table: table.name, reason: 'no primary key: records could not be addressed or restored by key' });
      continue;
    }
    const keyTypes = new Map<string, KeyType>();
    const badKey = table.primaryKey.find((name) => {
      const column = table.columns.find((c) => c.name === name)!;
      const type = column.isArray ? undefined : KEY_TYPES[column.typeName];
      if (type) keyTypes.set(name, type);
      return !type;
    });
    if (badKey !== undefined) {
      skipped.push({
        table: table.name,
        reason: `key column ${badKey} is ${table.columns.find((c) => c.name === badKey)!.storeType}: keys are text, uuid or integer`,
      });
      continue;
    }
    const keyType = keyTypes.get(key)!;
    const fields: Record<string, FieldSpec> = {};
    for (const column of table.columns) {
      if (column.name === ABSENT && koanName(table)) continue;
      const columnKeyType = keyTypes.get(column.name);
      let spec: FieldSpec = columnKeyType
        ? { ...fieldOf(column), type: columnKeyType as FieldType, nullable: false }
        : fieldOf(column);
      const fk = table.foreignKeys.find((f) => f.columns.length === 1 && f.columns[0] === column.name);
      if (fk?.referencedColumns[0])
        spec = {
          ...spec,
          references: { entity: names.get(fk.references) ?? fk.references, field: fk.referencedColumns[0] },
        };
      fields[column.name] = spec;
    }
    entities.push({
      name: names.get(table.name)!,
      key,
      keyType,
      ...(table.primaryKey.length > 1 ? { keyFields: [...table.primaryKey] } : {}),
      fields,
      source,
      table: table.name,
      origin: 'introspected',
    });
  }
  return { entities, skipped, notData: [] };
}

import {
  buildSchema,
  type EntitySchema,
  type FieldSpec,
  type IntrospectionResult,
  type SkippedTable,
} from '@koan/data';
import type Database from 'better-sqlite3';
import { fieldTypeOfColumn, quoteIdent } from './sqlite-types.js';

/** Where Koan records the tables it created (so introspection leaves them out). */
export const KOAN_META_TABLE = '_koan_entities';

interface ColumnInfo {
  name: string;
  type: string;
  notnull: number;
  pk: number;
}

interface ForeignKeyInfo {
  id: number;
  seq: number;
  table: string;
  from: string;
  to: string | null;
}

/** An entity name for a table name: letters, digits and `_`, starting with a letter or `_`. */
export function entityNameOf(table: string): string {
  const cleaned = table.replace(/[^A-Za-z0-9_]/g, '_');
  return (/^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`).slice(0, 63);
}

/**
 * Maps every table Koan did not create to an entity: declared column types to field types
 * (see `fieldTypeOfColumn`), the primary key to the key (a composite one to `keyFields`), single-column
 * foreign keys to `references`, `DECIMAL(p,s)`/`NUMERIC(p,s)` to decimal precision and scale.
 */
export function introspectDatabase(db: Database.Database, source: string): IntrospectionResult {
  const koanTables = new Set<string>(
    (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`).pluck(true).get(KOAN_META_TABLE) as
      | string
      | undefined)
      ? (db.prepare(`SELECT physical FROM ${KOAN_META_TABLE}`).pluck(true).all() as string[])
      : [],
  );
  const tables = (
    db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck(true).all() as string[]
  ).filter((name) => !name.startsWith('sqlite_') && !name.startsWith('_koan_') && !koanTables.has(name));
  const info = new Map<string, ColumnInfo[]>();
  for (const table of tables)
    info.set(
      table,
      db
        .prepare(`PRAGMA table_info(${quoteIdent(table)})`)
        .safeIntegers(false)
        .all() as ColumnInfo[],
    );
  const primaryKeyOf = (table: string) =>
    (info.get(table) ?? [])
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);

  const entities: EntitySchema[] = [];
  const skipped: SkippedTable[] = [];
  const usedNames = new Set<string>();
  for (const table of tables) {
    const columns = info.get(table)!;
    const pk = primaryKeyOf(table);
    if (pk.length === 0) {
      skipped.push({ table, reason: 'no primary key: records could not be addressed or restored by key' });
      continue;
    }
    const key = pk[0]!;
    const keyTypes = new Map<string, 'integer' | 'string'>();
    const badKey = pk.find((name) => {
      const type = fieldTypeOfColumn(columns.find((c) => c.name === name)!.type);
      if (type !== 'integer' && type !== 'string') return true;
      keyTypes.set(name, type);
      return false;
    });
    if (badKey !== undefined) {
      const declared = columns.find((c) => c.name === badKey)!.type;
      skipped.push({
        table,
        reason: `primary key column ${badKey} is ${declared || 'untyped'}: entity keys must be INTEGER or TEXT`,
      });
      continue;
    }
    const references = new Map<string, FieldSpec['references']>();
    const fks = db
      .prepare(`PRAGMA foreign_key_list(${quoteIdent(table)})`)
      .safeIntegers(false)
      .all() as ForeignKeyInfo[];
    for (const fk of fks) {
      if (fks.filter((f) => f.id === fk.id).length !== 1) continue; // multi-column keys do not map to a field reference
      const field = fk.to ?? primaryKeyOf(fk.table)[0];
      if (field) references.set(fk.from, { entity: entityNameOf(fk.table), field });
    }
    const fields: Record<string, FieldSpec> = {};
    for (const c of columns) {
      const keyColumnType = keyTypes.get(c.name);
      const type = keyColumnType ?? fieldTypeOfColumn(c.type);
      const ref = references.get(c.name);
      const size = type === 'decimal' ? /\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)/.exec(c.type) : null;
      fields[c.name] = {
        type,
        optional: false,
        nullable: keyColumnType === undefined && c.notnull === 0,
        ...(size ? { precision: Number(size[1]), scale: Number(size[2] ?? 0) } : {}),
        ...(ref ? { references: ref } : {}),
      };
    }
    let name = entityNameOf(table);
    for (let i = 2; usedNames.has(name); i++) name = `${entityNameOf(table).slice(0, 58)}_${i}`;
    usedNames.add(name);
    entities.push(
      buildSchema({ name, key, fields, source, table, ...(pk.length > 1 ? { keyFields: pk } : {}) }, 'introspected'),
    );
  }
  // Tables a Koan application created keep their exact declared schema in the meta table: an app (or the
  // CLI's --source) that does not declare them still finds them, with their real types.
  if (koanTables.size) {
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
      entities.push(Object.freeze({ ...schema, source }));
    }
  }
  return { entities, skipped, notData: [] };
}

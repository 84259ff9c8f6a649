/**
 * The SQLite structure facet: a backup captures SQLite's own DDL of the tables it holds (`sqlite_master`: tables,
 * indexes, views, triggers, each as the exact SQL SQLite keeps), their AUTOINCREMENT counters (`sqlite_sequence`)
 * and the database's `user_version`/`application_id`; a restore into SQLite replays it, so `.schema` of the copy
 * is the source's.
 *
 * Order. `.schema` lists objects in creation order (the rowid of `sqlite_master`). A restore creates the missing
 * tables, their indexes and the views in the source's order before any row (SQLite DDL is transactional, so this
 * happens inside the restore's transaction), and the triggers after the rows, so that they do not fire on restored
 * rows. A source whose triggers all come after its tables, indexes and views (the usual case) is copied in the same
 * order; otherwise only the triggers' places in `.schema` differ.
 *
 * Triggers of tables that already exist (made by the application or `sqlite3 .schema`) are dropped for the
 * restore and created again, as they were, before it commits: restored rows never fire them (an audit trigger would
 * add rows the archive already holds). They then come last in that database's `.schema`.
 */
import type { EntitySchema } from '@koan/data';
import {
  type DataWriter,
  type NativeStructure,
  physicalName,
  type StructureFacet,
  type StructureObject,
  type StructureTarget,
} from '@koan/data/adapter-kit';
import type Database from 'better-sqlite3';
import { tableColumns } from './sqlite-tables.js';
import { quoteIdent } from './sqlite-types.js';

/** A trigger dropped for the restore, created again by `finish`. */
export interface SuspendedTrigger {
  readonly name: string;
  readonly sql: string;
}

/** What the facet needs of the adapter. */
export interface StructureHost {
  /** The open database (created if it did not exist yet: replaying a structure writes). */
  db(write: boolean): Database.Database;
  /** Triggers suspended in the current transaction (kept between `createMissing` and `finish`). */
  suspended(): SuspendedTrigger[];
  /** Records a table Koan's application declared (`_koan_entities`), as `ensureEntity` does. */
  recordDeclared(entity: EntitySchema, physical: string): void;
}

interface MasterRow {
  type: 'table' | 'index' | 'view' | 'trigger';
  name: string;
  tbl_name: string;
  sql: string | null;
}

const PROVIDER = 'sqlite';

export class SqliteStructure implements StructureFacet {
  readonly #host: StructureHost;

  constructor(host: StructureHost) {
    this.#host = host;
  }

  async capture(targets: readonly StructureTarget[]): Promise<NativeStructure> {
    const db = this.#host.db(false);
    const tables = new Set(targets.map((t) => physicalName(t.entity, t.set)));
    const master = db
      .prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid')
      .safeIntegers(false)
      .all() as MasterRow[];
    const objects: StructureObject[] = [];
    const notCaptured: NativeStructure['notCaptured'][number][] = [];
    for (const row of master) {
      if (row.sql === null) continue; // automatic indexes of PRIMARY KEY and UNIQUE constraints
      if (row.type === 'table' && tables.has(row.name)) {
        const parents = (
          db.prepare(`SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`).pluck(true).all(row.name) as string[]
        ).filter((p) => p !== row.name);
        objects.push({
          kind: 'table',
          name: row.name,
          table: row.name,
          phase: 'pre-data',
          sql: [row.sql],
          ...(parents.length ? { requires: parents } : {}),
        });
      } else if (row.type === 'index' && tables.has(row.tbl_name))
        objects.push({ kind: 'index', name: row.name, table: row.tbl_name, phase: 'pre-data', sql: [row.sql] });
      else if (row.type === 'trigger' && tables.has(row.tbl_name))
        objects.push({ kind: 'trigger', name: row.name, table: row.tbl_name, phase: 'post-data', sql: [row.sql] });
      else if (row.type === 'view') {
        const reads = tablesRead(db, row.name);
        const missing = reads === undefined ? undefined : reads.filter((t) => !tables.has(t));
        if (missing && missing.length === 0)
          objects.push({
            kind: 'view',
            name: row.name,
            phase: 'pre-data',
            sql: [row.sql],
            ...(reads!.length ? { requires: reads } : {}),
          });
        else
          notCaptured.push({
            kind: 'view',
            name: row.name,
            reason:
              missing === undefined
                ? 'it cannot be prepared (it reads something that does not exist)'
                : `it reads ${missing.join(', ')}, which this backup does not hold`,
          });
      }
    }
    if (tables.size && hasSequences(db)) {
      const seqs = db.prepare('SELECT name, seq FROM sqlite_sequence').safeIntegers(true).all() as {
        name: string;
        seq: bigint;
      }[];
      for (const { name, seq } of seqs)
        if (tables.has(name))
          objects.push({
            kind: 'sequence',
            name,
            table: name,
            phase: 'post-data',
            // Set whether or not the restore's inserts made the counter's row already.
            sql: [
              `UPDATE sqlite_sequence SET seq = ${seq} WHERE name = ${sqlString(name)}`,
              `INSERT INTO sqlite_sequence (name, seq) SELECT ${sqlString(name)}, ${seq} WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ${sqlString(name)})`,
            ],
          });
    }
    for (const pragma of ['user_version', 'application_id']) {
      const value = db.pragma(pragma, { simple: true }) as number;
      if (value !== 0)
        objects.push({ kind: 'pragma', name: pragma, phase: 'post-data', sql: [`PRAGMA ${pragma} = ${value}`] });
    }
    const version = db.prepare('SELECT sqlite_version()').pluck(true).get() as string;
    return { provider: PROVIDER, serverVersion: `SQLite ${version}`, objects, notCaptured };
  }

  /** See `StructureFacet.unmetRequirements`: parents named by a captured table's foreign keys. */
  async unmetRequirements(
    structure: NativeStructure,
    targets: readonly StructureTarget[],
  ): Promise<{ target: StructureTarget; missing: string[] }[]> {
    const db = this.#host.db(false);
    const exists = (name: string) =>
      db.prepare('SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?').pluck(true).get('table', name) !==
      undefined;
    const written = new Set(targets.map((t) => physicalName(t.entity, t.set)));
    const out: { target: StructureTarget; missing: string[] }[] = [];
    for (const target of targets) {
      const table = physicalName(target.entity, target.set);
      if (exists(table)) continue; // an existing table is written as it is
      const object = structure.objects.find((o) => o.kind === 'table' && o.name === table);
      const missing = (object?.requires ?? []).filter((r) => !written.has(r) && !exists(r));
      if (missing.length) out.push({ target, missing });
    }
    return out;
  }

  /**
   * Creates the missing tables of `targets` as captured, with their indexes, and the captured views whose tables all
   * exist, in the source's order; suspends the triggers of target tables that exist (see the module comment).
   */
  async createMissing(
    _tx: DataWriter,
    structure: NativeStructure,
    targets: readonly StructureTarget[],
  ): Promise<string[]> {
    const db = this.#host.db(true);
    const byTable = new Map(targets.map((t) => [physicalName(t.entity, t.set), t.entity]));
    const exists = (name: string) =>
      db.prepare('SELECT 1 FROM sqlite_master WHERE name = ?').pluck(true).get(name) !== undefined;
    const existing = [...byTable.keys()].filter(exists);
    const created: string[] = [];
    for (const o of structure.objects) {
      if (o.phase !== 'pre-data') continue;
      if (o.kind === 'table' && byTable.has(o.name) && !existing.includes(o.name)) {
        for (const sql of o.sql) db.exec(sql);
        created.push(o.name);
        const entity = byTable.get(o.name)!;
        if (entity.origin === 'declared') this.#host.recordDeclared(entity, o.name);
      } else if (o.kind === 'index' && created.includes(o.table ?? '') && !exists(o.name)) {
        for (const sql of o.sql) db.exec(sql);
      } else if (o.kind === 'view' && created.length && !exists(o.name) && (o.requires ?? []).every(exists)) {
        for (const sql of o.sql) db.exec(sql);
      }
    }
    const suspended = this.#host.suspended();
    const triggers = db
      .prepare(
        `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (SELECT value FROM json_each(?)) ORDER BY rowid`,
      )
      .all(JSON.stringify(existing)) as SuspendedTrigger[];
    for (const t of triggers) {
      db.exec(`DROP TRIGGER ${quoteIdent(t.name)}`);
      suspended.push(t);
    }
    return created;
  }

  /**
   * After the rows: the triggers of the tables created (as captured) and of the tables that existed (as they were),
   * the captured AUTOINCREMENT counters of created tables and `user_version`/`application_id` of a database that had
   * none; then every AUTOINCREMENT counter of the targets at least past the largest restored id.
   */
  async finish(
    _tx: DataWriter,
    structure: NativeStructure | undefined,
    targets: readonly StructureTarget[],
    created: readonly string[],
  ): Promise<void> {
    const db = this.#host.db(true);
    const exists = (name: string) =>
      db.prepare('SELECT 1 FROM sqlite_master WHERE name = ?').pluck(true).get(name) !== undefined;
    for (const o of structure?.objects ?? []) {
      if (o.phase !== 'post-data') continue;
      if (o.kind === 'trigger' && created.includes(o.table ?? '') && !exists(o.name))
        for (const sql of o.sql) db.exec(sql);
      else if (o.kind === 'sequence' && created.includes(o.name)) for (const sql of o.sql) db.exec(sql);
      else if (o.kind === 'pragma' && created.length && db.pragma(o.name, { simple: true }) === 0)
        for (const sql of o.sql) db.exec(sql);
    }
    const suspended = this.#host.suspended();
    for (const t of suspended.splice(0)) db.exec(t.sql);
    if (!hasSequences(db)) return;
    for (const target of targets) advanceSequence(db, physicalName(target.entity, target.set));
  }
}

function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

function hasSequences(db: Database.Database): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'`).get() !== undefined;
}

/**
 * Sets the AUTOINCREMENT counter of `table` (if it has one) to at least its largest id. SQLite advances it on every
 * insert already; this also covers a counter row that is missing or was lowered.
 */
function advanceSequence(db: Database.Database, table: string): void {
  const sql = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`).pluck(true).get(table) as
    | string
    | undefined;
  if (!sql || !/\bAUTOINCREMENT\b/i.test(sql)) return;
  const key = tableColumns(db, table).find((c) => c.pk === 1 && c.type.toUpperCase() === 'INTEGER');
  if (!key) return;
  const max = db
    .prepare(`SELECT max(${quoteIdent(key.name)}) FROM ${quoteIdent(table)}`)
    .pluck(true)
    .safeIntegers(true)
    .get() as bigint | null;
  if (max === null) return;
  const seq = db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').pluck(true).safeIntegers(true).get(table) as
    | bigint
    | undefined;
  if (seq === undefined) db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)').run(table, max);
  else if (seq < max) db.prepare('UPDATE sqlite_sequence SET seq = ? WHERE name = ?').run(max, table);
}

/**
 * The tables a view reads, through the views it reads too (from the b-trees its query opens), or undefined when it
 * cannot be prepared.
 */
function tablesRead(db: Database.Database, view: string): string[] | undefined {
  let plan: { opcode: string; p2: number; p3: number }[];
  try {
    plan = db
      .prepare(`EXPLAIN SELECT * FROM ${quoteIdent(view)}`)
      .safeIntegers(false)
      .all() as typeof plan;
  } catch {
    return undefined;
  }
  const roots = new Set(plan.filter((op) => op.opcode === 'OpenRead' && op.p3 === 0).map((op) => op.p2));
  if (roots.size === 0) return [];
  const rows = db
    .prepare(`SELECT DISTINCT tbl_name FROM sqlite_master WHERE rootpage IN (SELECT value FROM json_each(?))`)
    .pluck(true)
    .all(JSON.stringify([...roots])) as string[];
  return rows.sort();
}

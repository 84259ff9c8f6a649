/**
 * The native structure of MariaDB/MySQL tables (see `StructureFacet`): backups capture each table's
 * `SHOW CREATE TABLE` (columns with their exact types, defaults, AUTO_INCREMENT and its counter, generated columns,
 * `ON UPDATE`, checks, keys, indexes, foreign keys, engine, charset, collation, comments) and the views that read only
 * those tables (`SHOW CREATE VIEW`); restores into the same kind of server replay them for the tables that do not
 * exist, so a copy's `SHOW CREATE TABLE` is the source's.
 *
 * DDL commits implicitly in MySQL, so tables are created on a pooled connection of their own (never the restore
 * transaction's), with `foreign_key_checks = 0` so a foreign key may name a table created after it; if the restore
 * fails, `discardCreated` drops them again. Triggers, procedures, functions, events and sequences are named in
 * `notCaptured`: triggers would fire while rows are restored, and the others are not part of a table.
 */
import { DataError } from '@koan/data';
import {
  type DataWriter,
  type NativeStructure,
  physicalName,
  type StructureFacet,
  type StructureObject,
  type StructureTarget,
} from '@koan/data/adapter-kit';
import type { PoolConnection } from 'mysql2/promise';
import { quoteId } from './mysql-types.js';

/** What the structure facet needs from its adapter. */
export interface StructureHost {
  /** A pooled connection with the adapter's session settings; the caller releases it. */
  acquire(): Promise<PoolConnection>;
  /** The connection of a writer of `transaction()`. */
  connectionOf(tx: DataWriter): PoolConnection;
  /** Whether the server is MariaDB (its DDL is not MySQL's). */
  mariadb(): boolean;
  /** Creates a table from the entity's field types (for a target the structure does not describe). */
  ensureEntity(entity: StructureTarget['entity'], set: string): Promise<void>;
}

type Row = unknown[];

async function query(conn: PoolConnection, sql: string, values: unknown[] = []): Promise<Row[]> {
  const [rows] = await conn.query({ sql, values, rowsAsArray: true });
  return rows as unknown as Row[];
}

/** Names of the tables and views of this database a view definition reads (`db`.`name` as information_schema spells them). */
function viewRequires(definition: string, database: string, known: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  const db = `\`${database.replaceAll('`', '``')}\`.`;
  for (const m of definition.matchAll(/`((?:[^`]|``)+)`\.`((?:[^`]|``)+)`/g)) {
    if (`\`${m[1]}\`.` !== db) continue;
    const name = m[2]!.replaceAll('``', '`');
    if (known.has(name)) out.add(name);
  }
  return [...out];
}

/** The objects a structure cannot recreate, named with why. */
async function notCaptured(conn: PoolConnection): Promise<NativeStructure['notCaptured']> {
  const out: { kind: string; name: string; reason: string }[] = [];
  for (const [name, table] of await query(
    conn,
    'SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY TRIGGER_NAME',
  ))
    out.push({
      kind: 'trigger',
      name: String(name),
      reason: `a trigger on ${String(table)}: not recreated (it would fire while rows are restored); recreate it after the restore`,
    });
  for (const [type, name] of await query(
    conn,
    'SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY ROUTINE_TYPE, ROUTINE_NAME',
  ))
    out.push({
      kind: String(type).toLowerCase(),
      name: String(name),
      reason: `a stored ${String(type).toLowerCase()}: not backed up; recreate it from its source (mysqldump --routines)`,
    });
  for (const [name] of await query(
    conn,
    'SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY EVENT_NAME',
  ))
    out.push({
      kind: 'event',
      name: String(name),
      reason: 'a scheduled event: not backed up; recreate it from its source (mysqldump --events)',
    });
  for (const [name] of await query(
    conn,
    "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'SEQUENCE' ORDER BY TABLE_NAME",
  ))
    out.push({
      kind: 'sequence',
      name: String(name),
      reason: 'a MariaDB sequence: its definition and current value are not backed up',
    });
  return out;
}

/** The captured `AUTO_INCREMENT=N` of a table's DDL (the counter the copy starts from), if any. */
export function capturedCounter(ddl: string): bigint | undefined {
  const m = /\)[^)]*\bAUTO_INCREMENT=(\d+)/.exec(ddl.slice(ddl.lastIndexOf('\n) ') + 1 || 0));
  return m ? BigInt(m[1]!) : undefined;
}

export class MysqlStructure implements StructureFacet {
  readonly #host: StructureHost;

  constructor(host: StructureHost) {
    this.#host = host;
  }

  async #withConnection<T>(fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
    const conn = await this.#host.acquire();
    try {
      return await fn(conn);
    } finally {
      conn.release();
    }
  }

  capture(targets: readonly StructureTarget[]): Promise<NativeStructure> {
    return this.#withConnection(async (conn) => {
      const [[version, database]] = (await query(conn, 'SELECT VERSION(), DATABASE()')) as [[string, string]];
      const kinds = new Map(
        (
          await query(
            conn,
            'SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()',
          )
        ).map(([n, t]) => [String(n), String(t)] as const),
      );
      const objects: StructureObject[] = [];
      const tables = [...new Set(targets.map((t) => physicalName(t.entity, t.set)))];
      for (const table of tables) {
        if (kinds.get(table) !== 'BASE TABLE') continue; // never created: nothing to capture
        const [[, ddl]] = (await query(conn, `SHOW CREATE TABLE ${quoteId(table)}`)) as [[string, string]];
        const parents = await query(
          conn,
          'SELECT DISTINCT REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ' +
            'AND REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME <> TABLE_NAME ORDER BY 1',
          [table],
        );
        const requires = parents.map(([p]) => String(p));
        objects.push({
          kind: 'table',
          name: table,
          table,
          phase: 'pre-data',
          sql: [ddl],
          ...(requires.length ? { requires } : {}),
        });
      }
      const views = await this.#views(
        conn,
        database,
        kinds,
        new Set(tables.filter((t) => kinds.get(t) === 'BASE TABLE')),
      );
      objects.push(...views.objects);
      return {
        provider: 'mysql',
        serverVersion: version,
        objects,
        notCaptured: [...views.left, ...(await notCaptured(conn))],
      };
    });
  }

  /**
   * The views that read only captured tables (or other such views), in an order that creates each after what it
   * reads; the others are named in `left`.
   */
  async #views(
    conn: PoolConnection,
    database: string,
    kinds: ReadonlyMap<string, string>,
    captured: ReadonlySet<string>,
  ): Promise<{ objects: StructureObject[]; left: NativeStructure['notCaptured'][number][] }> {
    const rows = await query(
      conn,
      'SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME',
    );
    const known = new Set(kinds.keys());
    const pending = new Map(rows.map(([n, d]) => [String(n), viewRequires(String(d), database, known)] as const));
    const ready = new Set(captured);
    const objects: StructureObject[] = [];
    for (let progress = true; progress; ) {
      progress = false;
      for (const [name, requires] of pending) {
        if (!requires.every((r) => ready.has(r))) continue;
        const [[, ddl]] = (await query(conn, `SHOW CREATE VIEW ${quoteId(name)}`)) as [[string, string]];
        objects.push({ kind: 'view', name, phase: 'pre-data', sql: [ddl], ...(requires.length ? { requires } : {}) });
        ready.add(name);
        pending.delete(name);
        progress = true;
      }
    }
    const left = [...pending].map(([name, requires]) => ({
      kind: 'view',
      name,
      reason: `it reads ${requires.filter((r) => !ready.has(r)).join(', ') || 'objects'} that the backup does not hold, so it is not recreated`,
    }));
    return { objects, left };
  }

  /** See `StructureFacet.unmetRequirements`: parents named by a captured table's foreign keys. */
  unmetRequirements(
    structure: NativeStructure,
    targets: readonly StructureTarget[],
  ): Promise<{ target: StructureTarget; missing: string[] }[]> {
    return this.#withConnection(async (conn) => {
      const existing = new Set(
        (await query(conn, 'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()')).map(
          ([n]) => String(n),
        ),
      );
      const written = new Set(targets.map((t) => physicalName(t.entity, t.set)));
      const out: { target: StructureTarget; missing: string[] }[] = [];
      for (const target of targets) {
        const table = physicalName(target.entity, target.set);
        if (existing.has(table)) continue; // an existing table is written as it is
        const object = structure.objects.find((o) => o.kind === 'table' && o.table === table);
        const missing = (object?.requires ?? []).filter((r) => !written.has(r) && !existing.has(r));
        if (missing.length) out.push({ target, missing });
      }
      return out;
    });
  }

  /** See `StructureFacet.createMissing`: on a connection of its own, with foreign-key checks off. */
  createMissing(_tx: DataWriter, structure: NativeStructure, targets: readonly StructureTarget[]): Promise<string[]> {
    return this.#withConnection(async (conn) => {
      const existing = new Set(
        (await query(conn, 'SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()')).map(
          ([n]) => String(n),
        ),
      );
      // MariaDB's DDL is not MySQL's (and the other way round): another server's tables come from their field types.
      const sameServer = /mariadb/i.test(structure.serverVersion ?? '') === this.#host.mariadb();
      const created: string[] = [];
      await conn.query('SET SESSION foreign_key_checks = 0');
      try {
        for (const { entity, set } of targets) {
          const table = physicalName(entity, set);
          if (existing.has(table) || created.includes(table)) continue;
          const object = sameServer
            ? structure.objects.find((o) => o.kind === 'table' && o.table === table)
            : undefined;
          if (object) await this.#run(conn, object);
          else await this.#host.ensureEntity(entity, set);
          created.push(table);
        }
        if (sameServer)
          for (const view of structure.objects.filter((o) => o.kind === 'view')) {
            if (existing.has(view.name)) continue;
            const present = (r: string) => existing.has(r) || created.includes(r);
            if (!(view.requires ?? []).every(present)) continue;
            await this.#run(conn, view);
            created.push(view.name);
          }
      } catch (e) {
        await this.#drop(conn, created).catch(() => undefined);
        throw e;
      } finally {
        await conn.query('SET SESSION foreign_key_checks = 1');
      }
      return created;
    });
  }

  async #run(conn: PoolConnection, object: StructureObject): Promise<void> {
    for (const sql of object.sql) {
      try {
        await conn.query(sql);
      } catch (e) {
        throw new DataError(
          'STRUCTURE_FAILED',
          `[mysql] Could not create ${object.kind} ${object.name} as the backup captured it: ${(e as Error).message}. Create it yourself (or restore without the structure) and restore again.`,
          { cause: e, details: { kind: object.kind, name: object.name } },
        );
      }
    }
  }

  /** Drops tables and views (names), children first, with foreign-key checks off. */
  async #drop(conn: PoolConnection, names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const views = new Set(
      (
        await query(
          conn,
          'SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?)',
          [names],
        )
      ).map(([n]) => String(n)),
    );
    for (const name of [...names].reverse())
      await conn.query(`DROP ${views.has(name) ? 'VIEW' : 'TABLE'} IF EXISTS ${quoteId(name)}`);
  }

  /**
   * See `StructureFacet.finish`. Everything was created before the rows (DDL cannot run inside the transaction), and
   * InnoDB moves an AUTO_INCREMENT counter past every id written explicitly, so this checks, on the transaction's
   * connection (which sees its rows), that each target table's counter is past its largest id and that a created
   * table's counter is at least the one captured. A counter that is not fails the restore naming the table.
   */
  async finish(
    tx: DataWriter,
    structure: NativeStructure | undefined,
    targets: readonly StructureTarget[],
    created: readonly string[],
  ): Promise<void> {
    const conn = this.#host.connectionOf(tx);
    // MySQL 8 caches information_schema statistics (AUTO_INCREMENT among them) for a day by default.
    if (!this.#host.mariadb())
      await conn.query('SET SESSION information_schema_stats_expiry = 0').catch(() => undefined);
    for (const table of [...new Set(targets.map((t) => physicalName(t.entity, t.set)))]) {
      const [column] = await query(
        conn,
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND EXTRA LIKE '%auto_increment%'",
        [table],
      );
      if (!column) continue;
      const [[counter]] = (await query(
        conn,
        'SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
        [table],
      )) as [[unknown]];
      const [[max]] = (await query(conn, `SELECT MAX(${quoteId(String(column[0]))}) FROM ${quoteId(table)}`)) as [
        [unknown],
      ];
      const next = counter === null ? undefined : BigInt(String(counter));
      const ddl = created.includes(table)
        ? structure?.objects.find((o) => o.kind === 'table' && o.table === table)?.sql[0]
        : undefined;
      const captured = ddl === undefined ? undefined : capturedCounter(ddl);
      const floor = max === null ? 1n : BigInt(String(max).split('.')[0]!) + 1n;
      const want = captured !== undefined && captured > floor ? captured : floor;
      if (next !== undefined && next < want)
        throw new DataError(
          'SEQUENCE_BEHIND',
          `[mysql] ${table}: its AUTO_INCREMENT counter is ${next} after the restore, not past the restored ids (it should be at least ${want}), so the next insert would collide. Run ALTER TABLE ${quoteId(table)} AUTO_INCREMENT = ${want} and restore again.`,
          { details: { table, counter: String(next), expected: String(want) } },
        );
    }
  }

  /** See `StructureFacet.discardCreated`: drops what `createMissing` made (views and tables, children first). */
  discardCreated(created: readonly string[]): Promise<void> {
    return this.#withConnection(async (conn) => {
      await conn.query('SET SESSION foreign_key_checks = 0');
      try {
        await this.#drop(conn, created);
      } finally {
        await conn.query('SET SESSION foreign_key_checks = 1');
      }
    });
  }
}

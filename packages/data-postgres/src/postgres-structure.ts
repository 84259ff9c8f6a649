/**
 * The PostgreSQL `StructureFacet`: a backup captures the native DDL of its tables (see `structure-capture.ts`); a
 * restore into PostgreSQL replays it inside the restore's own transaction (PostgreSQL DDL is transactional: a failed
 * restore leaves no table behind), then after the rows adds indexes, constraints, foreign keys, comments and views
 * of the tables it created, and advances every sequence feeding a restored table's columns past its values.
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
import type pg from 'pg';
import { TransactionSession } from './postgres-session.js';
import { type CaptureTable, captureStructure } from './structure-capture.js';
import { lit, q } from './type-mapping.js';

/** What the facet needs of its adapter. */
export interface StructureHost {
  readonly pool: pg.Pool;
  readonly schema: string;
}

const SHARED_KINDS = new Set(['schema', 'extension', 'type', 'domain', 'sequence']);

export class PostgresStructure implements StructureFacet {
  readonly #host: StructureHost;

  constructor(host: StructureHost) {
    this.#host = host;
  }

  /** The table of a target: its schema, name, and the key the captured objects carry for it. */
  #tableOf(target: StructureTarget): CaptureTable {
    const schema = target.entity.namespace ?? this.#host.schema;
    const table = physicalName(target.entity, target.set);
    return { schema, table, key: target.entity.namespace ? `${schema}.${table}` : table };
  }

  async capture(targets: readonly StructureTarget[]): Promise<NativeStructure> {
    const client = await this.#host.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      // Names in the default schema are captured unqualified (replayed into the target's), every other qualified.
      await client.query(`SET LOCAL search_path = ${q(this.#host.schema)}`);
      return await captureStructure(
        client,
        this.#host.schema,
        targets.map((t) => this.#tableOf(t)),
      );
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  /** See `StructureFacet.unmetRequirements`: parents named by the captured foreign keys of a table to create. */
  async unmetRequirements(
    structure: NativeStructure,
    targets: readonly StructureTarget[],
  ): Promise<{ target: StructureTarget; missing: string[] }[]> {
    const client = await this.#host.pool.connect();
    try {
      const written = new Set(targets.map((t) => this.#tableOf(t).key));
      const out: { target: StructureTarget; missing: string[] }[] = [];
      for (const target of targets) {
        const t = this.#tableOf(target);
        if (await exists(client, t)) continue; // an existing table is written as it is
        const missing: string[] = [];
        for (const o of structure.objects)
          if (o.kind === 'foreign-key' && o.table === t.key)
            for (const parent of o.requires ?? [])
              if (
                !written.has(parent) &&
                !missing.includes(parent) &&
                !(await allExist(client, [parent], this.#host.schema))
              )
                missing.push(parent);
        if (missing.length) out.push({ target, missing });
      }
      return out;
    } finally {
      client.release();
    }
  }

  async createMissing(
    tx: DataWriter,
    structure: NativeStructure,
    targets: readonly StructureTarget[],
  ): Promise<string[]> {
    return withReplay(tx, this.#host.schema, async (client) => {
      const missing: CaptureTable[] = [];
      for (const target of targets) {
        const t = this.#tableOf(target);
        if (!(await exists(client, t)) && structure.objects.some((o) => o.kind === 'table' && o.table === t.key))
          missing.push(t);
      }
      if (missing.length === 0) return [];
      const keys = new Set(missing.map((t) => t.key));
      if (this.#host.schema !== 'public') await client.query(`CREATE SCHEMA IF NOT EXISTS ${q(this.#host.schema)}`);
      // Shared objects are created where they do not exist (each statement checks); those of one table with it.
      for (const o of structure.objects)
        if (o.phase === 'pre-data' && (o.table === undefined ? SHARED_KINDS.has(o.kind) : keys.has(o.table)))
          await run(client, o);
      return missing.map((t) => `${t.schema}.${t.table}`);
    });
  }

  async finish(
    tx: DataWriter,
    structure: NativeStructure | undefined,
    targets: readonly StructureTarget[],
    created: readonly string[],
  ): Promise<void> {
    const tables = targets.map((t) => this.#tableOf(t));
    await withReplay(tx, this.#host.schema, async (client) => {
      if (structure && created.length) {
        const made = new Set(tables.filter((t) => created.includes(`${t.schema}.${t.table}`)).map((t) => t.key));
        for (const o of structure.objects) {
          if (o.phase !== 'post-data') continue;
          if (o.kind === 'view' || o.kind === 'materialized view') {
            // A view over the tables this restore made, once every table it reads exists.
            const reads = o.requires ?? [];
            if (reads.some((k) => made.has(k)) && (await allExist(client, reads, this.#host.schema)))
              await run(client, o);
          } else if (o.table !== undefined ? made.has(o.table) : o.kind === 'sequence-value') {
            // Checked before anything was written (unmetRequirements): a parent missing now is never skipped silently.
            if (o.kind === 'foreign-key' && !(await allExist(client, o.requires ?? [], this.#host.schema)))
              throw new DataError(
                'STRUCTURE_FAILED',
                `[postgres] the foreign key ${o.name} of ${o.table} names ${(o.requires ?? []).join(', ')}, which the target does not have: it cannot be recreated as captured.`,
                { details: { kind: o.kind, name: o.name, table: o.table, requires: o.requires } },
              );
            await run(client, o);
          }
        }
      }
      for (const t of tables) await advanceSequences(client, t);
    });
  }
}

/**
 * Runs `fn` on the restore transaction's client with the search path the captured DDL expects (the target's schema
 * alone), restoring the session's own search path afterwards.
 */
async function withReplay<T>(tx: DataWriter, schema: string, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  if (!(tx instanceof TransactionSession))
    throw new DataError(
      'UNSUPPORTED_OPERATION',
      '[postgres] the structure of a restore is replayed inside a transaction of this adapter (adapter.transaction)',
    );
  return tx.withClient(async (client) => {
    const saved = (await client.query<{ p: string }>('SELECT current_setting($1) AS p', ['search_path'])).rows[0]!.p;
    await client.query(`SET LOCAL search_path = ${q(schema)}`);
    try {
      return await fn(client);
    } finally {
      await client.query('SELECT set_config($1, $2, true)', ['search_path', saved]);
    }
  });
}

async function run(client: pg.ClientBase, o: StructureObject): Promise<void> {
  for (const sql of o.sql)
    try {
      await client.query(sql);
    } catch (e) {
      throw new DataError(
        'STRUCTURE_FAILED',
        `[postgres] recreating ${o.kind} ${o.name}${o.table ? ` of ${o.table}` : ''} failed: ${(e as Error).message}. Statement: ${sql.slice(0, 300)}`,
        { cause: e, details: { kind: o.kind, name: o.name, table: o.table, sql } },
      );
    }
}

async function exists(client: pg.ClientBase, t: { schema: string; table: string }): Promise<boolean> {
  const res = await client.query('SELECT to_regclass($1) IS NOT NULL AS e', [`${q(t.schema)}.${q(t.table)}`]);
  return res.rows[0]?.e === true;
}

/** Whether every table key (`table` in the default schema, `schema.table` elsewhere) names an existing table. */
async function allExist(client: pg.ClientBase, keys: readonly string[], schema: string): Promise<boolean> {
  for (const key of keys) {
    const dot = key.indexOf('.');
    // A key holds a schema only when the table is outside the default one; table names may hold dots themselves.
    const inDefault = await exists(client, { schema, table: key });
    if (inDefault) continue;
    if (dot < 0 || !(await exists(client, { schema: key.slice(0, dot), table: key.slice(dot + 1) }))) return false;
  }
  return true;
}

/**
 * Every sequence feeding a column of the table (serial and identity sequences it owns, sequences its defaults call)
 * is moved to at least the column's largest value, so the application's next insert with a default id does not
 * collide. Never backwards, never past the sequence's maximum; descending sequences are left alone.
 */
async function advanceSequences(client: pg.ClientBase, t: { schema: string; table: string }): Promise<void> {
  const table = `${q(t.schema)}.${q(t.table)}`;
  const res = await client.query<{ seq: string; col: string; max: string }>(
    `WITH rel AS (SELECT to_regclass($1) AS oid)
     SELECT DISTINCT s.oid::regclass::text AS seq, a.attname AS col, sq.seqmax::text AS max
     FROM rel, pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
     JOIN pg_sequence sq ON sq.seqrelid = s.oid AND sq.seqincrement > 0
     JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = rel.oid
       AND d.deptype IN ('a', 'i') AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype)
     UNION
     SELECT DISTINCT s.oid::regclass::text, a.attname, sq.seqmax::text
     FROM rel, pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
     JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
     JOIN pg_sequence sq ON sq.seqrelid = s.oid AND sq.seqincrement > 0
     JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
     WHERE ad.adrelid = rel.oid AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype)`,
    [table],
  );
  for (const r of res.rows)
    await client.query(
      `SELECT pg_catalog.setval(${lit(r.seq)}, m.v::bigint, true)
       FROM (SELECT max(${q(r.col)})::numeric AS v FROM ${table}) m, ${r.seq} s
       WHERE m.v IS NOT NULL AND m.v <= ${r.max} AND (s.last_value < m.v OR (NOT s.is_called AND s.last_value <= m.v))`,
    );
}

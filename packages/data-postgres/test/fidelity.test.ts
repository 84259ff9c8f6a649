/**
 * PG→PG fidelity of a database no code of this project describes (see fidelity-schema.ts): backed up with
 * introspection through the library, restored into an empty database and into a schema made by `pg_dump -s` of the
 * source, and compared with native tools only: `pg_dump --schema-only` (the diff is empty), the md5 of each table's
 * sorted row texts, row counts, and an insert with a default id into every serial/identity table.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DataRuntime, registeredEntities, type SourceConfig, unregisterEntity } from '@koan/data';
import { probeService, serviceUrls } from '@koan/data/testing';
import { BackupContext, BackupDiscoveryService, backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIDELITY_DATA, FIDELITY_SCHEMA } from './fidelity-schema.js';

const run = promisify(execFile);
const tag = randomBytes(4).toString('hex');
const databases: string[] = [];
const urlOf = (db: string) => {
  const url = new URL(serviceUrls.postgres);
  url.pathname = `/${db}`;
  return url.toString();
};

async function query<R extends pg.QueryResultRow>(db: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: db.includes('://') ? db : urlOf(db) });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function createDatabase(label: string): Promise<string> {
  const name = `koan_fid_${label}_${tag}`;
  await query(serviceUrls.postgres, `CREATE DATABASE ${name}`);
  databases.push(name);
  return name;
}

async function psql(db: string, sql: string): Promise<void> {
  const child = run('psql', ['-q', '-X', '-v', 'ON_ERROR_STOP=1', '-d', urlOf(db)], { maxBuffer: 1 << 24 });
  child.child.stdin!.end(sql);
  await child;
}

/** `pg_dump --schema-only` without the lines that differ between any two dumps (the restrict key). */
async function schemaDump(db: string): Promise<string> {
  const { stdout } = await run('pg_dump', ['--schema-only', '-d', urlOf(db)], { maxBuffer: 1 << 26 });
  return stdout
    .split('\n')
    .filter((line) => !/^\\(un)?restrict /.test(line))
    .join('\n');
}

/** Every table (partitions included) with its row count and the md5 of its sorted row texts. */
async function tableDigests(db: string): Promise<Record<string, string>> {
  const tables = await query<{ name: string }>(
    db,
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
     ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    const [row] = await query<{ n: string; md5: string | null }>(
      db,
      `SELECT count(*) AS n, md5(string_agg(t::text, E'\\n' ORDER BY t::text)) AS md5 FROM ONLY ${name} t`,
    );
    out[name] = `${row!.n} ${row!.md5}`;
  }
  return out;
}

/** An insert with default ids into every table fed by a sequence: none collides with a restored row. */
async function insertWithDefaultIds(db: string): Promise<void> {
  await psql(
    db,
    `INSERT INTO people (name) VALUES ('new');
     INSERT INTO items_always (label) VALUES ('new');
     INSERT INTO items_default (label) VALUES ('new');
     INSERT INTO billing.invoice (person_id) VALUES (1);`,
  );
}

function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}

async function contextFor(sources: Record<string, SourceConfig>, dir: string): Promise<BackupContext> {
  const runtime = new DataRuntime({ sources, cwd: dir });
  const storage = await StorageProfiles.load(
    { defaultProfile: 'local', profiles: { local: { provider: 'local', settings: { root: join(dir, 'backups') } } } },
    { cwd: dir },
  );
  return new BackupContext({ runtime, storage });
}

const source = (db: string): SourceConfig => ({
  provider: 'postgres',
  settings: { connectionString: urlOf(db), poolSize: 2 },
});

const unavailable = await probeService('postgres', () => query(serviceUrls.postgres, 'SELECT 1').then(() => undefined));

describe('PostgreSQL to PostgreSQL: an existing database comes back identical', () => {
  const dir = mkdtempSync(join(tmpdir(), 'koan-pg-fidelity-'));
  let src = '';
  let sourceDump = '';
  let sourceDigests: Record<string, string> = {};
  let backup: Awaited<ReturnType<typeof backupAllEntities>> | undefined;
  let validation: { isValid: boolean; issues: readonly string[] } | undefined;

  beforeAll(async () => {
    if (unavailable) return;
    src = await createDatabase('src');
    await psql(src, FIDELITY_SCHEMA + FIDELITY_DATA);
    sourceDump = await schemaDump(src);
    // The comparison is not vacuous: the dump holds the source's structure.
    for (const part of [
      'CREATE TABLE public.people',
      'EXCLUDE USING gist',
      'ATTACH PARTITION',
      'GENERATED ALWAYS AS IDENTITY',
    ])
      expect(sourceDump).toContain(part);
    sourceDigests = await tableDigests(src);
    const context = await contextFor({ src: source(src) }, dir);
    try {
      forgetIntrospected();
      backup = await backupAllEntities(context, 'fidelity', { introspect: true });
      validation = await new BackupDiscoveryService(context).validateBackup(backup.id);
    } finally {
      forgetIntrospected();
      await context.close();
    }
  }, 120_000);

  afterAll(async () => {
    forgetIntrospected();
    rmSync(dir, { recursive: true, force: true });
    for (const db of databases)
      await query(serviceUrls.postgres, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  });

  async function restoreInto(db: string) {
    const context = await contextFor({ tgt: source(db) }, dir);
    try {
      forgetIntrospected();
      return await restoreAllEntities(context, 'fidelity', { targetSource: 'tgt' });
    } finally {
      forgetIntrospected();
      await context.close();
    }
  }

  it('backs up every table (keyless, partitioned and non-public ones included); nothing of this schema is omitted', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    expect(backup!.status).toBe('Completed');
    const names = backup!.entities.map((e) => e.entityType).sort();
    expect(names).toEqual(
      [
        'a_side',
        'b_side',
        'bookings',
        'cache_entries',
        'billing_invoice',
        'billing_line',
        'by_big',
        'by_date',
        'by_numeric',
        'events_log',
        'items_always',
        'items_default',
        'measurements',
        'people',
        'special_times',
      ].sort(),
    );
    expect(backup!.entities.every((e) => e.status === 'Completed')).toBe(true);
    // No function, trigger, policy, grant or foreign owner here: the captured structure recreates everything. What
    // the manifest names as omitted is what holds no data of its own (the view, the materialized view, partitions).
    expect(new Set((backup!.omitted ?? []).map((o) => o.kind))).toEqual(
      new Set(['view', 'materialized view', 'partition']),
    );
    expect((backup!.omitted ?? []).map((o) => o.name).sort()).toEqual([
      'adults',
      'invoice_totals',
      'measurements_2023',
      'measurements_rest',
      'measurements_rest_1',
      'measurements_rest_other',
    ]);
    // The archive passes deep validation: every line decodes (int8 keys, special datetimes, json text...).
    expect(validation?.issues).toEqual([]);
    expect(validation?.isValid).toBe(true);
  });

  it('restored into an empty database: empty pg_dump --schema-only diff, identical rows, default ids insert', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const tgt = await createDatabase('empty');
    const report = await restoreInto(tgt);
    expect(report.entities.filter((e) => e.status !== 'Restored').map((e) => [e.entityType, e.error])).toEqual([]);
    expect(await schemaDump(tgt)).toBe(sourceDump);
    expect(await tableDigests(tgt)).toEqual(sourceDigests);
    await insertWithDefaultIds(tgt);
    expect(await query(tgt, 'SELECT count(*)::int AS n FROM invoice_totals')).toEqual([{ n: 2 }]);
    // A standalone sequence the application calls itself goes on where the source's was.
    expect(await query(tgt, `SELECT nextval('billing.receipt_no')::int AS n`)).toEqual([{ n: 3 }]);
  });

  it('restored into the schema pg_dump -s made of the source: identical rows, default ids insert', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const tgt = await createDatabase('dumped');
    await psql(tgt, sourceDump);
    const report = await restoreInto(tgt);
    expect(report.entities.filter((e) => e.status !== 'Restored').map((e) => [e.entityType, e.error])).toEqual([]);
    expect(await schemaDump(tgt)).toBe(sourceDump);
    const digests = await tableDigests(tgt);
    expect(digests).toEqual(sourceDigests);
    await insertWithDefaultIds(tgt);
  });
});

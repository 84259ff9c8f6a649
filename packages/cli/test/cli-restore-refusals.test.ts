/**
 * `koan-backup restore` refuses, before writing anything, what it cannot do faithfully, and does not claim a complete
 * restore it did not do:
 * - two archived tables that would land in one target table (`TARGET_COLLISION`, exit 3);
 * - an existing table without a column for an archived field (`SCHEMA_INCOMPATIBLE`, exit 3; --lenient drops it, said);
 * - a merge into a table without a primary key that holds rows (exit 3, the hint naming --replace / --mode insert);
 * - a PartiallyCompleted backup restores `PartiallyCompleted`, exit 1, naming what the archive lacks.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, registeredEntities, t, unregisterEntity } from '@koan/data';
import { probeService, serviceUrls } from '@koan/data/testing';
import type { RestoreReport } from '@koan/data-backup';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

let dir: string;
const run = (argv: string[]) => runIn(dir, argv);

function sqlite(file: string, sql: string): void {
  const db = new Database(join(dir, file));
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

function sqliteRows(file: string, sql: string): unknown[] {
  const db = new Database(join(dir, file), { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-refusals-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: { crApp: { provider: 'sqlite', settings: { path: 'app.sqlite' } } } },
        Storage: {
          DefaultProfile: 'local',
          Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } },
        },
      },
    }),
  );
});

afterAll(() => {
  forgetIntrospected();
  rmSync(dir, { recursive: true, force: true });
});

describe('restore --target-source: two archived tables into one target table', () => {
  it('PostgreSQL public.orders and sales.orders into SQLite: exit 3, TARGET_COLLISION naming both; --entity restores one', async (ctx) => {
    const skip = await probeService('postgres', async () => {
      const c = new pg.Client({ connectionString: serviceUrls.postgres, connectionTimeoutMillis: 3000 });
      await c.connect();
      await c.end();
    });
    if (skip) return ctx.skip(skip);
    const name = `koan_cli_collide_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: serviceUrls.postgres });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(serviceUrls.postgres);
    url.pathname = `/${name}`;
    try {
      const db = new pg.Client({ connectionString: url.href });
      await db.connect();
      await db.query(`
        CREATE SCHEMA sales;
        CREATE TABLE public.orders (id integer PRIMARY KEY, v text NOT NULL);
        INSERT INTO public.orders VALUES (1, 'public-1');
        CREATE TABLE sales.orders (id integer PRIMARY KEY, v text NOT NULL);
        INSERT INTO sales.orders VALUES (1, 'sales-1');
      `);
      await db.end();
      const backup = await run(['backup', 'collide', '--source', url.href]);
      expect(backup.code, backup.stderr).toBe(0);
      const target = join(dir, 'collide.sqlite');
      const r = await run(['restore', 'collide', '--target-source', `sqlite:${target}`]);
      expect(r.code, r.stdout + r.stderr).toBe(3);
      expect(r.stderr).toMatch(/^Error \[TARGET_COLLISION\]: Nothing was restored/);
      expect(r.stderr).toContain(
        'orders@root (cli: orders) and sales_orders@root (cli: sales.orders) -> table orders of target',
      );
      expect(r.stderr).toMatch(/Hint: .*--entity.*--target-set.*--target-source/);
      const json = await run(['restore', 'collide', '--target-source', `sqlite:${target}`, '--json']);
      expect(json.code).toBe(3);
      expect(json.json()).toMatchObject({
        error: {
          code: 'TARGET_COLLISION',
          exitCode: 3,
          details: { collisions: [{ source: 'target', location: 'orders' }] },
        },
      });
      // Nothing written: not even the database file.
      expect(existsSync(target)).toBe(false);
      const one = await run(['restore', 'collide', '--target-source', `sqlite:${target}`, '--entity', 'sales_orders']);
      expect(one.code, one.stderr).toBe(0);
      expect(sqliteRows('collide.sqlite', 'SELECT id, v FROM orders')).toEqual([{ id: 1, v: 'sales-1' }]);
    } finally {
      forgetIntrospected();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});

describe('restore into an existing table without a column for an archived field', () => {
  it('exits 3 naming the entity, the field and the fix; --lenient drops it, says so, exits 0', async () => {
    sqlite(
      'cols.sqlite',
      "CREATE TABLE cr_note (id INTEGER PRIMARY KEY, title TEXT NOT NULL, note TEXT); INSERT INTO cr_note VALUES (1, 'a', 'first');",
    );
    expect((await run(['backup', 'cols', '--source', join(dir, 'cols.sqlite')])).code).toBe(0);
    forgetIntrospected();
    // The application's migrations made the table anew, without `note`.
    sqlite('cols-target.sqlite', 'CREATE TABLE cr_note (id INTEGER PRIMARY KEY, title TEXT NOT NULL);');
    const args = ['restore', 'cols', '--target-source', `sqlite:${join(dir, 'cols-target.sqlite')}`];
    const r = await run(args);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/^Error \[SCHEMA_INCOMPATIBLE\]: /);
    expect(r.stderr).toContain(
      'cr_note@root: the existing table cr_note of target has no column for the archived field note',
    );
    expect(r.stderr).toMatch(/Hint: .*--lenient/);
    expect(sqliteRows('cols-target.sqlite', 'SELECT count(*) AS n FROM cr_note')).toEqual([{ n: 0 }]);
    const lenient = await run([...args, '--lenient']);
    expect(lenient.code, lenient.stderr).toBe(0);
    expect(lenient.stdout).toContain(
      'note: cr_note@root: the existing table has no column for note: its archived values were not restored (--lenient)',
    );
    expect(lenient.stderr).toMatch(/^Warning: cr_note@root: the existing table has no column for note/m);
    expect(sqliteRows('cols-target.sqlite', 'SELECT id, title FROM cr_note')).toEqual([{ id: 1, title: 'a' }]);
    const json = await run([...args, '--lenient', '--json']);
    expect(json.json<RestoreReport>().entities).toMatchObject([{ droppedFields: ['note'], missingColumns: ['note'] }]);
  });
});

describe('restore merging into a table without a primary key', () => {
  it('exits 3 with a hint naming --replace and --mode insert, not --lenient', async () => {
    sqlite(
      'logs.sqlite',
      "CREATE TABLE cr_log (at TEXT NOT NULL, msg TEXT NOT NULL); INSERT INTO cr_log VALUES ('t1', 'a'), ('t2', 'b');",
    );
    expect((await run(['backup', 'logs', '--source', join(dir, 'logs.sqlite')])).code).toBe(0);
    forgetIntrospected();
    const args = ['restore', 'logs', '--target-source', `sqlite:${join(dir, 'logs.sqlite')}`];
    const r = await run(args);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toContain('cr_log@root has no primary key and already holds rows');
    const hint = /^Hint: (.*)$/m.exec(r.stderr)?.[1] ?? '';
    expect(hint).toContain('--replace');
    expect(hint).toContain('--mode insert');
    expect(hint).not.toContain('--lenient');
    expect(r.stderr).not.toContain('--lenient');
    const json = await run([...args, '--json']);
    expect(json.json()).toMatchObject({
      error: { code: 'SCHEMA_INCOMPATIBLE', details: { keylessMerge: [{ entity: 'cr_log', set: 'root' }] } },
    });
    // What the hint says works.
    const appended = await run([...args, '--mode', 'insert']);
    expect(appended.code, appended.stderr).toBe(0);
    expect(sqliteRows('logs.sqlite', 'SELECT count(*) AS n FROM cr_log')).toEqual([{ n: 4 }]);
    const replaced = await run([...args, '--replace', '--yes']);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(sqliteRows('logs.sqlite', 'SELECT count(*) AS n FROM cr_log')).toEqual([{ n: 2 }]);
  });
});

describe('restore of a PartiallyCompleted backup', () => {
  beforeAll(() => {
    defineEntity({ name: 'CrOk', key: 'id', source: 'crApp', fields: { id: t.integer(), v: t.string() } });
    // Its table lacks a declared column: backing it up fails, the other entity is backed up.
    defineEntity({ name: 'CrBroken', key: 'id', source: 'crApp', fields: { id: t.integer(), v: t.string() } });
    sqlite(
      'app.sqlite',
      "CREATE TABLE CrOk (id INTEGER PRIMARY KEY, v TEXT NOT NULL); INSERT INTO CrOk VALUES (1, 'x'); CREATE TABLE CrBroken (id INTEGER PRIMARY KEY);",
    );
  });
  afterAll(() => {
    unregisterEntity('CrOk');
    unregisterEntity('CrBroken');
  });

  it('is PartiallyCompleted and exits 1, naming what the archive lacks and how to restore the rest', async () => {
    const backup = await run(['backup', 'part', '--json']);
    expect(backup.code).toBe(1);
    const id = backup.json<{ id: string }>().id;
    const json = await run(['restore', 'part', '--backup-id', id, '--json']);
    expect(json.code, json.stderr).toBe(1);
    const report = json.json<RestoreReport>();
    expect(report.status).toBe('PartiallyCompleted');
    expect(report.backupStatus).toBe('PartiallyCompleted');
    expect(report.notInArchive).toEqual([
      { entity: 'CrBroken', set: 'root', reason: expect.stringMatching(/failed during the backup/) },
    ]);
    const human = await run(['restore', 'part', '--backup-id', id]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      /^Partially restored part .*\nstatus: PartiallyCompleted \(1 of 2 entity sets not in the archive: the backup is PartiallyCompleted\)/,
    );
    expect(human.stderr).toMatch(
      /^Warning: Restore of part \(.*\) is PartiallyCompleted: 1 of 2 entity sets is not in the archive .*CLI --exclude-entity CrBroken/m,
    );
    const rest = await run(['restore', 'part', '--backup-id', id, '--exclude-entity', 'CrBroken', '--json']);
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.json<RestoreReport>().status).toBe('Completed');
  });
});

/**
 * The CLI says so loudly: a table of a `--source` database that cannot be backed up fails the backup (exit 3) until it
 * is excluded, and what a backup leaves out is shown by `backup`, `inspect` and `entities`; composite-key tables of a
 * `--source` backup restore into an empty database (the library's restore-target rule, no copy in the CLI); a restore
 * that leaves entity sets failed exits 1 with its status in the report.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { probeService, serviceUrls } from '@koan/data/testing';
import type { RestoreReport } from '@koan/data-backup';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreSummary } from '../src/_render.js';
import { runIn } from './run-cli.js';

let dir: string;
let legacy: string;

const run = (argv: string[]) => runIn(dir, argv);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-trust-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: { app: { provider: 'sqlite', settings: { path: 'app.sqlite' } } } },
        Storage: {
          DefaultProfile: 'local',
          Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } },
        },
      },
    }),
  );
  legacy = join(dir, 'legacy.sqlite');
  const db = new Database(legacy);
  db.exec(`
    CREATE TABLE ct_track (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
    INSERT INTO ct_track VALUES (1, 'One'), (2, 'Two'), (3, 'Three');
    CREATE TABLE ct_playlist (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    INSERT INTO ct_playlist VALUES (1, 'Morning'), (2, 'Evening');
    CREATE TABLE ct_playlist_track (
      playlist_id INTEGER NOT NULL REFERENCES ct_playlist(id),
      track_id INTEGER NOT NULL REFERENCES ct_track(id),
      PRIMARY KEY (playlist_id, track_id)
    );
    INSERT INTO ct_playlist_track VALUES (1, 1), (1, 2), (2, 2), (2, 3);
    CREATE TABLE ct_legacy (id INTEGER PRIMARY KEY, v TEXT);
    INSERT INTO ct_legacy VALUES (1, 'left by an old Koan version');
    CREATE TABLE _koan_entities (physical TEXT NOT NULL PRIMARY KEY, entity TEXT NOT NULL, schema TEXT NOT NULL);
    INSERT INTO _koan_entities VALUES ('ct_legacy', 'ct_legacy', '{ not json');
  `);
  db.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('koan-backup: nothing is left out silently', () => {
  it('backup --source fails (exit 3) naming a table that cannot be backed up, why, and how to exclude it; nothing is recorded', async () => {
    const r = await run(['backup', 'legacy', '--source', legacy]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Error \[TABLES_NOT_BACKED_UP\]: 1 table cannot be backed up, so nothing was/);
    expect(r.stderr).toMatch(/- ct_legacy \(source cli\): _koan_entities holds an unreadable schema for it/);
    expect(r.stderr).toContain('--exclude-entity ct_legacy');
    const json = await run(['backup', 'legacy', '--source', legacy, '--json']);
    expect(json.json()).toMatchObject({
      error: {
        code: 'TABLES_NOT_BACKED_UP',
        exitCode: 3,
        details: { tables: [{ source: 'cli', table: 'ct_legacy' }] },
      },
    });
    expect((await run(['list', '--json'])).json<{ totalCount: number }>().totalCount).toBe(0);
  });

  it('entities --source lists the tables it cannot back up with why, in text and JSON', async () => {
    const r = await run(['entities', '--source', legacy]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ct_playlist_track\s+cli\s+sqlite\s+playlist_id \+ track_id \(integer\)/);
    expect(r.stdout).toContain(
      'Cannot be backed up (1): a backup fails naming it unless excluded with --exclude-entity',
    );
    expect(r.stdout).toMatch(/ct_legacy\s+cli\s+_koan_entities holds an unreadable schema/);
    const json = await run(['entities', '--source', legacy, '--json']);
    expect(json.json()).toMatchObject({
      skipped: [{ source: 'cli', table: 'ct_legacy', reason: expect.stringContaining('unreadable') }],
      notData: [],
    });
  });

  it('with --exclude-entity the backup goes on; backup, its --json and inspect say what was left out and why', async () => {
    const r = await run(['backup', 'legacy', '--source', legacy, '--exclude-entity', 'CT_LEGACY']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /Not in this backup: 1 object of the sources \(table: 1\), each named with why by `koan-backup inspect [0-9a-f-]{36}`/,
    );
    const inspect = await run(['inspect', 'legacy']);
    expect(inspect.stdout).toContain('Not in this backup (1): left out on request, not selected, or not data');
    expect(inspect.stdout).toMatch(
      /cli\s+ct_legacy\s+table\s+excluded on request \(excludeEntityTypes\); _koan_entities holds/,
    );
    const json = await run(['inspect', 'legacy', '--json']);
    expect(json.json<{ backup: { omitted: unknown[] } }>().backup.omitted).toEqual([
      { source: 'cli', name: 'ct_legacy', kind: 'table', reason: expect.stringMatching(/^excluded on request/) },
    ]);
  });
});

describe('koan-backup backup: a partial backup exits 1', () => {
  beforeAll(() => {
    defineEntity({ name: 'CtOk', key: 'id', source: 'app', fields: { id: t.integer(), v: t.string() } });
    // Its table lacks a declared column: backing it up fails (SCHEMA_MISMATCH), the other entity is backed up.
    defineEntity({ name: 'CtBroken', key: 'id', source: 'app', fields: { id: t.integer(), v: t.string() } });
    const db = new Database(join(dir, 'app.sqlite'));
    db.exec('CREATE TABLE CtBroken (id INTEGER PRIMARY KEY); INSERT INTO CtBroken VALUES (1);');
    db.close();
  });
  afterAll(() => {
    unregisterEntity('CtOk');
    unregisterEntity('CtBroken');
  });

  it('publishes the PartiallyCompleted backup, says which entity failed and why, and exits 1', async () => {
    const r = await run(['backup', 'part', '--json']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.json<{ status: string }>().status).toBe('PartiallyCompleted');
    const human = await run(['backup', 'part']);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain('Backup part finished with failures');
    expect(human.stderr).toMatch(
      /^Warning: Backup part is PartiallyCompleted: 1 of 2 entity sets failed \(CtBroken@root: .*lacks column/m,
    );
  });
});

describe('koan-backup restore: one path, and an exit code that tells the truth', () => {
  it('restores a composite-key table of a --source backup into an empty database (it failed with "the key changed")', async () => {
    const target = join(dir, 'restored.sqlite');
    const r = await run(['restore', 'legacy', '--target-source', `sqlite:${target}`, '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const report = r.json<RestoreReport>();
    expect(report.status).toBe('Completed');
    expect(report.entities.map((e) => [e.entityType, e.status, e.inserted]).sort()).toEqual([
      ['ct_playlist', 'Restored', 2],
      ['ct_playlist_track', 'Restored', 4],
      ['ct_track', 'Restored', 3],
    ]);
    const db = new Database(target, { readonly: true });
    try {
      const pk = db.prepare("SELECT name FROM pragma_table_info('ct_playlist_track') WHERE pk > 0 ORDER BY pk").all();
      expect(pk).toEqual([{ name: 'playlist_id' }, { name: 'track_id' }]);
      expect(db.prepare('SELECT count(*) AS n FROM ct_playlist_track').get()).toEqual({ n: 4 });
    } finally {
      db.close();
    }
    const human = await run(['restore', 'legacy', '--target-source', `sqlite:${target}`]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^Restored legacy .*\nstatus: Completed\n/);
  });

  it('restores it into a scratch PostgreSQL database the same way, by URL', async (ctx) => {
    const skip = await probeService('postgres', async () => {
      const c = new pg.Client({ connectionString: serviceUrls.postgres, connectionTimeoutMillis: 3000 });
      await c.connect();
      await c.end();
    });
    if (skip) return ctx.skip(skip);
    const name = `koan_cli_trust_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: serviceUrls.postgres });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(serviceUrls.postgres);
    url.pathname = `/${name}`;
    try {
      const r = await run(['restore', 'legacy', '--target-source', url.href, '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.json<RestoreReport>().status).toBe('Completed');
      const db = new pg.Client({ connectionString: url.href });
      await db.connect();
      try {
        const key = await db.query(
          `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = 'ct_playlist_track'::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
        );
        expect(key.rows.map((row) => row.attname)).toEqual(['playlist_id', 'track_id']);
        expect((await db.query('SELECT count(*)::int AS n FROM ct_playlist_track')).rows).toEqual([{ n: 4 }]);
      } finally {
        await db.end();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  describe('with --lenient and an entity whose drift cannot be bridged', () => {
    // The app declares ct_track with a new required field: the archived rows cannot fill it.
    beforeAll(() => {
      // The --source commands above introspected it into this process's registry; the app's own definition replaces it.
      unregisterEntity('ct_track');
      defineEntity({
        name: 'ct_track',
        key: 'id',
        source: 'app',
        fields: { id: t.integer(), title: t.string(), duration: t.integer() },
      });
    });
    afterAll(() => unregisterEntity('ct_track'));

    it('exits 1 when some entity sets failed (PartiallyCompleted), and says so in text and JSON', async () => {
      const args = ['restore', 'legacy', '--target-source', 'app', '--lenient'];
      const json = await run([...args, '--json']);
      expect(json.code, json.stdout + json.stderr).toBe(1);
      const report = json.json<RestoreReport>();
      expect(report.status).toBe('PartiallyCompleted');
      expect(report.entities.find((e) => e.entityType === 'ct_track')).toMatchObject({
        status: 'Failed',
        error: expect.stringMatching(/duration/),
      });
      // Its child cannot be created as the source had it (a foreign key to ct_track, which fails): named, not written.
      expect(report.entities.find((e) => e.entityType === 'ct_playlist_track')).toMatchObject({
        status: 'Failed',
        error: expect.stringMatching(/foreign keys to ct_track, which this restore does not write \(it fails\)/),
      });
      expect(report.entities.find((e) => e.entityType === 'ct_playlist')).toMatchObject({ status: 'Restored' });
      const human = await run(args);
      expect(human.code).toBe(1);
      expect(human.stdout).toMatch(
        /^Partially restored legacy .*\nstatus: PartiallyCompleted \(2 of 3 entity sets failed\)/,
      );
      expect(human.stderr).toMatch(
        /^Warning: Restore of legacy \(.*\) is PartiallyCompleted: 2 of 3 entity sets failed \(ct_track@root: /,
      );
    });

    it('exits 1 when every entity set failed (Failed), and when a dry run finds sets that would fail', async () => {
      const only = await run([
        'restore',
        'legacy',
        '--target-source',
        'app',
        '--lenient',
        '--entity',
        'ct_track',
        '--json',
      ]);
      expect(only.code).toBe(1);
      expect(only.json<RestoreReport>().status).toBe('Failed');
      const dry = await run(['restore', 'legacy', '--target-source', 'app', '--lenient', '--dry-run', '--json']);
      expect(dry.code).toBe(1);
      expect(dry.json<RestoreReport>().status).toBe('DryRun');
    });
  });

  it('the summary prints the tables created from the archived structure', () => {
    const report: RestoreReport = {
      backupId: '01900000-0000-7000-8000-000000000000',
      backupName: 'shop',
      storageProfile: 'local',
      status: 'Completed',
      backupStatus: 'Completed',
      validated: true,
      dryRun: false,
      entities: [],
      createdTables: [{ source: 'target', tables: ['public.orders', 'billing.invoices'] }],
      totalRecords: 0,
      durationMs: 5,
      drift: [],
    };
    expect(restoreSummary(report)).toContain(
      'created from the archived structure in target: public.orders, billing.invoices',
    );
  });
});

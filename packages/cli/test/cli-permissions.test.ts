/**
 * A `--source` database read by a role that may not read some table: `entities` lists that table as not backed up,
 * with the reason (permission denied, or row-level security that may hide rows), and `backup` fails naming it until it
 * is excluded explicitly. Nothing is left out silently. PostgreSQL and MariaDB; each test makes its own database and
 * role (unique names) and drops them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeService, serviceUrls } from '@koan/data/testing';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

let dir: string;
const run = (argv: string[]) => runIn(dir, argv);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-permissions-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Storage: {
          DefaultProfile: 'local',
          Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } },
        },
      },
    }),
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pgSkip = await probeService('postgres', async () => {
  const c = new pg.Client({ connectionString: serviceUrls.postgres, connectionTimeoutMillis: 3000 });
  await c.connect();
  await c.end();
});
const mysqlSkip = await probeService('mysql', async () => {
  const c = await mysql.createConnection({ uri: serviceUrls.mysql, connectTimeout: 3000 });
  await c.end();
});

describe('PostgreSQL: a role that may not read every table', () => {
  const suffix = randomBytes(4).toString('hex');
  const database = `koan_perm_${suffix}`;
  const role = `koan_perm_ro_${suffix}`;
  let source = '';

  beforeAll(async () => {
    if (pgSkip) return;
    const admin = new pg.Client({ connectionString: serviceUrls.postgres });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
      await admin.query(`CREATE ROLE ${role} LOGIN`);
    } finally {
      await admin.end();
    }
    const url = new URL(serviceUrls.postgres);
    url.pathname = `/${database}`;
    const db = new pg.Client({ connectionString: url.href });
    await db.connect();
    try {
      await db.query(`
        CREATE TABLE open_notes (id int PRIMARY KEY, body text);
        CREATE TABLE secret (id int PRIMARY KEY, body text);
        CREATE TABLE half (id int PRIMARY KEY, shown text, hidden text);
        CREATE TABLE policed (id int PRIMARY KEY, owner text);
        INSERT INTO open_notes VALUES (1, 'a'), (2, 'b');
        INSERT INTO secret VALUES (1, 's');
        INSERT INTO half VALUES (1, 'x', 'y');
        INSERT INTO policed VALUES (1, 'me'), (2, 'someone else');
        ALTER TABLE policed ENABLE ROW LEVEL SECURITY;
        CREATE POLICY mine ON policed FOR SELECT USING (owner = 'me');
        GRANT SELECT ON open_notes, policed TO ${role};
        GRANT SELECT (id, shown) ON half TO ${role};`);
    } finally {
      await db.end();
    }
    url.username = role;
    source = url.href;
  });

  afterAll(async () => {
    if (pgSkip) return;
    const admin = new pg.Client({ connectionString: serviceUrls.postgres });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
    } finally {
      await admin.end();
    }
  });

  it('entities --source lists each table it cannot read as not backed up, with why', async (ctx) => {
    if (pgSkip) return ctx.skip(pgSkip);
    const r = await run(['entities', '--source', source]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/open_notes\s+cli\s+postgres\s+id \(integer\)/);
    expect(r.stdout).toContain(
      'Cannot be backed up (3): a backup fails naming them unless excluded with --exclude-entity',
    );
    expect(r.stdout).toMatch(
      new RegExp(`secret\\s+cli\\s+permission denied: role ${role} has no SELECT privilege on it`),
    );
    expect(r.stdout).toMatch(/half\s+cli\s+permission denied: .* \(only on some of its columns\)/);
    expect(r.stdout).toMatch(/policed\s+cli\s+row-level security: its policies may hide rows/);
    const json = await run(['entities', '--source', source, '--json']);
    const out = json.json<{ entities: { name: string }[]; skipped: { table: string; reason: string }[] }>();
    expect(out.entities.map((e) => e.name)).toEqual(['open_notes']);
    expect(out.skipped.map((s) => s.table).sort()).toEqual(['half', 'policed', 'secret']);
    expect(out.skipped.find((s) => s.table === 'secret')!.reason).toContain(
      `GRANT SELECT ON "public"."secret" TO "${role}"`,
    );
  });

  it('backup --source fails naming them; with each one excluded it backs up the rest and records why', async (ctx) => {
    if (pgSkip) return ctx.skip(pgSkip);
    const r = await run(['backup', 'perm', '--source', source]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/^Error \[TABLES_NOT_BACKED_UP\]: 3 tables cannot be backed up, so nothing was/);
    expect(r.stderr).toMatch(/- secret \(source cli\): permission denied/);
    const ok = await run(['backup', 'perm', '--source', source, '--exclude-entity', 'secret,half,policed', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const result = ok.json<{
      entities: { entityType: string; itemCount: number }[];
      omitted: { name: string; reason: string }[];
    }>();
    expect(result.entities.map((e) => [e.entityType, e.itemCount])).toEqual([['open_notes', 2]]);
    expect(result.omitted.find((o) => o.name === 'secret')!.reason).toMatch(
      /^excluded on request \(excludeEntityTypes\); permission denied/,
    );
  });
});

describe('MariaDB: a user that may not read every table', () => {
  const suffix = randomBytes(4).toString('hex');
  const database = `koan_perm_${suffix}`;
  const user = `koan_ro_${suffix}`;
  let source = '';

  beforeAll(async () => {
    if (mysqlSkip) return;
    const admin = await mysql.createConnection({ uri: serviceUrls.mysql, multipleStatements: true });
    try {
      await admin.query(`CREATE DATABASE \`${database}\`; USE \`${database}\`;
        CREATE TABLE open_notes (id int PRIMARY KEY, body text);
        CREATE TABLE write_only (id int PRIMARY KEY);
        CREATE TABLE half (id int PRIMARY KEY, shown text, hidden text);
        CREATE TABLE invisible (id int PRIMARY KEY);
        INSERT INTO open_notes VALUES (1, 'a');
        CREATE USER '${user}'@'%';
        GRANT SELECT ON \`${database}\`.open_notes TO '${user}'@'%';
        GRANT INSERT ON \`${database}\`.write_only TO '${user}'@'%';
        GRANT SELECT (id, shown) ON \`${database}\`.half TO '${user}'@'%';`);
    } finally {
      await admin.end();
    }
    const url = new URL(serviceUrls.mysql);
    url.pathname = `/${database}`;
    url.username = user;
    url.password = '';
    source = url.href;
  });

  afterAll(async () => {
    if (mysqlSkip) return;
    const admin = await mysql.createConnection({ uri: serviceUrls.mysql });
    try {
      await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
    } finally {
      await admin.end();
    }
  });

  it('lists the tables it can see but not read whole as not backed up; backup fails naming them', async (ctx) => {
    if (mysqlSkip) return ctx.skip(mysqlSkip);
    const json = await run(['entities', '--source', source, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const out = json.json<{ entities: { name: string }[]; skipped: { table: string; reason: string }[] }>();
    expect(out.entities.map((e) => e.name)).toEqual(['open_notes']);
    expect(out.skipped).toEqual([
      {
        source: 'cli',
        table: 'half',
        reason: expect.stringMatching(/^permission denied: user .* may not SELECT every column/),
      },
      {
        source: 'cli',
        table: 'write_only',
        reason: expect.stringMatching(/^permission denied: user .* may not SELECT/),
      },
    ]);
    // A table the user has no privilege on at all is hidden by MariaDB itself: it cannot be named (see the README).
    const r = await run(['backup', 'perm', '--source', source]);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/2 tables cannot be backed up/);
    expect(r.stderr).toMatch(/- write_only \(source cli\): permission denied/);
  });
});

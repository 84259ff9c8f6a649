/**
 * Nothing is left out silently: a whole-application backup of an existing SQLite database (introspected) either backs
 * up every table, records what it leaves out on request (or what is not data) in the manifest's `omitted`, or fails
 * before reading anything, naming each table that cannot be backed up. Selection values that match nothing are
 * refused. The table that cannot be backed up is a real one: Koan's own meta table holds an unreadable schema for it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registeredEntities, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, type BackupError, backupAllEntities } from '@koan/data-backup';
import { openArchive, readContents } from '@koan/data-backup/archive';
import { locateBackup } from '@koan/data-backup/catalog';
import { describeEntities, planBackup } from '@koan/data-backup/plan';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

let dir: string;
let file: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-plan-'));
  file = join(dir, 'legacy.sqlite');
  const db = new Database(file);
  db.exec(`
    CREATE TABLE bp_customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    INSERT INTO bp_customers VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Edsger');
    CREATE TABLE bp_orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES bp_customers(id), total TEXT);
    INSERT INTO bp_orders VALUES (10, 1, '9.50'), (11, 2, '12.00');
    CREATE TABLE bp_legacy (id INTEGER PRIMARY KEY, v TEXT);
    INSERT INTO bp_legacy VALUES (1, 'kept by an old Koan version');
    CREATE TABLE _koan_entities (physical TEXT NOT NULL PRIMARY KEY, entity TEXT NOT NULL, schema TEXT NOT NULL);
    INSERT INTO _koan_entities VALUES ('bp_legacy', 'bp_legacy', '{ not json');
    CREATE VIEW bp_customer_names AS SELECT name FROM bp_customers;
  `);
  db.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Introspection registers the tables process-wide: forget them after each test. */
afterEach(() => {
  for (const e of registeredEntities()) if (e.schema.source === 'bp') unregisterEntity(e.schema.name);
});

async function withLegacy<T>(
  fn: (env: Awaited<ReturnType<typeof makeContext>>) => Promise<T>,
  config: { excludeEntities?: string[] } = {},
): Promise<T> {
  const env = await makeContext(
    { bp: { provider: 'sqlite', settings: { path: file } } },
    { config: config as Record<string, unknown> },
  );
  try {
    return await fn(env);
  } finally {
    await env.cleanup();
  }
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: BackupError) => e,
  );
const names = (m: { entities: readonly { entityType: string }[] }) => m.entities.map((e) => e.entityType).sort();

describe('a whole-application backup leaves nothing out silently', () => {
  it('a table that cannot be backed up fails the backup before anything is read, naming it, its source, why and how to exclude it', async () => {
    await withLegacy(async (env) => {
      const err = await failure(backupAllEntities(env.context, 'legacy', { introspect: true }));
      expect(err?.code).toBe('TABLES_NOT_BACKED_UP');
      expect(err?.message).toMatch(/bp_legacy \(source bp\): .*unreadable schema/);
      expect(err?.message).toContain('--exclude-entity bp_legacy');
      expect(err?.message).toContain('Koan.Backup.ExcludeEntities');
      expect(err?.details).toMatchObject({ tables: [{ source: 'bp', table: 'bp_legacy' }] });
      // Nothing was read or recorded: the catalog has no backup of that name, not even a failed one.
      const catalog = await new BackupDiscoveryService(env.context).discoverAllBackups();
      expect(catalog.backups).toEqual([]);
    });
  });

  it('excluded explicitly (any case), the table is recorded in omitted with why; the rest is backed up', async () => {
    await withLegacy(async (env) => {
      const m = await backupAllEntities(env.context, 'legacy', {
        introspect: true,
        excludeEntityTypes: ['BP_Legacy'],
      });
      expect(m.status).toBe('Completed');
      expect(names(m)).toEqual(['bp_customers', 'bp_orders']);
      expect(m.omitted).toContainEqual({
        source: 'bp',
        name: 'bp_legacy',
        kind: 'table',
        reason: expect.stringMatching(/^excluded on request \(excludeEntityTypes\); .*unreadable schema/),
      });
      // The manifest inside the archive (what restores and validation read) carries it too.
      const located = await locateBackup(env.context, m.id);
      const reader = await openArchive(located);
      try {
        expect((await readContents(reader, located.sidecar)).manifest.omitted).toEqual(m.omitted);
      } finally {
        await reader.close();
      }
    });
  });

  it('Koan.Backup.ExcludeEntities excludes from configuration, by table or entity name; an entry matching nothing is no error', async () => {
    await withLegacy(
      async (env) => {
        const m = await backupAllEntities(env.context, 'configured', { introspect: true });
        expect(names(m)).toEqual(['bp_customers']);
        expect(m.omitted).toEqual(
          expect.arrayContaining([
            {
              source: 'bp',
              name: 'bp_legacy',
              kind: 'table',
              reason: expect.stringMatching(/^excluded by Koan\.Backup\.ExcludeEntities; .*unreadable/),
            },
            { source: 'bp', name: 'bp_orders', kind: 'entity', reason: 'excluded by Koan.Backup.ExcludeEntities' },
          ]),
        );
      },
      { excludeEntities: ['bp_legacy', 'BP_ORDERS', 'a_table_of_another_database'] },
    );
  });

  it('what a selection leaves out is recorded as not selected; a skipped table outside the selection does not fail it', async () => {
    await withLegacy(async (env) => {
      const m = await backupAllEntities(env.context, 'one', { introspect: true, includeEntityTypes: ['bp_customers'] });
      expect(names(m)).toEqual(['bp_customers']);
      expect(m.omitted).toEqual(
        expect.arrayContaining([
          { source: 'bp', name: 'bp_orders', kind: 'entity', reason: 'not selected (includeEntityTypes)' },
          expect.objectContaining({ name: 'bp_legacy', reason: expect.stringMatching(/^not selected/) }),
        ]),
      );
      // An explicit exclusion is the reason given, even for what the selection leaves out anyway.
      const both = await backupAllEntities(env.context, 'both', {
        introspect: true,
        includeEntityTypes: ['bp_customers'],
        excludeEntityTypes: ['bp_legacy'],
      });
      expect(both.omitted?.find((o) => o.name === 'bp_legacy')?.reason).toMatch(
        /^excluded on request \(excludeEntityTypes\)/,
      );
      // Selecting the table that cannot be backed up is the same failure as not excluding it.
      const err = await failure(
        backupAllEntities(env.context, 'it', { introspect: true, includeEntityTypes: ['bp_legacy'] }),
      );
      expect(err?.code).toBe('TABLES_NOT_BACKED_UP');
    });
  });

  it('a selection value that matches nothing is INVALID_OPTION naming the option and the known values; nothing is recorded', async () => {
    await withLegacy(async (env) => {
      const cases = [
        [
          'includeEntityTypes',
          ['bp_custmers'],
          /"bp_custmers" is not the name of a discovered entity.*Known: .*bp_customers/,
        ],
        ['excludeEntityTypes', ['bp_legacy', 'bp_nope'], /"bp_nope" is not .*Known: .*bp_legacy/],
        ['includeProviders', ['postgres'], /"postgres" is not the name of a provider .*Known: sqlite/],
        ['excludeProviders', ['mysql'], /"mysql" is not .*Known: sqlite/],
      ] as const;
      for (const [option, value, message] of cases) {
        const err = await failure(backupAllEntities(env.context, 'typo', { introspect: true, [option]: value }));
        expect(err?.code, option).toBe('INVALID_OPTION');
        expect(err?.message, option).toMatch(message);
        expect(err?.details, option).toMatchObject({ option });
      }
      expect((await new BackupDiscoveryService(env.context).discoverAllBackups()).backups).toEqual([]);
    });
  });

  it('planBackup gives the targets and what is left out, for callers that run the backup themselves', async () => {
    await withLegacy(async (env) => {
      const plan = await planBackup(env.context, { introspect: true, excludeEntityTypes: ['bp_legacy'] });
      expect(plan.targets.map((t) => `${t.entity.schema.name}@${t.set}`)).toEqual([
        'bp_customers@root',
        'bp_orders@root',
      ]);
      expect(plan.omitted.map((o) => o.name)).toContain('bp_legacy');
    });
  });

  it('views are recorded in omitted as not data (pending: SQLite introspection reporting views)', async () => {
    await withLegacy(async (env) => {
      const m = await backupAllEntities(env.context, 'views', { introspect: true, excludeEntityTypes: ['bp_legacy'] });
      expect(m.omitted).toContainEqual(
        expect.objectContaining({ source: 'bp', name: 'bp_customer_names', kind: 'view' }),
      );
    });
  });
});

describe('describeEntities', () => {
  it('lists the entities with their sets and counts, the tables that cannot be backed up with why, and the configured exclusions', async () => {
    await withLegacy(
      async (env) => {
        const d = await describeEntities(env.context, { introspect: true });
        expect(d.sources).toEqual(['bp']);
        expect(d.entities.map((e) => [e.name, e.origin, e.key, e.sets, e.records, e.totalRecords, e.excluded])).toEqual(
          [
            ['bp_customers', 'introspected', 'id', ['root'], { root: 3 }, 3, undefined],
            ['bp_orders', 'introspected', 'id', ['root'], { root: 2 }, 2, 'excluded by Koan.Backup.ExcludeEntities'],
          ],
        );
        expect(d.skipped).toEqual([
          {
            source: 'bp',
            table: 'bp_legacy',
            reason: expect.stringMatching(/unreadable schema/),
          },
        ]);
      },
      { excludeEntities: ['bp_orders'] },
    );
  });
});

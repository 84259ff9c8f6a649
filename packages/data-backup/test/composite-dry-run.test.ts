/**
 * A restore's dry run of a table with a composite primary key counts by the whole key: a row whose first key column
 * matches several stored rows is one record, existing only when every key column matches. (The dry run looked keys
 * up by the first column alone: PostgreSQL counted each stored row sharing it, so `inserted` went below zero.)
 */
import { registeredEntities, unregisterEntity } from '@koan/data';
import { backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import { afterAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import { createScratch, DIALECTS, type Dialect, probeDialect, type ScratchDatabase } from './scratch-databases.js';

const unavailable = Object.fromEntries(
  await Promise.all(DIALECTS.map(async (d) => [d, await probeDialect(d)] as const)),
) as Record<Dialect, string | undefined>;

function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}

describe.each(DIALECTS)('dry run of a composite-key table in %s', (dialect) => {
  const scratches: ScratchDatabase[] = [];
  afterAll(async () => {
    forgetIntrospected();
    for (const db of scratches) await db.drop().catch(() => undefined);
  });

  it('matches binary, datetime and decimal key columns as an upsert does', async (ctx) => {
    if (unavailable[dialect]) return ctx.skip(unavailable[dialect]);
    const ddl: Record<Dialect, string> = {
      sqlite:
        'CREATE TABLE odd_key (k BLOB NOT NULL, at DATETIME NOT NULL, n DECIMAL(10,2) NOT NULL, PRIMARY KEY (k, at, n));',
      postgres: 'CREATE TABLE odd_key (k bytea, at timestamptz, n numeric(10,2), PRIMARY KEY (k, at, n));',
      mariadb: 'CREATE TABLE odd_key (k varbinary(8), at datetime(6), n decimal(10,2), PRIMARY KEY (k, at, n));',
    };
    const blob = (hex: string) => (dialect === 'postgres' ? `'\\x${hex}'` : `X'${hex}'`);
    const at = (t: string) => (dialect === 'postgres' ? `'${t}+00'` : `'${t}'`);
    const db = await createScratch(
      dialect,
      `cdry2_${dialect.slice(0, 2)}`,
      `${ddl[dialect]}
       INSERT INTO odd_key (k, at, n) VALUES (${blob('00ff')}, ${at('2024-01-02 03:04:05.123456')}, 1.50),
         (${blob('00ff')}, ${at('2024-01-02 03:04:05.123457')}, 1.50), (${blob('0a')}, ${at('2024-01-02 03:04:05')}, 2.00);`,
    );
    scratches.push(db);
    const env = await makeContext({ src: db.source });
    try {
      forgetIntrospected();
      await backupAllEntities(env.context, 'odd', { introspect: true });
      await db.exec(
        `DELETE FROM odd_key WHERE k = ${blob('0a')};
         INSERT INTO odd_key (k, at, n) VALUES (${blob('0a')}, ${at('2024-01-02 03:04:05')}, 2.01);`,
      );
      const report = await restoreAllEntities(env.context, 'odd', { dryRun: true });
      expect(report.entities).toEqual([expect.objectContaining({ status: 'DryRun', inserted: 1, updated: 2 })]);
      const real = await restoreAllEntities(env.context, 'odd', {});
      expect(real.entities).toEqual([expect.objectContaining({ status: 'Restored', inserted: 1, updated: 2 })]);
    } finally {
      forgetIntrospected();
      await env.cleanup();
    }
  });

  it('counts inserted, updated and failed records by the whole key', async (ctx) => {
    if (unavailable[dialect]) return ctx.skip(unavailable[dialect]);
    const db = await createScratch(
      dialect,
      `cdry_${dialect.slice(0, 2)}`,
      `CREATE TABLE pair_line (a integer NOT NULL, b varchar(10) NOT NULL, label varchar(20), PRIMARY KEY (a, b));
       INSERT INTO pair_line (a, b, label) VALUES (1, 'x', 'one'), (1, 'y', 'two'), (1, 'z', 'three'), (2, 'x', 'four'), (3, 'q', 'five');`,
    );
    scratches.push(db);
    const env = await makeContext({ src: db.source });
    try {
      forgetIntrospected();
      const backup = await backupAllEntities(env.context, 'pairs', { introspect: true });
      expect(backup.entities.map((e) => [e.entityType, e.itemCount])).toEqual([['pair_line', 5]]);
      // Now (1,x) and (1,z) are still there, (1,y), (2,x) and (3,q) are gone; (1,w), (1,v), (2,y) and (3,x) are new
      // rows sharing a first key column with archived ones.
      await db.exec(
        `DELETE FROM pair_line WHERE (a = 1 AND b = 'y') OR a IN (2, 3);
         INSERT INTO pair_line (a, b, label) VALUES (1, 'w', 'new'), (1, 'v', 'new'), (2, 'y', 'new'), (3, 'x', 'new');`,
      );
      const dry = (options: object) =>
        restoreAllEntities(env.context, 'pairs', { dryRun: true, batchSize: 2, ...options }).then((r) => r.entities);
      expect(await dry({})).toEqual([
        expect.objectContaining({ status: 'DryRun', inserted: 3, updated: 2, failed: 0, removed: 0 }),
      ]);
      const insertOnly = await dry({ mode: 'insert' });
      expect(insertOnly).toEqual([
        expect.objectContaining({ status: 'DryRun', inserted: 3, updated: 0, failed: 2, removed: 0 }),
      ]);
      expect(insertOnly[0]!.error).toMatch(/^2 records already exist/);
      expect(await dry({ replaceExisting: true })).toEqual([
        expect.objectContaining({ status: 'DryRun', inserted: 5, updated: 0, failed: 0, removed: 6 }),
      ]);
      // Into a set that does not exist: everything would be inserted.
      expect(await dry({ targetSet: 'elsewhere' })).toEqual([
        expect.objectContaining({ status: 'DryRun', inserted: 5, updated: 0, failed: 0 }),
      ]);
      // What the dry run said is what the restore does.
      const real = await restoreAllEntities(env.context, 'pairs', {});
      expect(real.entities).toEqual([expect.objectContaining({ status: 'Restored', inserted: 3, updated: 2 })]);
    } finally {
      forgetIntrospected();
      await env.cleanup();
    }
  });
});

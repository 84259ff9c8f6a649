/**
 * The PostgreSQL adapter runs one query at a time on a client: node-postgres deprecates queueing a query on a client
 * that is still running one (`DeprecationWarning: Calling client.query() when the client is already executing a
 * query`, an error in pg 9). Node emits a deprecation once per process, so this file runs alone in its process and
 * goes through everything that touches a client: introspection, describe, structure capture, a restore into a fresh
 * database (tables created from the structure) and a merge restore with foreign keys checked before commit.
 */
import { registeredEntities, unregisterEntity } from '@koan/data';
import { backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import { createScratch, probeDialect, type ScratchDatabase } from './scratch-databases.js';

const skipReason = await probeDialect('postgres');

function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}

describe('PostgreSQL query order', () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  const scratches: ScratchDatabase[] = [];
  beforeAll(() => {
    process.on('warning', onWarning);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    forgetIntrospected();
    for (const db of scratches) await db.drop().catch(() => undefined);
  });

  it('backs up and restores with foreign keys without a deprecation warning from pg', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const db = await createScratch(
      'postgres',
      'pgorder',
      `CREATE TABLE parent (id integer PRIMARY KEY, name text NOT NULL);
       CREATE TABLE child (id integer PRIMARY KEY, parent_id integer NOT NULL REFERENCES parent (id), note text);
       INSERT INTO parent VALUES (1, 'a'), (2, 'b');
       INSERT INTO child VALUES (10, 1, 'x'), (11, 2, 'y'), (12, 2, NULL);`,
    );
    scratches.push(db);
    const fresh = await createScratch('postgres', 'pgorder_to');
    scratches.push(fresh);
    const env = await makeContext({ src: db.source, tgt: fresh.source });
    try {
      forgetIntrospected();
      const backup = await backupAllEntities(env.context, 'fk', { introspect: true });
      expect(backup.entities.map((e) => [e.entityType, e.status])).toEqual([
        ['child', 'Completed'],
        ['parent', 'Completed'],
      ]);
      const adapter = await env.context.runtime.adapter('src');
      const child = registeredEntities().find((e) => e.schema.name === 'child')!.schema;
      expect((await adapter.describe(child, 'root')).foreignKeys).toHaveLength(1);
      const merged = await restoreAllEntities(env.context, 'fk', {});
      expect(merged.entities.map((e) => [e.entityType, e.status, e.updated])).toEqual([
        ['parent', 'Restored', 2],
        ['child', 'Restored', 3],
      ]);
      const created = await restoreAllEntities(env.context, 'fk', { targetSource: 'tgt' });
      expect(created.entities.map((e) => [e.entityType, e.status, e.inserted])).toEqual([
        ['parent', 'Restored', 2],
        ['child', 'Restored', 3],
      ]);
      // A warning is emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
    } finally {
      forgetIntrospected();
      await env.cleanup();
    }
  });
});

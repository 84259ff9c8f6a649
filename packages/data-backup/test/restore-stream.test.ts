/**
 * The streamed restore path (one COPY per entity into PostgreSQL): a line the server refuses fails the restore
 * naming the archive entry and line, and nothing of the entity stays.
 */
import { join } from 'node:path';
import { Entity, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { abortWhileWaiting } from '@koan/data/testing';
import { backupEntity, restoreEntity } from '@koan/data-backup';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { makeContext, spyOnCount, withScratchContext } from './helpers.js';
import { createScratch, probeDialect } from './scratch-databases.js';

const fields = { id: t.integer(), label: t.string(), price: t.decimal(10, 2) };
const schema = buildSchema({ name: 'StreamedNote', key: 'id', fields }, 'declared');
const records = Array.from({ length: 3000 }, (_, i) => ({
  id: i,
  label: `note ${i} "quoted" \\ ✓`,
  price: `${i}.25`,
}));

describe('streamed restore into PostgreSQL', () => {
  it('names the archive line the server refused; nothing of the entity stays', async (ctx) => {
    const reason = await probeDialect('postgres');
    if (reason) return ctx.skip(reason);
    const from = await makeContext({ default: { provider: 'memory' } });
    const db = await createScratch('postgres', 'stream');
    const to = await makeContext(
      { default: db.source },
      { profiles: { local: { provider: 'local', settings: { root: join(from.dir, 'backups') } } } },
    );
    try {
      const source = new Entity(schema, fields).withRuntime(from.context.runtime);
      await source.upsertMany(records);
      await backupEntity(from.context, source, 'streamed');
      const target = new Entity(schema, fields).withRuntime(to.context.runtime);
      // A rule of the target database the archive does not know: the server refuses one row of the COPY.
      expect(await target.count()).toBe(0);
      await db.exec(`ALTER TABLE "StreamedNote" ADD CONSTRAINT not_1234 CHECK (id <> 1234)`);
      const failure = await restoreEntity(to.context, target, 'streamed').then(
        () => undefined,
        (e: Error) => e,
      );
      expect(failure?.message).toContain('entities/StreamedNote.jsonl line 1235');
      expect(failure?.message).toMatch(
        /line 1235: \[postgres\] StreamedNote: [^;]*not_1234[^;]*; nothing of StreamedNote was kept/,
      );
      expect(failure).toMatchObject({ code: 'RESTORE_FAILED' });
      expect(await target.count()).toBe(0);
      // Without the rule the same path restores everything exactly.
      await db.exec(`ALTER TABLE "StreamedNote" DROP CONSTRAINT not_1234`);
      await source.upsert({ ...records[1234]!, label: 'fixed' });
      await backupEntity(from.context, source, 'streamed');
      const report = await restoreEntity(to.context, target, 'streamed');
      expect(report.totalRecords).toBe(records.length);
      const client = new pg.Client({
        connectionString: (db.source.settings as { connectionString: string }).connectionString,
      });
      await client.connect();
      try {
        const rows = (
          await client.query('SELECT id::int AS id, label, price::text AS price FROM "StreamedNote" ORDER BY id')
        ).rows;
        expect(rows).toEqual(records.map((r) => (r.id === 1234 ? { ...r, label: 'fixed' } : r)));
      } finally {
        await client.end();
      }
    } finally {
      await to.cleanup();
      await from.cleanup();
      await db.drop();
    }
  });
});

describe('cancelling a restore that waits on a lock', () => {
  it('stops it at once with ABORTED (PostgreSQL); the table keeps what it had', (ctx) =>
    withScratchContext(ctx, 'postgres', 'locked', async (env, db) => {
      const holder = new pg.Client({
        connectionString: (db.source.settings as { connectionString: string }).connectionString,
      });
      try {
        const entity = new Entity(schema, fields).withRuntime(env.context.runtime);
        await entity.upsertMany(records.slice(0, 100).map((r) => ({ ...r, label: 'kept' })));
        await backupEntity(env.context, entity, 'locked');
        await holder.connect();
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE "StreamedNote" IN ACCESS EXCLUSIVE MODE');
        const outcome = await abortWhileWaiting((signal) =>
          restoreEntity(env.context, entity, 'locked', { replaceExisting: true, signal }),
        );
        expect(outcome).toMatchObject({ code: 'ABORTED' });
        await holder.query('ROLLBACK');
        expect(await entity.count()).toBe(100);
      } finally {
        await holder.end().catch(() => {});
      }
    }));
});

describe('a merge restore into a set that has records', () => {
  it('asks MariaDB whether the set has records instead of counting them (a count is a full scan there)', (ctx) =>
    withScratchContext(ctx, 'mariadb', 'probe', async (env) => {
      const entity = new Entity(schema, fields).withRuntime(env.context.runtime);
      const rows = records.slice(0, 50);
      await entity.upsertMany(rows.map((r) => ({ ...r, label: 'backed up' })));
      await backupEntity(env.context, entity, 'probe');
      await entity.upsertMany(rows.map((r) => ({ ...r, label: 'changed since' })));
      const counts = spyOnCount(await env.context.runtime.adapter('default'));
      try {
        const report = await restoreEntity(env.context, entity, 'probe');
        expect(report.entities[0]).toMatchObject({ inserted: 0, updated: 50 });
        expect(counts.calls()).toBe(0);
      } finally {
        counts.restore();
      }
      expect((await entity.get(3))?.label).toBe('backed up');
    }));
});

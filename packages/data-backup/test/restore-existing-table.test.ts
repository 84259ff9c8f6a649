/**
 * A restore into a table that already exists (created by the application's migrations) which has no column for an
 * archived field: refused before anything is written (`SCHEMA_INCOMPATIBLE`, naming the entity, the field and the fix);
 * with the lenient schema policy the field is dropped and the report says so (`droppedFields`, `missingColumns`).
 */
import { type DataRuntime, Entity, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { backupEntity, restoreAllEntities, restoreEntity } from '@koan/data-backup';
import { describe, expect, it } from 'vitest';
import { makeContext, withScratchContext } from './helpers.js';
import { createScratch, type Dialect, probeDialect, type ScratchDatabase } from './scratch-databases.js';

const fields = { id: t.integer(), title: t.string(), note: t.string().nullable() };
const noteEntity = (runtime: DataRuntime, source = 'default') =>
  new Entity(
    buildSchema({ name: 'RtNote', key: 'id', table: 'rt_note', source, fields }, 'declared'),
    fields,
  ).withRuntime(runtime);

/** The table as the application's migrations made it: no `note` column, one row of its own. */
const MIGRATED = `DROP TABLE IF EXISTS rt_note; CREATE TABLE rt_note (id integer PRIMARY KEY, title text NOT NULL); INSERT INTO rt_note (id, title) VALUES (7, 'kept');`;

/** The rows of rt_note, read with the table's own columns. */
async function rows(runtime: DataRuntime, source: string): Promise<unknown[]> {
  const cols = { id: t.integer(), title: t.string() };
  const table = new Entity(
    buildSchema({ name: 'RtNoteRead', key: 'id', table: 'rt_note', source, fields: cols }, 'introspected'),
    cols,
  ).withRuntime(runtime);
  return (await table.all()).map((r) => [r.id, r.title]);
}

describe.each<Dialect>(['sqlite', 'postgres'])(
  'restore into an existing %s table that lacks an archived column',
  (dialect) => {
    it('strict: refused before writing, naming entity, field and fix (dry run too); lenient: dropped and reported', (ctx) =>
      withScratchContext(ctx, dialect, 'rt_cols', async (env, db) => {
        const Note = noteEntity(env.context.runtime);
        await Note.upsertMany([
          { id: 1, title: 'a', note: 'first' },
          { id: 2, title: 'b', note: null },
        ]);
        await backupEntity(env.context, Note, 'notes');
        await db.exec(MIGRATED);
        for (const dryRun of [false, true]) {
          const err = await restoreEntity(env.context, Note, 'notes', { dryRun }).catch((e) => e);
          expect(err).toMatchObject({ code: 'SCHEMA_INCOMPATIBLE' });
          expect(err.message).toMatch(
            /RtNote@root: the existing table rt_note of default has no column for the archived field note/,
          );
          expect(err.message).toMatch(/Add the column .*schemaPolicy "lenient" \(CLI --lenient\)/);
          expect(err.details).toMatchObject({ missingColumns: [{ entity: 'RtNote', set: 'root', fields: ['note'] }] });
        }
        expect(await rows(env.context.runtime, 'default')).toEqual([[7, 'kept']]);

        const report = await restoreEntity(env.context, Note, 'notes', { schemaPolicy: 'lenient' });
        expect(report.status).toBe('Completed');
        expect(report.entities).toMatchObject([
          { entityType: 'RtNote', status: 'Restored', inserted: 2, droppedFields: ['note'], missingColumns: ['note'] },
        ]);
        expect(await rows(env.context.runtime, 'default')).toEqual([
          [1, 'a'],
          [2, 'b'],
          [7, 'kept'],
        ]);
      }));
  },
);

describe('restore with the archived schema (targetSource) into an existing table of another kind of store', () => {
  it('SQLite archive into a PostgreSQL table without the column: refused; lenient drops it and says so', async (ctx) => {
    const reason = await probeDialect('postgres');
    if (reason) return ctx.skip(reason);
    const scratches: ScratchDatabase[] = [];
    const src = await createScratch('sqlite', 'rt_src');
    scratches.push(src);
    const tgt = await createScratch('postgres', 'rt_tgt');
    scratches.push(tgt);
    const env = await makeContext({ default: src.source, tgt: tgt.source });
    try {
      await noteEntity(env.context.runtime).upsertMany([{ id: 1, title: 'a', note: 'first' }]);
      await backupEntity(env.context, noteEntity(env.context.runtime), 'notes');
      await tgt.exec(MIGRATED);
      const err = await restoreAllEntities(env.context, 'notes', { targetSource: 'tgt' }).catch((e) => e);
      expect(err).toMatchObject({ code: 'SCHEMA_INCOMPATIBLE' });
      expect(err.message).toMatch(
        /RtNote@root: the existing table rt_note of tgt has no column for the archived field note/,
      );
      expect(await rows(env.context.runtime, 'tgt')).toEqual([[7, 'kept']]);
      const report = await restoreAllEntities(env.context, 'notes', { targetSource: 'tgt', schemaPolicy: 'lenient' });
      expect(report.entities).toMatchObject([{ status: 'Restored', inserted: 1, droppedFields: ['note'] }]);
      expect(await rows(env.context.runtime, 'tgt')).toEqual([
        [1, 'a'],
        [7, 'kept'],
      ]);
    } finally {
      await env.cleanup();
      for (const db of scratches) await db.drop();
    }
  });
});

/**
 * Progress totals of large sets come from the store's estimate, not from a count (a full scan on InnoDB); the
 * archive still holds every record, counted as it is written.
 */
import { Entity, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { backupEntity, type ProgressEvent } from '@koan/data-backup';
import { describe, expect, it } from 'vitest';
import { spyOnCount, withScratchContext } from './helpers.js';

const fields = { id: t.integer(), label: t.string() };
const schema = buildSchema({ name: 'LargeSet', key: 'id', fields }, 'declared');
const ROWS = 120_000; // above the 100,000 records from which the estimate is used

describe('progress totals of a large MariaDB set', () => {
  it('come from the InnoDB estimate, marked as estimated, with no count', (ctx) =>
    withScratchContext(ctx, 'mariadb', 'estimates', async (env, db) => {
      const entity = new Entity(schema, fields).withRuntime(env.context.runtime);
      const adapter = await env.context.runtime.adapter('default');
      await adapter.ensureEntity(schema, 'root');
      for (let start = 0; start < ROWS; start += 20_000)
        await adapter.importBatch(
          schema,
          'root',
          Array.from({ length: 20_000 }, (_, i) => ({ id: start + i, label: `row ${start + i}` })),
          { mode: 'insert', bulk: true },
        );
      await db.exec('ANALYZE TABLE `LargeSet`');
      const estimate = (await adapter.estimateCount!(schema, 'root'))!;
      expect(estimate).toBeGreaterThanOrEqual(100_000);
      const counts = spyOnCount(adapter);
      const events: ProgressEvent[] = [];
      try {
        const manifest = await backupEntity(env.context, entity, 'large', { onProgress: (e) => events.push(e) });
        expect(manifest.verification.totalItemCount).toBe(ROWS);
      } finally {
        counts.restore();
      }
      expect(counts.calls()).toBe(0);
      const start = events.find((e) => e.phase === 'entity-start')!;
      expect(start).toMatchObject({ totalRecords: estimate, overallTotalRecords: estimate, totalsEstimated: true });
      expect(events.at(-1)).toMatchObject({ phase: 'done', overallRecords: ROWS, totalsEstimated: true });
    }));
});

/** Conformance: exports left early, snapshots, cancellation. */
import { expect } from 'vitest';
import { t } from '../../fields.js';
import { ROOT_SET } from '../../schema.js';
import { type ConformanceSuite, collect, expectCode, range } from './suite.js';

/** An export left early releases what it held. */
export function releaseTests(s: ConformanceSuite): void {
  const { test, entity } = s;
  test('breaking out of an export releases its resources (12 times, then a normal query)', async (a) => {
    const E = entity('BreakEarly', 'id', { id: t.integer(), v: t.string() });
    await a.ensureEntity(E, ROOT_SET);
    await a.importBatch(
      E,
      ROOT_SET,
      range(300).map((id) => ({ id, v: `v${id}` })),
      { mode: 'insert' },
    );
    for (let i = 0; i < 12; i++) {
      for await (const batch of a.exportEntity(E, ROOT_SET, { batchSize: 10 })) {
        expect(batch).toHaveLength(10);
        break;
      }
    }
    for (let i = 0; i < 12; i++) {
      await a.readSnapshot(async (reader) => {
        for await (const batch of reader.exportEntity(E, ROOT_SET, { batchSize: 10 })) {
          expect(batch).toHaveLength(10);
          break;
        }
      });
    }
    expect(await a.count(E, ROOT_SET)).toBe(300);
    await a.importBatch(E, ROOT_SET, [{ id: 300, v: 'more' }], { mode: 'insert' });
    expect(await collect(a.exportEntity(E, ROOT_SET, { batchSize: 64 }))).toHaveLength(301);
  });
}

/** Snapshots and cancelled exports. */
export function snapshotTests(s: ConformanceSuite): void {
  const { test, entity } = s;
  test('readSnapshot reports its consistency; a snapshot does not see later writes (capabilities.snapshotReads)', async (a) => {
    const E = entity('Snap', 'id', { id: t.integer(), v: t.string() });
    const F = entity('SnapOther', 'id', { id: t.integer(), v: t.string() });
    await a.ensureEntity(E, ROOT_SET);
    await a.ensureEntity(F, ROOT_SET);
    await a.importBatch(
      E,
      ROOT_SET,
      range(20).map((id) => ({ id, v: 'before' })),
      { mode: 'insert' },
    );
    await a.importBatch(
      F,
      ROOT_SET,
      range(5).map((id) => ({ id, v: 'before' })),
      { mode: 'insert' },
    );
    const seen = await a.readSnapshot(async (reader) => {
      expect(reader.consistency).toBe(a.capabilities.snapshotReads ? 'snapshot' : 'fuzzy');
      const before = await reader.count(E, ROOT_SET);
      await a.importBatch(
        E,
        ROOT_SET,
        [
          { id: 0, v: 'after' },
          { id: 20, v: 'after' },
        ],
        { mode: 'upsert' },
      );
      await a.importBatch(F, ROOT_SET, [{ id: 5, v: 'after' }], { mode: 'insert' });
      return {
        before,
        after: await reader.count(E, ROOT_SET),
        rows: await collect(reader.exportEntity(E, ROOT_SET, { batchSize: 7 })),
        other: await reader.count(F, ROOT_SET),
      };
    });
    if (a.capabilities.snapshotReads) {
      expect(seen.before).toBe(20);
      expect(seen.after).toBe(20);
      expect(seen.rows).toHaveLength(20);
      expect(seen.rows.every((r) => r.v === 'before')).toBe(true);
      expect(seen.other).toBe(5);
    }
    expect(await a.count(E, ROOT_SET)).toBe(21);
    expect((await a.get(E, ROOT_SET, 0))?.v).toBe('after');
  });

  test('aborting an export stops it with ABORTED', async (a) => {
    const E = entity('Abort', 'id', { id: t.integer() });
    await a.ensureEntity(E, ROOT_SET);
    await a.importBatch(
      E,
      ROOT_SET,
      range(100).map((id) => ({ id })),
      { mode: 'insert' },
    );
    const controller = new AbortController();
    let batches = 0;
    await expectCode(
      (async () => {
        for await (const _ of a.exportEntity(E, ROOT_SET, { batchSize: 10, signal: controller.signal })) {
          if (++batches === 2) controller.abort(new Error('stop'));
        }
      })(),
      'ABORTED',
    );
    expect(batches).toBe(2);
    await expectCode(collect(a.exportEntity(E, ROOT_SET, { signal: AbortSignal.abort() })), 'ABORTED');
    expect(await a.count(E, ROOT_SET)).toBe(100);
  });
}

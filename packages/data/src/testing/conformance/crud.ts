/** Conformance: writes, transactions, sets, counts and reads. */
import { expect } from 'vitest';
import type { DataReader } from '../../adapter.js';
import { t } from '../../fields.js';
import { ROOT_SET } from '../../schema.js';
import { type ConformanceSuite, collect, expectCode, range } from './suite.js';

/** Insert against upsert, and transactions. */
export function writeTests(s: ConformanceSuite): void {
  const { test, entity } = s;
  test('insert of an existing key fails with DUPLICATE_KEY; upsert replaces', async (a) => {
    const E = entity('Upsert', 'id', { id: t.string(), v: t.integer() });
    await a.ensureEntity(E, ROOT_SET);
    expect(
      await a.importBatch(
        E,
        ROOT_SET,
        [
          { id: 'a', v: 1 },
          { id: 'b', v: 1 },
        ],
        { mode: 'insert' },
      ),
    ).toEqual({ inserted: 2, updated: 0 });
    await expectCode(a.importBatch(E, ROOT_SET, [{ id: 'a', v: 2 }], { mode: 'insert' }), 'DUPLICATE_KEY');
    expect((await a.get(E, ROOT_SET, 'a'))?.v).toBe(1);

    await expectCode(
      a.transaction(async (tx) => {
        await tx.importBatch(E, ROOT_SET, [{ id: 'd', v: 1 }], { mode: 'insert' });
        await tx.importBatch(
          E,
          ROOT_SET,
          [
            { id: 'c', v: 1 },
            { id: 'a', v: 2 },
          ],
          { mode: 'insert' },
        );
      }),
      'DUPLICATE_KEY',
    );
    expect((await a.get(E, ROOT_SET, 'a'))?.v).toBe(1);
    if (a.capabilities.transactions) {
      expect(await a.get(E, ROOT_SET, 'd')).toBeUndefined();
      expect(await a.get(E, ROOT_SET, 'c')).toBeUndefined();
      expect(await a.count(E, ROOT_SET)).toBe(2);
    }

    const r = await a.importBatch(
      E,
      ROOT_SET,
      [
        { id: 'a', v: 3 },
        { id: 'z', v: 1 },
      ],
      { mode: 'upsert' },
    );
    // Adapters that cannot tell updates from inserts report both as inserted (see ImportResult).
    expect([`1/1`, `2/0`]).toContain(`${r.inserted}/${r.updated}`);
    expect((await a.get(E, ROOT_SET, 'a'))?.v).toBe(3);
    expect((await a.get(E, ROOT_SET, 'z'))?.v).toBe(1);
  });

  test('transaction commits what fn wrote and returns its result', async (a) => {
    const E = entity('TxCommit', 'id', { id: t.integer(), v: t.string() });
    await a.ensureEntity(E, ROOT_SET);
    const result = await a.transaction(async (tx) => {
      await tx.importBatch(
        E,
        ROOT_SET,
        [
          { id: 1, v: 'one' },
          { id: 2, v: 'two' },
        ],
        { mode: 'insert' },
      );
      await tx.remove(E, ROOT_SET, [2]);
      return 42;
    });
    expect(result).toBe(42);
    expect(await collect(a.exportEntity(E, ROOT_SET))).toEqual([{ id: 1, v: 'one' }]);
  });

  test('transaction rolls back every write when fn throws (capabilities.transactions)', async (a, ctx) => {
    if (!a.capabilities.transactions) return ctx.skip('adapter declares transactions false');
    const E = entity('TxRollback', 'id', { id: t.integer(), v: t.string() });
    await a.ensureEntity(E, ROOT_SET);
    await a.ensureEntity(E, 'other');
    await a.importBatch(
      E,
      ROOT_SET,
      [
        { id: 1, v: 'one' },
        { id: 2, v: 'two' },
      ],
      { mode: 'insert' },
    );
    await a.importBatch(E, 'other', [{ id: 9, v: 'nine' }], { mode: 'insert' });
    const boom = new Error('boom');
    await expect(
      a.transaction(async (tx) => {
        await tx.importBatch(
          E,
          ROOT_SET,
          [
            { id: 1, v: 'changed' },
            { id: 3, v: 'new' },
          ],
          { mode: 'upsert' },
        );
        await tx.remove(E, ROOT_SET, [2]);
        await tx.clear(E, 'other');
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await collect(a.exportEntity(E, ROOT_SET))).toEqual([
      { id: 1, v: 'one' },
      { id: 2, v: 'two' },
    ]);
    expect(await a.count(E, 'other')).toBe(1);
  });
}

/** Sets, counts, removal, emptiness, sets never created. */
export function setTests(s: ConformanceSuite): void {
  const { test, entity } = s;
  test('sets are isolated from each other and listed by listSets', async (a, ctx) => {
    if (!a.capabilities.sets) return ctx.skip('adapter declares sets false');
    const E = entity('Sets', 'id', { id: t.integer(), label: t.string() });
    for (const set of [ROOT_SET, 'tenant_a', 'tenant.b-2']) await a.ensureEntity(E, set);
    await a.importBatch(
      E,
      ROOT_SET,
      [1, 2, 3].map((id) => ({ id, label: `r${id}` })),
      { mode: 'insert' },
    );
    await a.importBatch(
      E,
      'tenant_a',
      [1, 10].map((id) => ({ id, label: `a${id}` })),
      { mode: 'insert' },
    );
    expect(await a.count(E, ROOT_SET)).toBe(3);
    expect(await a.count(E, 'tenant_a')).toBe(2);
    expect(await a.count(E, 'tenant.b-2')).toBe(0);
    expect(await a.get(E, ROOT_SET, 10)).toBeUndefined();
    expect((await a.get(E, 'tenant_a', 1))?.label).toBe('a1');
    expect((await a.get(E, ROOT_SET, 1))?.label).toBe('r1');
    expect((await a.listSets(E)).sort()).toEqual([ROOT_SET, 'tenant.b-2', 'tenant_a'].sort());
    expect([2, -1]).toContain(await a.clear(E, 'tenant_a'));
    expect(await a.count(E, 'tenant_a')).toBe(0);
    expect(await collect(a.exportEntity(E, 'tenant_a'))).toEqual([]);
    expect(await a.count(E, ROOT_SET)).toBe(3);
  });

  test('count, remove and clear', async (a) => {
    const E = entity('Remove', 'id', { id: t.integer(), v: t.integer() });
    await a.ensureEntity(E, ROOT_SET);
    await a.importBatch(
      E,
      ROOT_SET,
      range(10).map((id) => ({ id, v: id })),
      { mode: 'insert' },
    );
    expect(await a.count(E, ROOT_SET)).toBe(10);
    expect(await a.remove(E, ROOT_SET, [1, 2, 999])).toBe(2);
    expect(await a.count(E, ROOT_SET)).toBe(8);
    expect(await a.get(E, ROOT_SET, 1)).toBeUndefined();
    expect(await a.remove(E, ROOT_SET, [])).toBe(0);
    expect([8, -1]).toContain(await a.clear(E, ROOT_SET));
    expect(await a.count(E, ROOT_SET)).toBe(0);
    expect(await collect(a.exportEntity(E, ROOT_SET))).toEqual([]);
    await a.importBatch(E, ROOT_SET, [{ id: 1, v: 1 }], { mode: 'insert' });
    expect(await a.count(E, ROOT_SET)).toBe(1);
  });

  test('hasRecords, where offered, agrees with count: missing table, empty set, one record, cleared', async (a, ctx) => {
    if (!a.hasRecords) return ctx.skip('the adapter has no hasRecords probe');
    const E = entity('Probe', 'id', { id: t.integer(), v: t.string() });
    expect(await a.hasRecords(E, ROOT_SET)).toBe(false);
    await a.ensureEntity(E, ROOT_SET);
    expect(await a.hasRecords(E, ROOT_SET)).toBe(false);
    await a.importBatch(E, ROOT_SET, [{ id: 7, v: 'x' }], { mode: 'insert' });
    expect(await a.hasRecords(E, ROOT_SET)).toBe(true);
    await a.clear(E, ROOT_SET);
    expect(await a.hasRecords(E, ROOT_SET)).toBe(false);
  });

  test('reading a set that was never created finds nothing and creates nothing (backups write nothing)', async (a) => {
    const E = entity('NeverMade', 'id', { id: t.integer(), v: t.string() });
    const drain = async (it: AsyncIterable<unknown> | undefined) => {
      let n = 0;
      for await (const _ of it ?? []) n++;
      return n;
    };
    const reads = async (r: DataReader) => {
      expect(await r.count(E, ROOT_SET)).toBe(0);
      expect(await drain(r.exportEntity(E, ROOT_SET))).toBe(0);
      if (r.exportJsonLines && (r.jsonLinesSupported?.(E) ?? true))
        expect(await drain(r.exportJsonLines(E, ROOT_SET))).toBe(0);
    };
    await reads(a);
    await a.readSnapshot(reads);
    expect(await a.getMany(E, ROOT_SET, [1, 2])).toEqual([]);
    expect(await a.get(E, ROOT_SET, 1)).toBeUndefined();
    expect(await a.describe(E, ROOT_SET)).toMatchObject({ exists: false });
    expect(await a.listSets(E)).toEqual([]);
  });
}

/** `get`, `getMany` and `describe`. */
export function readTests(s: ConformanceSuite): void {
  const { test, entity } = s;
  test('get and getMany keep the order of keys and skip missing ones', async (a) => {
    const E = entity('GetMany', 'id', { id: t.string(), v: t.integer() });
    await a.ensureEntity(E, ROOT_SET);
    await a.importBatch(
      E,
      ROOT_SET,
      ['k1', 'k2', 'k3', 'k5'].map((id, v) => ({ id, v })),
      { mode: 'insert' },
    );
    expect(await a.get(E, ROOT_SET, 'k2')).toEqual({ id: 'k2', v: 1 });
    expect(await a.get(E, ROOT_SET, 'k4')).toBeUndefined();
    const many = await a.getMany(E, ROOT_SET, ['k5', 'nope', 'k1', 'k3']);
    expect(many.map((r) => r.id)).toEqual(['k5', 'k1', 'k3']);
    expect(await a.getMany(E, ROOT_SET, [])).toEqual([]);
  });

  test('describe reports existence, columns and primary key', async (a) => {
    const E = entity('Describe', 'code', { code: t.string(), qty: t.integer(), note: t.string().nullable() });
    await a.ensureEntity(E, ROOT_SET);
    await a.ensureEntity(E, ROOT_SET); // idempotent
    const d = await a.describe(E, ROOT_SET);
    expect(d.exists).toBe(true);
    expect(d.provider).toBe(a.provider);
    expect(typeof d.location).toBe('string');
    expect(d.primaryKey).toEqual(['code']);
    if (d.columns.length)
      for (const name of Object.keys(E.fields)) expect(d.columns.map((c) => c.name)).toContain(name);
    expect((await a.describe(E, 'never_created')).exists).toBe(false);
  });
}

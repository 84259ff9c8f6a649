import { randomBytes } from 'node:crypto';
import { type DataAdapter, DataError, type DataRecord, DataRuntime, type EntitySchema, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { describeAdapterConformance, describeSingleKeyStore, probeService, serviceUrls } from '@koan/data/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisAdapter, provider } from '../src/index.js';

const prefix = `koan_test_${randomBytes(6).toString('hex')}`;
const skip = await probeService('redis', async () => {
  const probe = new Redis(serviceUrls.redis, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    await probe.ping();
  } finally {
    probe.disconnect();
  }
});

async function deleteKeys(pattern: string): Promise<void> {
  const raw = new Redis(serviceUrls.redis);
  try {
    let cursor = '0';
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await raw.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length > 0) await raw.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  } finally {
    raw.disconnect();
  }
}

const conformancePrefix = `${prefix}_conf`;
describeAdapterConformance({
  name: 'redis',
  create: async () => createRedisAdapter({ url: serviceUrls.redis, keyPrefix: conformancePrefix }),
  destroy: () => deleteKeys(`${conformancePrefix}:*`),
  skip: async () => skip,
});
describeSingleKeyStore({
  name: 'redis',
  create: async () => createRedisAdapter({ url: serviceUrls.redis, keyPrefix: `${conformancePrefix}_single` }),
  destroy: () => deleteKeys(`${conformancePrefix}_single:*`),
  skip: async () => skip,
  json: 'values',
});

const Everything = buildSchema(
  {
    name: 'Everything',
    key: 'id',
    fields: {
      id: t.string(),
      uuid: t.uuid().optional(),
      int: t.integer(),
      num: t.number(),
      big: t.bigint(),
      dec: t.decimal(),
      flag: t.boolean(),
      at: t.datetime(),
      day: t.date(),
      doc: t.json().nullable(),
      bytes: t.binary(),
      vec: t.vector(3),
      note: t.string().optional().nullable(),
    },
  },
  'declared',
);
const Counter = buildSchema({ name: 'Counter', key: 'n', fields: { n: t.integer(), label: t.string() } }, 'declared');
const Session = buildSchema(
  {
    name: 'Session',
    key: 'id',
    fields: { id: t.string(), user: t.string(), expiresAt: t.datetime().optional().ttl() },
  },
  'declared',
);

function everything(id: string, i: number): DataRecord {
  return {
    id,
    int: i,
    num: i === 0 ? -0 : i === 1 ? Number.NaN : i / 3,
    big: 2n ** 62n + BigInt(i),
    dec: '12345678901234567890.1234567890',
    flag: i % 2 === 0,
    at: '2024-05-01T10:00:00.123456Z',
    day: '2024-02-29',
    doc: i === 2 ? null : { nested: [1, 'two', { three: true }] },
    bytes: new Uint8Array([0, 255, i & 255]),
    vec: new Float32Array([-0, 1.401298464324817e-45, Math.fround(i / 7)]),
    ...(i === 3 ? { uuid: '6f9619ff-8b86-d011-b42d-00c04fc964ff', note: null } : {}),
  };
}

async function drain(
  adapter: DataAdapter,
  entity: EntitySchema,
  set = 'root',
  batchSize = 1000,
): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of adapter.exportEntity(entity, set, { batchSize })) out.push(...batch);
  return out;
}

describe.skipIf(skip !== undefined)('redis adapter', () => {
  let adapter: DataAdapter;
  let raw: Redis;

  beforeAll(async () => {
    raw = new Redis(serviceUrls.redis);
    adapter = createRedisAdapter({ url: serviceUrls.redis, keyPrefix: prefix });
    await adapter.init();
  });

  afterAll(async () => {
    await adapter?.close();
    raw?.disconnect();
    if (!skip) await deleteKeys(`${prefix}:*`);
  });

  it('declares fuzzy reads, no transactions, native upsert and TTL', async () => {
    expect(adapter.capabilities).toMatchObject({
      snapshotReads: false,
      transactions: false,
      nativeUpsert: true,
      ttl: true,
      orderedStreaming: true,
    });
    expect(await adapter.readSnapshot(async (reader) => reader.consistency)).toBe('fuzzy');
    expect(provider.name).toBe('redis');
  });

  it('is loaded by the data runtime from its provider name', async () => {
    const runtime = new DataRuntime({
      sources: { cache: { provider: 'redis', settings: { url: serviceUrls.redis, keyPrefix: prefix } } },
    });
    try {
      const loaded = await runtime.adapter('cache');
      expect(loaded.provider).toBe('redis');
      expect(await loaded.count(Counter, 'never')).toBe(0);
    } finally {
      await runtime.close();
    }
    expect(() => provider.create({ db: 'one' }, { source: 'cache', cwd: '.' })).toThrow(
      '`db` must be a non-negative integer',
    );
  });

  it('round-trips every field type exactly', async () => {
    const records = [0, 1, 2, 3, 4].map((i) => everything(`k${i}`, i));
    expect(await adapter.importBatch(Everything, 'root', records, { mode: 'insert' })).toEqual({
      inserted: 5,
      updated: 0,
    });
    const back = await drain(adapter, Everything);
    expect(back).toEqual(records);
    const vec = back[0]?.vec as Float32Array;
    expect(Buffer.from(vec.buffer, vec.byteOffset, vec.byteLength)).toEqual(
      Buffer.from((records[0]!.vec as Float32Array).buffer),
    );
    expect(Object.is(back[0]?.num, -0)).toBe(true);
    expect(back[1]?.num).toBeNaN();
    expect(back[3]).toHaveProperty('note', null);
    expect(back[0]).not.toHaveProperty('note');
  });

  it('streams string keys in UTF-8 byte order and integer keys numerically', async () => {
    const strings = ['b', 'a', 'ab', '\uff5e', '\u{1f600}', 'Z', ''];
    const S = buildSchema({ name: 'Keys', key: 'id', fields: { id: t.string() } }, 'declared');
    await adapter.importBatch(
      S,
      'root',
      strings.map((id) => ({ id })),
      { mode: 'upsert' },
    );
    const order = (await drain(adapter, S, 'root', 2)).map((r) => r.id);
    expect(order).toEqual([...strings].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(order.indexOf('\uff5e')).toBeLessThan(order.indexOf('\u{1f600}'));

    const ints = [10, -5, 2, 9_007_199_254_740_991, -9_007_199_254_740_991, 0, 100];
    await adapter.importBatch(
      Counter,
      'root',
      ints.map((n) => ({ n, label: `#${n}` })),
      { mode: 'upsert' },
    );
    expect((await drain(adapter, Counter, 'root', 3)).map((r) => r.n)).toEqual([...ints].sort((a, b) => a - b));
  });

  it('insert mode fails the whole batch on an existing key with DUPLICATE_KEY', async () => {
    await adapter.importBatch(Counter, 'dup', [{ n: 1, label: 'one' }], { mode: 'insert' });
    const attempt = adapter.importBatch(
      Counter,
      'dup',
      [
        { n: 2, label: 'two' },
        { n: 1, label: 'again' },
      ],
      { mode: 'insert' },
    );
    await expect(attempt).rejects.toMatchObject({ code: 'DUPLICATE_KEY' });
    await expect(attempt).rejects.toBeInstanceOf(DataError);
    expect(await adapter.count(Counter, 'dup')).toBe(1);
    expect(await adapter.get(Counter, 'dup', 2)).toBeUndefined();
    await expect(
      adapter.importBatch(
        Counter,
        'dup',
        [
          { n: 3, label: 'x' },
          { n: 3, label: 'y' },
        ],
        { mode: 'insert' },
      ),
    ).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
    });
    expect(
      await adapter.importBatch(
        Counter,
        'dup',
        [
          { n: 1, label: 'uno' },
          { n: 4, label: 'four' },
        ],
        { mode: 'upsert' },
      ),
    ).toEqual({
      inserted: 1,
      updated: 1,
    });
    expect(await adapter.get(Counter, 'dup', 1)).toEqual({ n: 1, label: 'uno' });
  });

  it('keeps records under the documented key scheme', async () => {
    await adapter.importBatch(Counter, 'scheme', [{ n: 7, label: 'seven' }], { mode: 'upsert' });
    const base = `${prefix}:Counter:scheme`;
    expect(JSON.parse((await raw.get(`${base}:r:7`)) ?? 'null')).toEqual({ n: 7, label: 'seven' });
    expect(await raw.zscore(`${base}:idx`, '7')).toBe('7');
    expect(await raw.sismember(`${prefix}:Counter:sets`, 'scheme')).toBe(1);
    const description = await adapter.describe(Counter, 'scheme');
    expect(description).toMatchObject({ provider: 'redis', location: base, exists: true, primaryKey: ['n'] });
    expect(description.extra?.records).toBe(1);
    expect(await adapter.listSets(Counter)).toEqual(expect.arrayContaining(['root', 'dup', 'scheme']));
  });

  it('gets, gets many in key order given, removes and clears', async () => {
    const records = Array.from({ length: 25 }, (_, n) => ({ n, label: `l${n}` }));
    await adapter.importBatch(Counter, 'crud', records, { mode: 'upsert' });
    expect(await adapter.get(Counter, 'crud', 3)).toEqual({ n: 3, label: 'l3' });
    expect((await adapter.getMany(Counter, 'crud', [5, 99, 1])).map((r) => r.n)).toEqual([5, 1]);
    expect(await adapter.remove(Counter, 'crud', [1, 2, 99])).toBe(2);
    expect(await adapter.count(Counter, 'crud')).toBe(23);
    expect(await adapter.clear(Counter, 'crud')).toBe(23);
    expect(await adapter.count(Counter, 'crud')).toBe(0);
    expect(await raw.exists(`${prefix}:Counter:crud:idx`, `${prefix}:Counter:crud:r:3`)).toBe(0);
  });

  it('preserves TTLs through export, clear and import', async () => {
    const inAnHour = new Date(Date.now() + 3_600_000);
    const expiresAt = `${inAnHour.toISOString().slice(0, 23)}456Z`;
    await adapter.importBatch(
      Session,
      'root',
      [
        { id: 's1', user: 'ann', expiresAt },
        { id: 's2', user: 'bob' },
      ],
      { mode: 'upsert' },
    );
    const key = `${prefix}:Session:root:r:s1`;
    expect(await raw.pexpiretime(key)).toBe(inAnHour.getTime());
    expect(await raw.pttl(`${prefix}:Session:root:r:s2`)).toBe(-1);

    // An expiry changed behind the adapter's back is what export reports.
    const later = inAnHour.getTime() + 60_000;
    await raw.pexpireat(key, later);
    const exported = await drain(adapter, Session);
    expect(exported).toEqual([
      { id: 's1', user: 'ann', expiresAt: `${new Date(later).toISOString().slice(0, 23)}000Z` },
      { id: 's2', user: 'bob' },
    ]);

    const remainingBefore = await raw.pttl(key);
    expect(await adapter.clear(Session, 'root')).toBe(2);
    expect(await adapter.importBatch(Session, 'root', exported, { mode: 'insert' })).toEqual({
      inserted: 2,
      updated: 0,
    });
    expect(await raw.pexpiretime(key)).toBe(later);
    const remainingAfter = await raw.pttl(key);
    expect(Math.abs(remainingBefore - remainingAfter)).toBeLessThan(60_000);
    expect(await adapter.get(Session, 'root', 's1')).toEqual(exported[0]);
  });

  it('drops expired records from counts and streams, and does not restore already-expired ones', async () => {
    const soon = new Date(Date.now() + 50).toISOString();
    const written = await adapter.importBatch(
      Session,
      'expiry',
      [
        { id: 'a', user: 'u', expiresAt: soon },
        { id: 'b', user: 'u' },
        { id: 'c', user: 'u', expiresAt: '2000-01-01T00:00:00.000000Z' },
      ],
      { mode: 'upsert' },
    );
    // The record whose time had passed is reported, so a restore can account for it.
    expect(written).toEqual({ inserted: 2, updated: 0, expired: 1 });
    for (let i = 0; i < 100 && (await raw.exists(`${prefix}:Session:expiry:r:a`)) === 1; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(await adapter.count(Session, 'expiry')).toBe(1);
    expect((await drain(adapter, Session, 'expiry')).map((r) => r.id)).toEqual(['b']);
    expect(await raw.zcard(`${prefix}:Session:expiry:idx`)).toBe(1);
    expect(await raw.zcard(`${prefix}:Session:expiry:exp`)).toBe(0);
  });

  it('pipelines 10k records in and out, batch by batch', async () => {
    const total = 10_000;
    let inserted = 0;
    for (let start = 0; start < total; start += 1000) {
      const batch = Array.from({ length: 1000 }, (_, i) => ({ n: start + i, label: `row ${start + i}` }));
      inserted += (await adapter.importBatch(Counter, 'bulk', batch, { mode: 'insert', bulk: true })).inserted;
    }
    expect(inserted).toBe(total);
    expect(await adapter.count(Counter, 'bulk')).toBe(total);
    let seen = 0;
    let batches = 0;
    let previous = -1;
    for await (const batch of adapter.exportEntity(Counter, 'bulk', { batchSize: 2500 })) {
      batches++;
      for (const r of batch) {
        expect(r.n as number).toBeGreaterThan(previous);
        previous = r.n as number;
      }
      seen += batch.length;
    }
    expect(seen).toBe(total);
    expect(batches).toBe(4);
  });

  it('stops streaming on break and on abort', async () => {
    for (let i = 0; i < 20; i++) {
      for await (const batch of adapter.exportEntity(Counter, 'bulk', { batchSize: 10 })) {
        expect(batch).toHaveLength(10);
        break;
      }
    }
    const controller = new AbortController();
    const consume = async () => {
      for await (const _ of adapter.exportEntity(Counter, 'bulk', { batchSize: 10, signal: controller.signal }))
        controller.abort();
    };
    await expect(consume()).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('runs transaction() directly: earlier batches stay when fn throws', async () => {
    await expect(
      adapter.transaction(async (writer) => {
        await writer.importBatch(Counter, 'tx', [{ n: 1, label: 'kept' }], { mode: 'upsert' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await adapter.count(Counter, 'tx')).toBe(1);
  });
});

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DataAdapter, type DataRecord, DataRuntime, type EntitySchema, JsonText, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { describeAdapterConformance, describeSingleKeyStore } from '@koan/data/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLanceDbAdapter, lanceTableName, provider } from '../src/index.js';

const conformanceDirs = new Map<DataAdapter, string>();
const harness = {
  name: 'lancedb',
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'koan-lancedb-conf-'));
    const adapter = createLanceDbAdapter({ uri: dir });
    conformanceDirs.set(adapter, dir);
    return adapter;
  },
  destroy: async (adapter: DataAdapter) => {
    const dir = conformanceDirs.get(adapter);
    if (dir) await rm(dir, { recursive: true, force: true });
  },
};
describeAdapterConformance(harness);
// LanceDB keeps json as Utf8 text: exactly as given.
describeSingleKeyStore({ ...harness, json: 'text' });

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
      note: t.string().nullable(),
    },
  },
  'declared',
);
const Doc = buildSchema(
  {
    name: 'Doc',
    key: 'n',
    fields: { n: t.integer(), title: t.string(), embedding: t.vector(8, { metric: 'cosine' }).optional() },
  },
  'declared',
);

function everything(id: string, i: number): DataRecord {
  return {
    id,
    int: i - 2,
    num: i === 0 ? -0 : i === 1 ? Number.NaN : i / 3,
    big: -(2n ** 63n) + BigInt(i),
    dec: '12345678901234567890.1234567890',
    flag: i % 2 === 0,
    at: '2024-05-01T10:00:00.123456Z',
    day: '2024-02-29',
    doc: i === 2 ? null : { nested: [1, 'two', { three: true }] },
    bytes: new Uint8Array([0, 255, i & 255]),
    vec: new Float32Array([-0, 1.401298464324817e-45, Math.fround(i / 7)]),
    note: i === 3 ? 'n' : null,
    ...(i === 3 ? { uuid: '6f9619ff-8b86-d011-b42d-00c04fc964ff' } : {}),
  };
}

function bytesOf(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
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

describe('lancedb adapter', () => {
  let dir: string;
  let adapter: DataAdapter;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'koan-lancedb-'));
    adapter = provider.create({ uri: 'db' }, { source: 'vectors', cwd: dir });
    await adapter.init();
  });

  afterAll(async () => {
    await adapter?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('refuses, by name and before anything is written, an unsigned bigint beyond 2^63-1 and a lone surrogate; keeps json text exactly', async () => {
    const U = buildSchema(
      {
        name: 'Unsigned',
        key: 'id',
        fields: {
          id: t.integer().spec,
          u: { ...t.bigint().spec, unsigned: true },
          s: t.string().spec,
          j: t.json().nullable().spec,
        },
      },
      'declared',
    );
    await adapter.ensureEntity(U, 'root');
    const ok = { id: 1, u: 2n ** 63n - 1n, s: 'ok', j: JsonText.parse(' {"b":1.10,"a":1e400,"a":null} ') };
    for (const [bad, why] of [
      [
        { id: 2, u: 2n ** 64n - 1n, s: 'x', j: null },
        /Unsigned\.u of record 2: 18446744073709551615 is beyond LanceDB's signed 64-bit Int64/,
      ],
      [{ id: 3, u: 0n, s: 'a\ud800b', j: null }, /Unsigned\.s of record 3: it holds a lone UTF-16 surrogate/],
      [{ id: 4, u: 0n, s: 'x', j: new JsonText('{"a":') }, /Unsigned\.j of record 4: it is not JSON text/],
    ] as const) {
      await expect(adapter.importBatch(U, 'root', [ok, bad], { mode: 'insert' })).rejects.toMatchObject({
        code: 'UNSUPPORTED_VALUE',
        message: expect.stringMatching(why),
      });
      expect(await adapter.count(U, 'root')).toBe(0);
    }
    await adapter.importBatch(U, 'root', [ok], { mode: 'insert' });
    const [exact] = await all(adapter.exportEntity(U, 'root', { exactJson: true }));
    expect((exact!.j as JsonText).text).toBe(' {"b":1.10,"a":1e400,"a":null} ');
    expect(exact!.u).toBe(2n ** 63n - 1n);
  });

  it('declares per-version snapshot reads, native upsert and no transactions', async () => {
    expect(provider.name).toBe('lancedb');
    expect(adapter.capabilities).toMatchObject({
      snapshotReads: true,
      transactions: false,
      nativeUpsert: true,
      orderedStreaming: true,
      ttl: false,
    });
    expect(await adapter.readSnapshot(async (reader) => reader.consistency)).toBe('snapshot');
    expect(() => createLanceDbAdapter({ uri: '' })).toThrow('Missing required option `uri`');
  });

  it('is loaded by the data runtime from its provider name, with uri relative to cwd', async () => {
    const runtime = new DataRuntime({
      sources: { vectors: { provider: 'lancedb', settings: { uri: 'rt' } } },
      cwd: dir,
    });
    try {
      const loaded = await runtime.adapter('vectors');
      expect(loaded.provider).toBe('lancedb');
      // Opening and reading a database directory that does not exist yet create nothing (a backup or a dry run
      // leaves no trace); the first table creates it.
      expect(await loaded.count(Doc, 'root')).toBe(0);
      expect(await loaded.listSets(Doc)).toEqual([]);
      expect(await loaded.readSnapshot(async (r) => r.count(Doc, 'root'))).toBe(0);
      expect(existsSync(join(dir, 'rt'))).toBe(false);
      await loaded.ensureEntity(Doc, 'root');
      expect(existsSync(join(dir, 'rt'))).toBe(true);
      expect(await loaded.describe(Doc, 'root')).toMatchObject({ exists: true, location: 'Doc' });
    } finally {
      await runtime.close();
    }
  });

  it('round-trips every field type exactly', async () => {
    const records = [0, 1, 2, 3, 4].map((i) => everything(`k${i}`, i));
    expect(await adapter.importBatch(Everything, 'root', records, { mode: 'insert' })).toEqual({
      inserted: 5,
      updated: 0,
    });
    const back = await drain(adapter, Everything);
    expect(back).toEqual(records);
    expect(Object.is(back[0]?.num, -0)).toBe(true);
    expect(back[1]?.num).toBeNaN();
    expect(back[0]?.big).toBe(-(2n ** 63n));
    expect(back[3]).toHaveProperty('uuid');
    expect(back[0]).not.toHaveProperty('uuid');
  });

  it('stores float32 vectors bit for bit: -0, subnormals, extremes, infinities and random bit patterns', async () => {
    const special = new Float32Array(8);
    const view = new DataView(special.buffer);
    const patterns = [0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000];
    for (const [i, bits] of patterns.entries()) view.setUint32(i * 4, bits, true);
    const records: DataRecord[] = [{ n: 0, title: 'special', embedding: special }];
    for (let n = 1; n <= 200; n++) {
      const raw = randomBytes(32);
      // NaN exponent bits (all ones with a non-zero fraction) become infinities: LanceDB rejects NaN.
      const embedding = new Float32Array(raw.buffer, raw.byteOffset, 8).slice();
      embedding.forEach((x, i) => {
        if (Number.isNaN(x)) embedding[i] = i % 2 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
      });
      records.push({ n, title: `r${n}`, embedding });
    }
    records.push({ n: 201, title: 'no vector' });
    await adapter.importBatch(Doc, 'bits', records, { mode: 'insert' });
    const back = await drain(adapter, Doc, 'bits', 64);
    expect(back).toHaveLength(records.length);
    back.forEach((r, i) => {
      const expected = records[i]?.embedding as Float32Array | undefined;
      if (expected) expect(bytesOf(r.embedding as Float32Array)).toEqual(bytesOf(expected));
      else expect(r).not.toHaveProperty('embedding');
    });
  });

  it('rejects NaN in vectors with INVALID_VALUE before writing (LanceDB does not store it)', async () => {
    const embedding = new Float32Array(8).fill(1);
    embedding[3] = Number.NaN;
    await expect(
      adapter.importBatch(Doc, 'nan', [{ n: 1, title: 'nan', embedding }], { mode: 'upsert' }),
    ).rejects.toMatchObject({
      code: 'INVALID_VALUE',
    });
    expect(await adapter.listSets(Doc)).not.toContain('nan');
  });

  it('streams string keys in UTF-8 byte order and integer keys numerically', async () => {
    const Keys = buildSchema({ name: 'Keys', key: 'id', fields: { id: t.string() } }, 'declared');
    const strings = ['b', 'a', 'ab', '\uff5e', '\u{1f600}', 'Z', '', "it's"];
    await adapter.importBatch(
      Keys,
      'root',
      strings.map((id) => ({ id })),
      { mode: 'upsert' },
    );
    const order = (await drain(adapter, Keys, 'root', 2)).map((r) => r.id);
    expect(order).toEqual([...strings].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));

    const ints = [10, -5, 2, 9_007_199_254_740_991, -9_007_199_254_740_991, 0, 100];
    await adapter.importBatch(
      Doc,
      'ints',
      ints.map((n) => ({ n, title: `#${n}` })),
      { mode: 'upsert' },
    );
    expect((await drain(adapter, Doc, 'ints', 3)).map((r) => r.n)).toEqual([...ints].sort((a, b) => a - b));
  });

  it('keeps a table per entity set, naming sets Entity.set', async () => {
    await adapter.ensureEntity(Doc, 'root');
    expect(lanceTableName(Doc, 'archive-2024')).toBe('Doc.archive-2024');
    expect(await adapter.listSets(Doc)).toEqual(expect.arrayContaining(['root', 'bits', 'ints']));
  });

  it('insert mode fails on an existing or repeated key without writing; upsert merges', async () => {
    await adapter.importBatch(Doc, 'dup', [{ n: 1, title: 'one' }], { mode: 'insert' });
    await expect(
      adapter.importBatch(
        Doc,
        'dup',
        [
          { n: 2, title: 'two' },
          { n: 1, title: 'again' },
        ],
        { mode: 'insert' },
      ),
    ).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
    });
    await expect(
      adapter.importBatch(
        Doc,
        'dup',
        [
          { n: 3, title: 'x' },
          { n: 3, title: 'y' },
        ],
        { mode: 'insert' },
      ),
    ).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
    });
    expect(await adapter.count(Doc, 'dup')).toBe(1);
    expect(
      await adapter.importBatch(
        Doc,
        'dup',
        [
          { n: 1, title: 'uno' },
          { n: 4, title: 'four' },
        ],
        { mode: 'upsert' },
      ),
    ).toEqual({
      inserted: 1,
      updated: 1,
    });
    expect(await adapter.get(Doc, 'dup', 1)).toEqual({ n: 1, title: 'uno' });
  });

  it('bulk-loads into an empty table with add', async () => {
    const records = Array.from({ length: 3000 }, (_, n) => ({ n, title: `t${n}` }));
    expect(await adapter.importBatch(Doc, 'bulk', records, { mode: 'upsert', bulk: true })).toEqual({
      inserted: 3000,
      updated: 0,
    });
    expect(await adapter.importBatch(Doc, 'bulk', records.slice(0, 10), { mode: 'upsert', bulk: true })).toEqual({
      inserted: 0,
      updated: 10,
    });
    expect(await adapter.count(Doc, 'bulk')).toBe(3000);
  });

  it('gets, gets many in the order given, removes and clears', async () => {
    await adapter.importBatch(
      Doc,
      'crud',
      Array.from({ length: 25 }, (_, n) => ({ n, title: `l${n}` })),
      { mode: 'upsert' },
    );
    expect(await adapter.get(Doc, 'crud', 3)).toEqual({ n: 3, title: 'l3' });
    expect(await adapter.get(Doc, 'missing', 3)).toBeUndefined();
    expect((await adapter.getMany(Doc, 'crud', [5, 99, 1])).map((r) => r.n)).toEqual([5, 1]);
    expect(await adapter.remove(Doc, 'crud', [1, 2, 99])).toBe(2);
    expect(await adapter.clear(Doc, 'crud')).toBe(23);
    expect(await adapter.count(Doc, 'crud')).toBe(0);
  });

  it('reads a pinned table version: writes after the snapshot starts are not seen', async () => {
    await adapter.importBatch(
      Doc,
      'snap',
      [
        { n: 1, title: 'before' },
        { n: 2, title: 'before' },
      ],
      { mode: 'upsert' },
    );
    const seen = await adapter.readSnapshot(async (reader) => {
      await adapter.importBatch(
        Doc,
        'snap',
        [
          { n: 2, title: 'after' },
          { n: 3, title: 'after' },
        ],
        { mode: 'upsert' },
      );
      await adapter.importBatch(Doc, 'snap-new', [{ n: 1, title: 'after' }], { mode: 'upsert' });
      const records: DataRecord[] = [];
      for await (const batch of reader.exportEntity(Doc, 'snap', { batchSize: 1 })) records.push(...batch);
      return { records, count: await reader.count(Doc, 'snap'), newSet: await reader.count(Doc, 'snap-new') };
    });
    expect(seen).toEqual({
      records: [
        { n: 1, title: 'before' },
        { n: 2, title: 'before' },
      ],
      count: 2,
      newSet: 0,
    });
    expect(await adapter.count(Doc, 'snap')).toBe(3);
  });

  it('describes the Arrow schema with the vector dimension and metric', async () => {
    const description = await adapter.describe(Doc, 'bits');
    expect(description).toMatchObject({ provider: 'lancedb', location: 'Doc.bits', exists: true, primaryKey: ['n'] });
    expect(description.columns).toEqual([
      { name: 'n', storeType: 'Int64', nullable: false },
      { name: 'title', storeType: 'Utf8', nullable: false },
      { name: 'embedding', storeType: expect.stringContaining('FixedSizeList[8]'), nullable: true },
    ]);
    expect(description.extra?.vectors).toEqual([{ field: 'embedding', dimension: 8, metric: 'cosine', index: null }]);
    expect((await adapter.describe(Doc, 'nowhere')).exists).toBe(false);
  });

  it('stops streaming on break and on abort', async () => {
    for (let i = 0; i < 20; i++) {
      for await (const batch of adapter.exportEntity(Doc, 'bulk', { batchSize: 10 })) {
        expect(batch).toHaveLength(10);
        break;
      }
    }
    const controller = new AbortController();
    const consume = async () => {
      for await (const _ of adapter.exportEntity(Doc, 'bulk', { batchSize: 10, signal: controller.signal }))
        controller.abort();
    };
    await expect(consume()).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

async function all(stream: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of stream) out.push(...batch);
  return out;
}

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type DataRecord, type EntitySchema, type FieldsShape, t } from '@koan/data';
import { buildSchema, decodeRecord, encodeRecordLine, normalizeRecord, ROOT_SET } from '@koan/data/adapter-kit';
import {
  abortWhileWaiting,
  describeAdapterConformance,
  expectSameRecord,
  probeService,
  serviceUrls,
  sharedDatasetsDir,
} from '@koan/data/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { createPostgresAdapter, type PostgresAdapter } from '../src/index.js';

const run = promisify(execFile);
const tag = randomBytes(4).toString('hex');
const database = `koan_test_${tag}`;
const dbUrl = (() => {
  const url = new URL(serviceUrls.postgres);
  url.pathname = `/${database}`;
  return url.toString();
})();

let skipReason: string | undefined;
let probed: Promise<string | undefined> | undefined;
let created = false;

/** Probes the server once and creates this run's database. */
function ready(): Promise<string | undefined> {
  probed ??= (async () => {
    const reason = await probeService('postgres', () => admin(serviceUrls.postgres, 'SELECT 1'));
    if (!reason) {
      await admin(serviceUrls.postgres, `CREATE DATABASE ${database}`);
      created = true;
    }
    skipReason = reason;
    return reason;
  })();
  return probed;
}

async function admin(url: string, sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  if (created) await admin(serviceUrls.postgres, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

let schemas = 0;
describeAdapterConformance({
  name: 'postgres',
  create: async () => createPostgresAdapter({ connectionString: dbUrl, schema: `conf_${++schemas}` }),
  destroy: async (adapter) => {
    await admin(dbUrl, `DROP SCHEMA IF EXISTS "${(adapter as PostgresAdapter).schema}" CASCADE`);
  },
  skip: ready,
});

const entity = (name: string, key: string, fields: FieldsShape): EntitySchema =>
  buildSchema({ name, key, fields }, 'declared');

async function collect(stream: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of stream) out.push(...batch);
  return out;
}

async function jsonLines(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    expect(chunk[chunk.length - 1], 'chunks end on a line boundary').toBe(0x0a);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

const AllTypes = entity('AllTypes', 'id', {
  id: t.string(),
  u: t.uuid().nullable(),
  i: t.integer().nullable(),
  n: t.number().nullable(),
  b: t.bigint().nullable(),
  d: t.decimal().nullable(),
  d2: t.decimal(12, 2).nullable(),
  bo: t.boolean().nullable(),
  dt: t.datetime().nullable(),
  da: t.date().nullable(),
  j: t.json().nullable(),
  bin: t.binary().nullable(),
  v: t.vector(3).nullable(),
  opt: t.string().optional(),
  optNull: t.json().optional().nullable(),
});

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.1,
  0.1 + 0.2,
  1 / 3,
  1e-6,
  1.5e-6,
  9.99e-7,
  1e-7,
  1.5e-7,
  123456.789,
  1e15,
  1.5e15,
  1e16,
  1e20,
  1e21,
  1.5e21,
  1e100,
  -1e-100,
  5e-324,
  Number.MAX_VALUE,
  Number.MAX_SAFE_INTEGER,
  2 ** 60,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  4.35,
  0.000001234,
  9.876543210987654e19,
];

function allTypeRecords(): DataRecord[] {
  const bytes = Uint8Array.from({ length: 200 }, (_, i) => (i * 53) % 256);
  return NUMBERS.map((n, i) =>
    normalizeRecord(AllTypes, {
      id: `k${String(i).padStart(2, '0')}`,
      u: i % 2 ? 'F47AC10B-58CC-4372-A567-0E02B2C3D479' : null,
      i: i % 3 ? -(2 ** 53 - 1) + i : 2 ** 53 - 1 - i,
      n,
      b: i % 2 ? 2n ** 63n - 1n - BigInt(i) : -(2n ** 63n) + BigInt(i),
      d: i % 2 ? '123456789012345678901234567890.123456789012' : '-0.000000000000000000000000000000001',
      d2: '1234567890.12',
      bo: i % 2 === 0,
      dt: `2024-05-01T10:00:00.${String(i * 31).padStart(6, '0')}Z`,
      da: '2024-02-29',
      j: { name: 'ü 😀 "q" \\ \n\t\u0001', list: [1, -2.5, true, null, { deep: ['x'] }], empty: {}, none: [] },
      bin: i % 4 === 3 ? new Uint8Array(0) : bytes.subarray(0, i * 6),
      v: Float32Array.from([i / 7, -0, i === 5 ? Number.NaN : 3.4028234663852886e38]),
      ...(i % 3 === 0 ? {} : { opt: `line1\nline2\r\u2028\u007f\t"x" \\ é中😀 ${i}` }),
      ...(i % 3 === 1 ? {} : { optNull: i % 2 ? null : ['a', { b: 1 }] }),
    }),
  );
}

describe('postgres adapter', () => {
  let adapter: PostgresAdapter;
  let schema: string;

  beforeAll(async () => {
    if (await ready()) return;
    schema = `koan_${tag}`;
    adapter = createPostgresAdapter({ connectionString: dbUrl, schema, poolSize: 4 });
    await adapter.init();
  });

  afterAll(async () => {
    await adapter?.close();
  });

  const test = (name: string, fn: (ctx: TestContext) => Promise<void>, timeout?: number) =>
    it(
      name,
      async (ctx) => {
        if (skipReason) return ctx.skip(skipReason);
        await fn(ctx);
      },
      timeout,
    );

  test('a schema that does not exist is not created by opening or reading, only by the first table', async () => {
    const absent = `${schema}_later`;
    const a = createPostgresAdapter({ connectionString: dbUrl, schema: absent });
    await a.init();
    const exists = async () =>
      (await adapter.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [absent])).rowCount === 1;
    try {
      expect(await a.count(AllTypes, ROOT_SET)).toBe(0);
      expect(await a.listSets(AllTypes)).toEqual([]);
      expect(await a.readSnapshot(async (r) => r.count(AllTypes, ROOT_SET))).toBe(0);
      // Other schemas' tables are found (with their namespace); none in the schema that does not exist.
      expect((await a.introspect()).entities.filter((e) => e.namespace === undefined)).toEqual([]);
      expect(await exists()).toBe(false);
      await a.ensureEntity(AllTypes, ROOT_SET);
      expect(await exists()).toBe(true);
    } finally {
      await a.close();
      await adapter.pool.query(`DROP SCHEMA IF EXISTS "${absent}" CASCADE`);
    }
  });

  test('a string holding U+0000 is refused before writing, naming the field and the key (records and archive lines)', async () => {
    const Nul = buildSchema({ name: 'NulText', key: 'id', fields: { id: t.integer(), s: t.string() } }, 'declared');
    await adapter.ensureEntity(Nul, ROOT_SET);
    for (const bulk of [false, true]) {
      const err = await adapter
        .importBatch(
          Nul,
          ROOT_SET,
          [
            { id: 1, s: 'fine' },
            { id: 2, s: 'a\u0000b' },
          ],
          { mode: 'insert', bulk },
        )
        .catch((e) => e);
      expect(err).toMatchObject({ code: 'UNSUPPORTED_VALUE', details: { field: 's', key: 2 } });
      expect(err.message).toMatch(/U\+0000.*t\.binary\(\)/);
    }
    const lines = await adapter
      .importJsonLines(Nul, ROOT_SET, ['{"id":1,"s":"fine"}', '{"id":2,"s":"a\\u0000b"}'], {
        mode: 'insert',
        bulk: true,
      })
      .catch((e) => e);
    expect(lines).toMatchObject({ code: 'UNSUPPORTED_VALUE', details: { field: 's', line: 1 } });
    expect(await adapter.count(Nul, ROOT_SET)).toBe(0);
  });

  test('maps every field type to its documented column type', async () => {
    await adapter.ensureEntity(AllTypes, ROOT_SET);
    const d = await adapter.describe(AllTypes, ROOT_SET);
    const types = Object.fromEntries(d.columns.map((c) => [c.name, c.storeType]));
    expect(types).toMatchObject({
      id: 'text',
      u: 'uuid',
      i: 'bigint',
      n: 'double precision',
      b: 'bigint',
      d: 'numeric',
      d2: 'numeric(12,2)',
      bo: 'boolean',
      dt: 'timestamp with time zone',
      da: 'date',
      j: 'json',
      bin: 'bytea',
      v: 'bytea',
      opt: 'text',
      optNull: 'json',
      _koan_absent: 'text[]',
    });
    expect(d.primaryKey).toEqual(['id']);
    expect(d.location).toBe(`${schema}.AllTypes`);
  });

  test('microsecond timestamptz, 40-digit numeric, jsonb, bytea and float32 vectors round-trip exactly', async () => {
    await adapter.ensureEntity(AllTypes, 'exact');
    const want = allTypeRecords();
    await adapter.importBatch(AllTypes, 'exact', want, { mode: 'insert' });
    const got = await collect(adapter.exportEntity(AllTypes, 'exact', { batchSize: 7 }));
    expect(got).toHaveLength(want.length);
    got.forEach((g, i) => {
      expectSameRecord(AllTypes, g, want[i]!, `export[${i}]`);
    });
    expect(got[3]?.dt).toBe('2024-05-01T10:00:00.000093Z');
    expect(got[1]?.d).toBe('123456789012345678901234567890.123456789012');
    expect(got[0]?.j).toEqual(want[0]?.j);
  });

  test('exportJsonLines bytes equal encodeRecordLine of exportEntity records, for every type', async () => {
    await adapter.ensureEntity(AllTypes, 'lines');
    const want = allTypeRecords();
    await adapter.importBatch(AllTypes, 'lines', want, { mode: 'insert', bulk: true });
    const records = await collect(adapter.exportEntity(AllTypes, 'lines'));
    const expected = records.map((r) => `${encodeRecordLine(AllTypes, r, 'text')}\n`).join('');
    expect(await jsonLines(adapter.exportJsonLines(AllTypes, 'lines'))).toBe(expected);
  });

  test('json columns Koan creates keep the exact text: exportJsonLines gives it as written (key order, number spelling)', async () => {
    const E = entity('JsonExact', 'id', { id: t.integer(), j: t.json() });
    await adapter.ensureEntity(E, ROOT_SET);
    const want = [
      { id: 1, j: { b: 1, 10: 'ten', 2: 'two', a: [1.5e-7, 1e21, 12345678.5] } },
      { id: 2, j: { 'long key': 1, s: 2 } },
    ].map((r) => normalizeRecord(E, r));
    await adapter.importBatch(E, ROOT_SET, want, { mode: 'upsert' });
    const text = await jsonLines(adapter.exportJsonLines(E, ROOT_SET));
    const decoded = text
      .trimEnd()
      .split('\n')
      .map((line) => decodeRecord(E, JSON.parse(line), 'text').record);
    expect(decoded.map((r) => [r.id, String(r.j)])).toEqual(want.map((r) => [r.id, JSON.stringify(r.j)]));
  });

  test('bulk COPY import: insert, upsert through a staging table, duplicates and a second batch', async () => {
    const E = entity('Bulk', 'id', {
      id: t.uuid(),
      name: t.string(),
      amount: t.decimal(12, 2),
      at: t.datetime(),
      tags: t.json(),
      note: t.string().optional().nullable(),
    });
    await adapter.ensureEntity(E, ROOT_SET);
    const rows = Array.from({ length: 3_000 }, (_, i) =>
      normalizeRecord(E, {
        id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        name: `name\t${i}\\\n`,
        amount: `${i}.25`,
        at: `2024-01-01T00:00:00.${String(i).padStart(6, '0')}Z`,
        tags: { i, s: ['a\tb', 'c\\d'] },
        ...(i % 3 === 0 ? {} : { note: i % 3 === 1 ? null : `n${i}` }),
      }),
    );
    expect(await adapter.importBatch(E, ROOT_SET, rows.slice(0, 2_000), { mode: 'insert', bulk: true })).toEqual({
      inserted: 2_000,
      updated: 0,
    });
    await expect(
      adapter.importBatch(E, ROOT_SET, rows.slice(1_999, 2_001), { mode: 'insert', bulk: true }),
    ).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
    });
    expect(await adapter.importBatch(E, ROOT_SET, rows.slice(1_000), { mode: 'upsert', bulk: true })).toEqual({
      inserted: 1_000,
      updated: 1_000,
    });
    const got = await collect(adapter.exportEntity(E, ROOT_SET, { batchSize: 500 }));
    expect(got).toHaveLength(3_000);
    got.forEach((g, i) => {
      expectSameRecord(E, g, rows[i]!, `bulk[${i}]`);
    });
  });

  test('multi-row INSERT respects the 65535-parameter limit', async () => {
    const E = entity('Wide', 'id', { id: t.integer(), a: t.string(), b: t.integer(), c: t.boolean() });
    await adapter.ensureEntity(E, ROOT_SET);
    const rows = Array.from({ length: 40_000 }, (_, id) => ({ id, a: `a${id}`, b: id * 2, c: id % 2 === 0 }));
    expect(await adapter.importBatch(E, ROOT_SET, rows, { mode: 'upsert' })).toEqual({ inserted: 40_000, updated: 0 });
    expect(await adapter.count(E, ROOT_SET)).toBe(40_000);
    expect(await adapter.importBatch(E, ROOT_SET, rows.slice(0, 20_000), { mode: 'upsert' })).toEqual({
      inserted: 0,
      updated: 20_000,
    });
  });

  test('a snapshot does not see writes made after it started, also through parallel workers and exportJsonLines', async () => {
    const E = entity('SnapPg', 'id', { id: t.integer(), v: t.string() });
    const F = entity('SnapPgOther', 'id', { id: t.integer(), v: t.string() });
    for (const x of [E, F]) await adapter.ensureEntity(x, ROOT_SET);
    const base = Array.from({ length: 50 }, (_, id) => ({ id, v: 'before' }));
    await adapter.importBatch(E, ROOT_SET, base, { mode: 'insert' });
    await adapter.importBatch(F, ROOT_SET, base, { mode: 'insert' });
    const seen = await adapter.readSnapshot(async (reader) => {
      await reader.count(E, ROOT_SET);
      await adapter.importBatch(
        E,
        ROOT_SET,
        [
          { id: 0, v: 'after' },
          { id: 50, v: 'after' },
        ],
        { mode: 'upsert' },
      );
      await adapter.clear(F, ROOT_SET);
      const [rows, other, lines] = await Promise.all([
        collect(reader.exportEntity(E, ROOT_SET, { batchSize: 8 })),
        reader.count(F, ROOT_SET),
        jsonLines(reader.exportJsonLines!(E, ROOT_SET)),
      ]);
      return { rows, other, lines };
    });
    expect(seen.rows).toHaveLength(50);
    expect(seen.rows.every((r) => r.v === 'before')).toBe(true);
    expect(seen.other).toBe(50);
    expect(seen.lines.split('\n').filter(Boolean)).toHaveLength(50);
    expect(seen.lines).not.toContain('after');
    expect(await adapter.count(E, ROOT_SET)).toBe(51);
  });

  test('breaking out of exportEntity and exportJsonLines 12 times each with poolSize 4 leaks no connection', async () => {
    const E = entity('BreakPg', 'id', { id: t.integer(), v: t.string() });
    await adapter.ensureEntity(E, ROOT_SET);
    await adapter.importBatch(
      E,
      ROOT_SET,
      Array.from({ length: 20_000 }, (_, id) => ({ id, v: 'x'.repeat(100) })),
      { mode: 'insert', bulk: true },
    );
    for (let i = 0; i < 12; i++) {
      for await (const _ of adapter.exportEntity(E, ROOT_SET, { batchSize: 10 })) break;
      for await (const _ of adapter.exportJsonLines(E, ROOT_SET)) break;
      await adapter.readSnapshot(async (reader) => {
        for await (const _ of reader.exportJsonLines!(E, ROOT_SET)) break;
        for await (const _ of reader.exportEntity(E, ROOT_SET, { batchSize: 10 })) break;
      });
      await adapter.transaction(async (tx) => {
        const session = tx as unknown as PostgresAdapter;
        for await (const _ of session.exportJsonLines(E, ROOT_SET)) break;
        await tx.importBatch(E, ROOT_SET, [{ id: 100_000 + i, v: 'tx' }], { mode: 'insert' });
      });
    }
    expect(adapter.pool.totalCount).toBeLessThanOrEqual(4);
    expect(await adapter.count(E, ROOT_SET)).toBe(20_012);
  });

  test('aborting exportJsonLines stops it with ABORTED', async () => {
    const E = entity('AbortPg', 'id', { id: t.integer(), v: t.string() });
    await adapter.ensureEntity(E, ROOT_SET);
    await adapter.importBatch(
      E,
      ROOT_SET,
      Array.from({ length: 20_000 }, (_, id) => ({ id, v: 'y'.repeat(50) })),
      {
        mode: 'insert',
        bulk: true,
      },
    );
    const controller = new AbortController();
    await expect(
      (async () => {
        for await (const _ of adapter.exportJsonLines(E, ROOT_SET, { signal: controller.signal })) controller.abort();
      })(),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await adapter.count(E, ROOT_SET)).toBe(20_000);
  });

  test('estimateCount reads the planner statistics: 0 without a table, none before ANALYZE, close after', async () => {
    const E = entity('Estimated', 'id', { id: t.integer(), v: t.string() });
    expect(await adapter.estimateCount(E, ROOT_SET)).toBe(0);
    await adapter.ensureEntity(E, ROOT_SET);
    expect(await adapter.estimateCount(E, ROOT_SET)).toBeUndefined();
    await adapter.importBatch(
      E,
      ROOT_SET,
      Array.from({ length: 20_000 }, (_, id) => ({ id, v: `row ${id}` })),
      { mode: 'insert', bulk: true },
    );
    await adapter.pool.query(`ANALYZE "${schema}"."Estimated"`);
    const estimate = (await adapter.estimateCount(E, ROOT_SET))!;
    expect(Math.abs(estimate - 20_000)).toBeLessThan(2_000);
  });

  test('an abort cancels an export that waits on a lock: pooled and snapshot, JSON lines and records', async () => {
    const E = entity('LockedPg', 'id', { id: t.integer(), v: t.string() });
    await adapter.ensureEntity(E, ROOT_SET);
    await adapter.importBatch(E, ROOT_SET, [{ id: 1, v: 'one' }], { mode: 'upsert' });
    const holder = new pg.Client({ connectionString: dbUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE "${schema}"."LockedPg" IN ACCESS EXCLUSIVE MODE`);
      expect(await abortWhileWaiting((signal) => adapter.exportJsonLines(E, ROOT_SET, { signal }))).toMatchObject({
        code: 'ABORTED',
      });
      expect(await abortWhileWaiting((signal) => adapter.exportEntity(E, ROOT_SET, { signal }))).toMatchObject({
        code: 'ABORTED',
      });
      const inSnapshot = adapter.readSnapshot((reader) =>
        abortWhileWaiting((signal) => reader.exportJsonLines!(E, ROOT_SET, { signal })),
      );
      expect(await inSnapshot).toMatchObject({ code: 'ABORTED' });
      // A transaction's statement (a restore clearing the table first) is cancelled the same way, and rolled back.
      expect(
        await abortWhileWaiting((signal) => adapter.transaction((tx) => tx.clear(E, ROOT_SET), { signal })),
      ).toMatchObject({ code: 'ABORTED', cause: { code: '57014' } });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // Every connection the pool lent is usable again.
    const counts = await Promise.all(Array.from({ length: 6 }, () => adapter.count(E, ROOT_SET)));
    expect(counts).toEqual([1, 1, 1, 1, 1, 1]);
  });

  test('introspect maps PG types (arrays and intervals as their text, int8 as bigint), composite keys and keyless tables', async () => {
    const s = `"${schema}"`;
    await adapter.pool.query(`
      CREATE TABLE ${s}.legacy (id int PRIMARY KEY, tags text[], nums int8[], at timestamp, big int8, f real, c char(3), iv interval);
      INSERT INTO ${s}.legacy VALUES (1, '{a,"b c"}', '{1,9007199254740993}', '2024-05-01 10:00:00.123456', 9007199254740993, 1.5, 'ab', '1 day');
      CREATE TABLE ${s}.nokey (x int);
      CREATE TABLE ${s}.pair (a int, b text, v text, PRIMARY KEY (a, b));
      INSERT INTO ${s}.pair VALUES (1, 'b', 'x'), (1, 'B', 'y'), (0, 'z', 'w');`);
    const { entities, skipped } = await adapter.introspect();
    const legacy = entities.find((e) => e.name === 'legacy')!;
    expect(legacy).toMatchObject({
      key: 'id',
      keyType: 'integer',
      origin: 'introspected',
      table: 'legacy',
      source: 'default',
    });
    expect(Object.fromEntries(Object.entries(legacy.fields).map(([n, f]) => [n, f.type]))).toEqual({
      id: 'integer',
      tags: 'string',
      nums: 'string',
      at: 'datetime',
      big: 'bigint',
      f: 'number',
      c: 'string',
      iv: 'string',
    });
    // A table Koan created is found under its entity's name, without Koan's own bookkeeping column.
    const koanMade = entities.find((e) => e.name === 'AllTypes');
    expect(koanMade).toMatchObject({ table: 'AllTypes', origin: 'introspected' });
    expect(Object.keys(koanMade!.fields)).not.toContain('_koan_absent');
    // Its columns' notes give back the declared fields exactly: vector dimension, decimal size, optional vs nullable.
    const specOf = (f: Record<string, unknown>) => {
      const { type, optional, nullable, precision, scale, dimension } = f;
      return JSON.parse(JSON.stringify({ type, optional, nullable, precision, scale, dimension }));
    };
    for (const [name, spec] of Object.entries(AllTypes.fields))
      expect(specOf({ ...koanMade!.fields[name] }), name).toEqual(specOf({ ...spec }));
    await adapter.importBatch(AllTypes, ROOT_SET, [{ id: 'absent-vs-null', optNull: null }, { id: 'absent-too' }], {
      mode: 'upsert',
    });
    const back = (await collect(adapter.exportEntity(koanMade!, ROOT_SET))).filter((r) =>
      String(r.id).startsWith('absent'),
    );
    expect(back.map((r) => [r.id, 'optNull' in r, r.optNull])).toEqual([
      ['absent-too', false, undefined],
      ['absent-vs-null', true, null],
    ]);
    expect(entities.filter((e) => (e.table ?? e.name).includes('#'))).toEqual([]);
    expect(skipped).toEqual([]);
    expect(entities.find((e) => e.name === 'nokey')).toMatchObject({ keyless: true, key: '', keyType: 'none' });
    const pair = entities.find((e) => e.name === 'pair')!;
    expect(pair).toMatchObject({ key: 'a', keyFields: ['a', 'b'], keyType: 'integer' });
    expect(pair.fields.b).toMatchObject({ type: 'string', nullable: false });
    // Ordered by the whole key, text parts in byte order; upsert replaces on the whole key.
    expect(await collect(adapter.exportEntity(pair, ROOT_SET, { batchSize: 1 }))).toEqual([
      { a: 0, b: 'z', v: 'w' },
      { a: 1, b: 'B', v: 'y' },
      { a: 1, b: 'b', v: 'x' },
    ]);
    expect(
      await adapter.importBatch(
        pair,
        ROOT_SET,
        [
          { a: 1, b: 'b', v: 'x2' },
          { a: 2, b: 'b', v: 'n' },
        ],
        { mode: 'upsert' },
      ),
    ).toEqual({
      inserted: 1,
      updated: 1,
    });
    expect(await adapter.count(pair, ROOT_SET)).toBe(4);
    const [row] = await collect(adapter.exportEntity(legacy, ROOT_SET));
    expect(row).toEqual({
      id: 1,
      tags: '{a,"b c"}',
      nums: '{1,9007199254740993}',
      at: '2024-05-01T10:00:00.123456Z',
      big: 9007199254740993n,
      f: 1.5,
      c: 'ab ',
      iv: '1 day',
    });
  });

  test('introspection gives tables that are not entity names a valid name; ensureEntity leaves an existing table and its comment alone', async () => {
    const s = `"${schema}"`;
    await adapter.pool.query(`
      CREATE TABLE ${s}."Order Items" (id int PRIMARY KEY, note text);
      COMMENT ON TABLE ${s}."Order Items" IS 'owned by billing';
      CREATE TABLE ${s}."Order-Items" (id int PRIMARY KEY, item int REFERENCES ${s}."Order Items" (id));
      INSERT INTO ${s}."Order Items" VALUES (1, 'first');`);
    const { entities } = await adapter.introspect();
    const items = entities.find((e) => e.table === 'Order Items')!;
    const other = entities.find((e) => e.table === 'Order-Items')!;
    expect([items.name, other.name]).toEqual(['Order_Items', 'Order_Items_2']);
    expect(other.fields.item?.references).toEqual({ entity: 'Order_Items', field: 'id' });
    // The names pass the same validation a restore applies to the archive's schema.
    const rebuilt = buildSchema(
      { name: items.name, key: items.key, fields: items.fields, table: items.table },
      'introspected',
    );
    expect(await collect(adapter.exportEntity(rebuilt, ROOT_SET))).toEqual([{ id: 1, note: 'first' }]);
    await adapter.ensureEntity(rebuilt, ROOT_SET);
    const comment = await adapter.pool.query(`SELECT obj_description('${s}."Order Items"'::regclass, 'pg_class') AS c`);
    expect(comment.rows[0].c).toBe('owned by billing');
    await adapter.pool.query(`DROP TABLE ${s}."Order-Items"; DROP TABLE ${s}."Order Items"`);
  });

  test('introspects the Chinook dataset: 11 tables, keys (composite included), foreign keys, and exports Invoice', async (ctx) => {
    const datasets = sharedDatasetsDir();
    if (!datasets) return ctx.skip('../shared/datasets is absent');
    const chinookDb = `koan_chinook_${tag}`;
    const script = join(tmpdir(), `chinook-${tag}.sql`);
    // The script creates and connects to its own database; this test loads the rest into a fresh one.
    const sql = (await readFile(join(datasets, 'chinook', 'Chinook_PostgreSql.sql'), 'utf8'))
      .split('\n')
      .filter((line) => !/^\s*(DROP DATABASE|CREATE DATABASE|\\c)\b/i.test(line))
      .join('\n');
    await writeFile(script, sql);
    await admin(serviceUrls.postgres, `CREATE DATABASE ${chinookDb}`);
    const url = new URL(serviceUrls.postgres);
    url.pathname = `/${chinookDb}`;
    const chinook = createPostgresAdapter({ connectionString: url.toString() }, { source: 'chinook' });
    try {
      await run('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-d', url.toString(), '-f', script], { maxBuffer: 1 << 24 });
      await chinook.init();
      const { entities, skipped } = await chinook.introspect();
      expect(entities).toHaveLength(11);
      expect(skipped).toEqual([]);
      const playlistTrack = entities.find((e) => e.name === 'playlist_track')!;
      expect(playlistTrack).toMatchObject({
        key: 'playlist_id',
        keyFields: ['playlist_id', 'track_id'],
        keyType: 'integer',
      });
      const pairs = (await collect(chinook.exportEntity(playlistTrack, ROOT_SET, { batchSize: 500 }))).map(
        (r) => [r.playlist_id, r.track_id] as [number, number],
      );
      expect(pairs).toHaveLength(8715);
      expect(pairs).toEqual([...pairs].sort((x, y) => x[0] - y[0] || x[1] - y[1]));
      const invoice = entities.find((e) => e.name === 'invoice')!;
      expect(invoice).toMatchObject({
        key: 'invoice_id',
        keyType: 'integer',
        origin: 'introspected',
        source: 'chinook',
      });
      expect(invoice.fields.customer_id?.references).toEqual({ entity: 'customer', field: 'customer_id' });
      expect(invoice.fields.total).toMatchObject({ type: 'decimal', precision: 10, scale: 2 });
      expect(invoice.fields.invoice_date?.type).toBe('datetime');
      const track = entities.find((e) => e.name === 'track')!;
      expect(track.fields.album_id?.references).toEqual({ entity: 'album', field: 'album_id' });
      expect(entities.find((e) => e.name === 'employee')?.fields.reports_to?.references).toEqual({
        entity: 'employee',
        field: 'employee_id',
      });
      const rows = await collect(chinook.exportEntity(invoice, ROOT_SET, { batchSize: 100 }));
      expect(rows).toHaveLength(412);
      expect(rows.map((r) => r.invoice_id)).toEqual(Array.from({ length: 412 }, (_, i) => i + 1));
      expect(rows[0]).toMatchObject({ invoice_id: 1, total: '1.98', invoice_date: '2021-01-01T00:00:00.000000Z' });
      const lines = (await jsonLines(chinook.exportJsonLines(invoice, ROOT_SET))).trimEnd().split('\n');
      expect(lines).toEqual(rows.map((r) => encodeRecordLine(invoice, r, 'text')));
    } finally {
      await chinook.close();
      await rm(script, { force: true });
      await admin(serviceUrls.postgres, `DROP DATABASE IF EXISTS ${chinookDb} WITH (FORCE)`);
    }
  });
});

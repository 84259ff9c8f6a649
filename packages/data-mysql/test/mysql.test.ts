import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError, type DataRecord, type EntitySchema, JsonText, t } from '@koan/data';
import { buildSchema, compareKeyValues, decodeRecord, encodeRecordLine } from '@koan/data/adapter-kit';
import {
  abortWhileWaiting,
  describeAdapterConformance,
  probeService,
  serviceUrls,
  sharedDatasetsDir,
} from '@koan/data/testing';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlAdapter, type MysqlAdapter, provider } from '../src/index.js';

const skipReason = await probeService('mysql', async () => {
  const conn = await createConnection({ uri: serviceUrls.mysql, connectTimeout: 3000 });
  await conn.end();
});

const scratchDatabases: string[] = [];

async function admin<T>(fn: (conn: Awaited<ReturnType<typeof createConnection>>) => Promise<T>): Promise<T> {
  const conn = await createConnection({ uri: serviceUrls.mysql, multipleStatements: false });
  try {
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

async function createScratchDatabase(): Promise<string> {
  const name = `koan_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`));
  scratchDatabases.push(name);
  return name;
}

/** Drops `only`, or every database this file created. */
async function dropScratchDatabases(only?: string): Promise<void> {
  const names =
    only === undefined ? scratchDatabases.splice(0) : scratchDatabases.splice(scratchDatabases.indexOf(only), 1);
  if (names.length === 0) return;
  await admin(async (c) => {
    for (const name of names) await c.query(`DROP DATABASE IF EXISTS \`${name}\``);
  });
}

function settingsFor(database: string, poolSize = 4) {
  return { uri: serviceUrls.mysql, database, poolSize };
}

async function collect(iterable: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of iterable) out.push(...batch);
  return out;
}

const Sample = buildSchema(
  {
    name: 'Sample',
    key: 'id',
    fields: {
      id: t.string(),
      at: t.datetime().nullable(),
      exact: t.decimal().nullable(),
      money: t.decimal(12, 2).nullable(),
      doc: t.json().nullable(),
      blob: t.binary().nullable(),
      big: t.bigint().nullable(),
      ratio: t.number().nullable(),
      flag: t.boolean().nullable(),
      day: t.date().nullable(),
      embedding: t.vector(3).nullable(),
      note: t.string().optional(),
    },
  },
  'declared',
);

describe.skipIf(skipReason !== undefined)('@koan/data-mysql', () => {
  let database: string;
  let adapter: MysqlAdapter;

  beforeAll(async () => {
    database = await createScratchDatabase();
    adapter = createMysqlAdapter(settingsFor(database));
    await adapter.init();
    await adapter.ensureEntity(Sample, 'root');
  });

  afterAll(async () => {
    await adapter?.close();
    await dropScratchDatabases();
  });

  async function roundTrip(record: DataRecord): Promise<DataRecord | undefined> {
    const full = {
      at: null,
      exact: null,
      money: null,
      doc: null,
      blob: null,
      big: null,
      ratio: null,
      flag: null,
      day: null,
      embedding: null,
      ...record,
    };
    await adapter.importBatch(Sample, 'root', [full], { mode: 'upsert' });
    const viaGet = await adapter.get(Sample, 'root', String(record.id));
    await adapter.importBatch(Sample, 'root', [{ ...full, id: `${String(record.id)}-bulk` }], {
      mode: 'upsert',
      bulk: true,
    });
    const viaBulk = await adapter.get(Sample, 'root', `${String(record.id)}-bulk`);
    expect({ ...viaBulk, id: record.id }).toEqual(viaGet);
    return viaGet;
  }

  it('is the provider the runtime loads for mysql and mariadb', () => {
    expect(provider.name).toBe('mysql');
    const a = provider.create({ database: 'x' }, { source: 'main', cwd: '/' });
    expect(a.provider).toBe('mysql');
    expect(a.capabilities).toMatchObject({
      transactions: true,
      snapshotReads: true,
      bulkLoad: true,
      introspection: true,
    });
  });

  it('asks for a database when none is configured', () => {
    expect(() => createMysqlAdapter({ host: '127.0.0.1' })).toThrow(/Missing required setting `database`/);
  });

  it('keeps DATETIME(6) microseconds in UTC', async () => {
    const r = await roundTrip({ id: 'dt', at: '2024-05-01T10:00:00.123456Z' });
    expect(r?.at).toBe('2024-05-01T10:00:00.123456Z');
    const fromDate = await roundTrip({ id: 'dt2', at: new Date('1999-12-31T23:59:59.999Z') });
    expect(fromDate?.at).toBe('1999-12-31T23:59:59.999000Z');
  });

  it('keeps decimals exact, including trailing zeros', async () => {
    const r = await roundTrip({ id: 'dec', exact: '12.50', money: '12.50' });
    expect(r?.exact).toBe('12.50');
    expect(r?.money).toBe('12.50');
    const big = await roundTrip({
      id: 'dec2',
      exact: '-123456789012345678901234567890.000000000000000000000000000001',
      money: '9999999999.99',
    });
    expect(big?.exact).toBe('-123456789012345678901234567890.000000000000000000000000000001');
    expect(big?.money).toBe('9999999999.99');
  });

  it('reads JSON back value-equal', async () => {
    const doc = {
      a: [1, 2.5, 'x', null, true],
      nested: { 'k é': '😀', deep: [{ z: 1 }] },
      n: 1e300,
      s: 'quote " and \\ backslash\n',
    };
    expect((await roundTrip({ id: 'json', doc }))?.doc).toEqual(doc);
    expect((await roundTrip({ id: 'json-scalar', doc: 'just text' }))?.doc).toBe('just text');
    expect((await roundTrip({ id: 'json-array', doc: [] }))?.doc).toEqual([]);
  });

  it('keeps BLOBs byte for byte and vectors bit-exact', async () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    const embedding = new Float32Array([Number.NaN, -0, 3.4028234663852886e38]);
    const r = await roundTrip({ id: 'blob', blob: bytes, embedding });
    expect(r?.blob).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(r?.blob as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
    const back = r?.embedding as Float32Array;
    expect(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(Buffer.from(embedding.buffer))).toBe(true);
  });

  it('keeps BIGINT exact near its limits', async () => {
    for (const big of [2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n + 1n]) {
      expect((await roundTrip({ id: `big${big}`, big }))?.big).toBe(big);
    }
  });

  it('round-trips doubles exactly and rejects what DOUBLE cannot hold', async () => {
    for (const ratio of [0.1 + 0.2, 1e300, 5e-324, -1.7976931348623157e308, 123456789.12345679]) {
      expect((await roundTrip({ id: `num${ratio}`, ratio }))?.ratio).toBe(ratio);
    }
    await expect(
      adapter.importBatch(Sample, 'root', [{ id: 'nan', ratio: Number.NaN }], { mode: 'upsert' }),
    ).rejects.toMatchObject({
      code: 'UNSUPPORTED_VALUE',
    });
  });

  it('returns real booleans, dates and absent optional fields', async () => {
    const r = await roundTrip({ id: 'misc', flag: true, day: '2024-02-29' });
    expect(r?.flag).toBe(true);
    expect(r?.day).toBe('2024-02-29');
    expect(r && 'note' in r).toBe(false);
    expect((await roundTrip({ id: 'misc2', flag: false, note: 'here' }))?.note).toBe('here');
  });

  it('stores utf8mb4 text and streams string keys in UTF-8 byte order', async () => {
    const Keys = buildSchema({ name: 'Keys', key: 'k', fields: { k: t.string(), v: t.string() } }, 'declared');
    await adapter.ensureEntity(Keys, 'root');
    const keys = ['a', 'a ', 'B', 'b', 'é', 'e\u0301', 'z', '😀', '\uffff', '\u{10000}', '日本', 'Z', ''];
    await adapter.importBatch(
      Keys,
      'root',
      keys.map((k) => ({ k, v: `${k}😀` })),
      { mode: 'insert' },
    );
    const out = await collect(adapter.exportEntity(Keys, 'root', { batchSize: 3 }));
    expect(out.map((r) => r.k)).toEqual([...keys].sort(compareKeyValues));
    expect(out.find((r) => r.k === '😀')?.v).toBe('😀😀');
  });

  it('streams integer keys in numeric order with keyset paging', async () => {
    const Nums = buildSchema({ name: 'Nums', key: 'id', fields: { id: t.integer(), v: t.integer() } }, 'declared');
    await adapter.ensureEntity(Nums, 'root');
    const ids = [10, 9, 100, -5, 2 ** 53 - 1, 0, 11];
    await adapter.importBatch(
      Nums,
      'root',
      ids.map((id) => ({ id, v: id % 7 })),
      { mode: 'insert' },
    );
    const batches: number[] = [];
    const out: DataRecord[] = [];
    for await (const batch of adapter.exportEntity(Nums, 'root', { batchSize: 2 })) {
      batches.push(batch.length);
      out.push(...batch);
    }
    expect(out.map((r) => r.id)).toEqual([...ids].sort((a, b) => a - b));
    expect(batches).toEqual([2, 2, 2, 1]);
  });

  it('counts inserts and updates of an upsert, and names the key of a duplicate insert', async () => {
    const U = buildSchema({ name: 'Upserts', key: 'id', fields: { id: t.integer(), v: t.string() } }, 'declared');
    await adapter.ensureEntity(U, 'root');
    for (const bulk of [false, true]) {
      await adapter.clear(U, 'root');
      expect(
        await adapter.importBatch(
          U,
          'root',
          [
            { id: 1, v: 'a' },
            { id: 2, v: 'b' },
          ],
          { mode: 'upsert', bulk },
        ),
      ).toEqual({ inserted: 2, updated: 0 });
      const rows = [
        { id: 1, v: 'a' },
        { id: 2, v: 'changed' },
        { id: 3, v: 'c' },
      ];
      expect(await adapter.importBatch(U, 'root', rows, { mode: 'upsert', bulk })).toEqual({ inserted: 1, updated: 2 });
      const err = await adapter
        .importBatch(
          U,
          'root',
          [
            { id: 7, v: 'x' },
            { id: 2, v: 'dup' },
          ],
          { mode: 'insert', bulk },
        )
        .catch((e) => e);
      expect(err).toBeInstanceOf(DataError);
      expect(err).toMatchObject({ code: 'DUPLICATE_KEY', details: { entity: 'Upserts', key: '2' } });
      expect(err.message).toMatch(/Upserts/);
      // The failed batch left nothing behind.
      expect(await adapter.get(U, 'root', 7)).toBeUndefined();
      expect((await adapter.get(U, 'root', 2))?.v).toBe('changed');
    }
  });

  it('gets, removes, clears and lists sets', async () => {
    const S = buildSchema({ name: 'Sets', key: 'id', fields: { id: t.uuid(), n: t.integer() } }, 'declared');
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await adapter.ensureEntity(S, 'root');
    await adapter.ensureEntity(S, 'archive-2024');
    await adapter.importBatch(
      S,
      'archive-2024',
      ids.map((id, n) => ({ id, n })),
      { mode: 'insert' },
    );
    expect(await adapter.listSets(S)).toEqual(['root', 'archive-2024']);
    expect(
      (await adapter.getMany(S, 'archive-2024', [ids[2]!.toUpperCase(), 'missing', ids[0]!])).map((r) => r.n),
    ).toEqual([2, 0]);
    expect(await adapter.remove(S, 'archive-2024', [ids[0]!, randomUUID()])).toBe(1);
    expect(await adapter.count(S, 'archive-2024')).toBe(2);
    expect(await adapter.clear(S, 'archive-2024')).toBe(2);
    expect(await adapter.count(S, 'root')).toBe(0);
    const d = await adapter.describe(S, 'archive-2024');
    expect(d).toMatchObject({ provider: 'mysql', location: 'Sets#archive-2024', exists: true, primaryKey: ['id'] });
    expect(d.columns.map((c) => c.storeType)).toEqual(['char(36)', 'bigint(20)']);
  });

  it('treats a table that was never created as empty', async () => {
    const Ghost = buildSchema({ name: 'Ghost', key: 'id', fields: { id: t.integer() } }, 'declared');
    expect(await adapter.count(Ghost, 'root')).toBe(0);
    expect(await collect(adapter.exportEntity(Ghost, 'root'))).toEqual([]);
    expect(await adapter.get(Ghost, 'root', 1)).toBeUndefined();
    expect((await adapter.describe(Ghost, 'root')).exists).toBe(false);
  });

  it('rolls back a failed transaction and commits a successful one', async () => {
    const T = buildSchema({ name: 'Tx', key: 'id', fields: { id: t.integer() } }, 'declared');
    await adapter.ensureEntity(T, 'root');
    await expect(
      adapter.transaction(async (w) => {
        await w.importBatch(T, 'root', [{ id: 1 }], { mode: 'insert' });
        await w.importBatch(T, 'root', [{ id: 2 }], { mode: 'insert', bulk: true });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await adapter.count(T, 'root')).toBe(0);
    await adapter.transaction((w) => w.importBatch(T, 'root', [{ id: 1 }, { id: 2 }], { mode: 'insert', bulk: true }));
    expect(await adapter.count(T, 'root')).toBe(2);
  });

  it('reads one consistent snapshot while others write', async () => {
    const Snap = buildSchema({ name: 'Snap', key: 'id', fields: { id: t.integer() } }, 'declared');
    await adapter.ensureEntity(Snap, 'root');
    await adapter.importBatch(Snap, 'root', [{ id: 1 }, { id: 2 }], { mode: 'insert' });
    const seen = await adapter.readSnapshot(async (reader) => {
      expect(reader.consistency).toBe('snapshot');
      const before = await reader.count(Snap, 'root');
      await adapter.importBatch(Snap, 'root', [{ id: 3 }], { mode: 'insert' });
      await adapter.remove(Snap, 'root', [1]);
      const rows = await collect(reader.exportEntity(Snap, 'root', { batchSize: 1 }));
      return { before, after: await reader.count(Snap, 'root'), ids: rows.map((r) => r.id) };
    });
    expect(seen).toEqual({ before: 2, after: 2, ids: [1, 2] });
    expect(await adapter.count(Snap, 'root')).toBe(2);
  });

  it('gives the connection back when a consumer breaks out early, poolSize + 1 times and more', async () => {
    const small = createMysqlAdapter(settingsFor(database, 4));
    await small.init();
    try {
      const Many = buildSchema({ name: 'Many', key: 'id', fields: { id: t.integer() } }, 'declared');
      await small.ensureEntity(Many, 'root');
      await small.importBatch(
        Many,
        'root',
        Array.from({ length: 50 }, (_, id) => ({ id })),
        { mode: 'upsert' },
      );
      for (let i = 0; i < 12; i++) {
        for await (const batch of small.exportEntity(Many, 'root', { batchSize: 5 })) {
          expect(batch).toHaveLength(5);
          break;
        }
      }
      const controller = new AbortController();
      const aborted = (async () => {
        for await (const _ of small.exportEntity(Many, 'root', { batchSize: 5, signal: controller.signal }))
          controller.abort();
      })();
      await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
      expect(await small.count(Many, 'root')).toBe(50);
    } finally {
      await small.close();
    }
  });

  it('an abort stops an export that waits on a lock: pooled and snapshot, JSON lines and records', async () => {
    const Locked = buildSchema({ name: 'Locked', key: 'id', fields: { id: t.integer(), s: t.string() } }, 'declared');
    await adapter.ensureEntity(Locked, 'root');
    await adapter.importBatch(Locked, 'root', [{ id: 1, s: 'one' }], { mode: 'upsert' });
    const holder = await createConnection({ uri: serviceUrls.mysql, database });
    const waiting = async () => {
      const [rows] = await holder.query<never[]>({
        sql: "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table%'",
        rowsAsArray: true,
      });
      return Number((rows as unknown as unknown[][])[0]![0]);
    };
    try {
      // A write lock held elsewhere: the export's SELECT waits for it and no row arrives.
      await holder.query('LOCK TABLES `Locked` WRITE');
      expect(await abortWhileWaiting((signal) => adapter.exportJsonLines(Locked, 'root', { signal }))).toMatchObject({
        code: 'ABORTED',
      });
      expect(await abortWhileWaiting((signal) => adapter.exportEntity(Locked, 'root', { signal }))).toMatchObject({
        code: 'ABORTED',
      });
      const inSnapshot = adapter.readSnapshot((reader) =>
        abortWhileWaiting((signal) => reader.exportJsonLines!(Locked, 'root', { signal })),
      );
      expect(await inSnapshot).toMatchObject({ code: 'ABORTED' });
      // A transaction's statement (a restore clearing the table first) is stopped the same way, and rolled back.
      expect(
        await abortWhileWaiting((signal) => adapter.transaction((tx) => tx.clear(Locked, 'root'), { signal })),
      ).toMatchObject({ code: 'ABORTED', cause: { code: 'ER_QUERY_INTERRUPTED' } });
      // The server stopped the statements too: none is left waiting for the lock.
      for (let i = 0; i < 50 && (await waiting()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(await waiting()).toBe(0);
    } finally {
      await holder.query('UNLOCK TABLES');
      await holder.end();
    }
    const counts = await Promise.all(Array.from({ length: 6 }, () => adapter.count(Locked, 'root')));
    expect(counts).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('estimateCount reads InnoDB statistics: 0 without a table, about the row count after ANALYZE', async () => {
    const E = buildSchema({ name: 'Estimated', key: 'id', fields: { id: t.integer(), v: t.string() } }, 'declared');
    expect(await adapter.estimateCount(E, 'root')).toBe(0);
    await adapter.ensureEntity(E, 'root');
    await adapter.importBatch(
      E,
      'root',
      Array.from({ length: 20_000 }, (_, id) => ({ id, v: `row ${id}` })),
      { mode: 'insert', bulk: true },
    );
    await admin((c) => c.query(`ANALYZE TABLE \`${database}\`.\`Estimated\``));
    const estimate = (await adapter.estimateCount(E, 'root'))!;
    // InnoDB samples pages: an estimate, not a count.
    expect(estimate).toBeGreaterThan(10_000);
    expect(estimate).toBeLessThan(40_000);
  });

  it('streams lines of every size into LOAD DATA exactly, across many pieces and single lines of 300 KB', async () => {
    const Wide = buildSchema({ name: 'Wide', key: 'id', fields: { id: t.integer(), s: t.string() } }, 'declared');
    await adapter.ensureEntity(Wide, 'root');
    // 2-byte characters: a 150k-character line is 300 KB, five times a LOAD DATA piece; the rest make ~50 pieces.
    const records = Array.from({ length: 6_000 }, (_, id) => ({
      id,
      s: id % 1_000 === 500 ? 'é'.repeat(150_000 + id) : `${'é'.repeat(id % 300)} ${id}`,
    }));
    const lines = records.map((r) => encodeRecordLine(Wide, r, 'text'));
    const batches = async function* () {
      for (let i = 0; i < lines.length; i += 700) yield lines.slice(i, i + 700);
    };
    const result = await adapter.transaction((tx) =>
      tx.importJsonLineStream!(Wide, 'root', batches(), { mode: 'insert', bulk: true }),
    );
    expect(result).toEqual({ inserted: records.length, updated: 0 });
    const back = await collect(adapter.exportEntity(Wide, 'root', { batchSize: 1_000 }));
    expect(back.length).toBe(records.length);
    expect(back.every((r, i) => r.id === records[i]!.id && r.s === records[i]!.s)).toBe(true);
  });

  it('round-trips many rows through the bulk path', async () => {
    const Bulk = buildSchema(
      {
        name: 'Bulk',
        key: 'id',
        fields: { id: t.uuid(), text: t.string(), at: t.datetime(), blob: t.binary().nullable(), doc: t.json() },
      },
      'declared',
    );
    await adapter.ensureEntity(Bulk, 'root');
    const records = Array.from({ length: 3000 }, (_, i) => ({
      id: randomUUID(),
      text: `line ${i}\twith\ttabs\nand newlines \\ and \0 NUL \\N ${'é'.repeat(i % 5)}`,
      at: `2024-01-01T00:00:${String(i % 60).padStart(2, '0')}.${String(i).padStart(6, '0')}Z`,
      blob: i % 3 === 0 ? null : new Uint8Array([i % 256, 0, 9, 10, 92]),
      doc: { i, s: '\\N\t' },
    }));
    expect(await adapter.importBatch(Bulk, 'root', records, { mode: 'insert', bulk: true })).toEqual({
      inserted: 3000,
      updated: 0,
    });
    const out = await collect(adapter.exportEntity(Bulk, 'root', { batchSize: 700 }));
    const sorted = [...records].sort((a, b) => compareKeyValues(a.id, b.id));
    expect(out).toEqual(sorted);
  });

  it('renders JSON lines byte-equal to encodeRecordLine, with optional fields first, between and last', async () => {
    const fields = {
      id: t.string(),
      at: t.datetime().nullable(),
      exact: t.decimal().nullable(),
      money: t.decimal(12, 2),
      note: t.string().optional(),
      doc: t.json().nullable(),
      blob: t.binary().nullable(),
      big: t.bigint().nullable(),
      n: t.integer(),
      flag: t.boolean().nullable(),
      day: t.date().nullable(),
      embedding: t.vector(3).nullable(),
      tail: t.json().optional(),
    };
    const { note, ...rest } = fields;
    // The same fields in two orders: key first (one flat CONCAT), and an optional field first (CONCAT_WS).
    const shapes = [
      buildSchema({ name: 'LinesKeyFirst', key: 'id', fields }, 'declared'),
      buildSchema({ name: 'LinesOptFirst', key: 'id', fields: { note, ...rest } }, 'declared'),
    ];
    const text = 'quote " backslash \\ newline \n tab \t ctl \u0001 é 😀 </script>';
    const records: DataRecord[] = [
      { id: 'a', at: null, exact: null, money: '0.00', doc: null, blob: null, big: null, n: 0, flag: null },
      {
        id: 'b',
        at: '2024-02-29T23:59:59.000001Z',
        exact: '-12345678901234567890.000000000100',
        money: '9999999999.99',
        note: text,
        doc: { s: text, nested: [1, 2.5, { deep: null }], 'sp ace': true },
        blob: new Uint8Array([0, 255, 10, 13, 92, 34]),
        big: 9223372036854775807n,
        n: -2147483648,
        flag: true,
        day: '2024-02-29',
        embedding: new Float32Array([0.1, -0, 3.4028234663852886e38]),
        tail: [text],
      },
      { id: 'c', money: '1.50', note: '', doc: 'just a string', n: 7, flag: false, tail: {} },
      { id: 'd', money: '2.00', n: 1, tail: null },
    ].map((r) => ({
      at: null,
      exact: null,
      doc: null,
      blob: null,
      big: null,
      flag: null,
      day: null,
      embedding: null,
      ...r,
    }));
    for (const S of shapes) {
      expect(adapter.jsonLinesSupported(S)).toBe(true);
      await adapter.ensureEntity(S, 'root');
      await adapter.importBatch(S, 'root', records, { mode: 'insert' });
      // Line format 2: json fields as their exact text, as exportEntity reads them with exactJson.
      const exported = await collect(adapter.exportEntity(S, 'root', { exactJson: true }));
      const expected = exported.map((r) => `${encodeRecordLine(S, r, 'text')}\n`).join('');
      let got = '';
      for await (const chunk of adapter.exportJsonLines(S, 'root')) got += Buffer.from(chunk).toString('utf8');
      expect(got, S.name).toBe(expected);
      expect(
        got
          .split('\n')
          .slice(0, -1)
          .map((line) => decodeRecord(S, JSON.parse(line), 'text').record),
      ).toEqual(exported);
    }
  });

  it('renders lines of rows written by others: json text exactly as stored (blanks included), latin1 text as UTF-8, other datetime precisions, long and escaped strings; a NULL where the entity allows none fails naming the field', async () => {
    const S = buildSchema(
      {
        name: 'LinesForeign',
        key: 'id',
        fields: { id: t.integer(), name: t.string(), doc: t.json(), n: t.integer(), at: t.datetime().nullable() },
      },
      'declared',
    );
    await adapter.ensureEntity(S, 'root');
    const long = `${'é😀"\\\n'.repeat(20_000)}end`;
    // A large row whose every byte is escaped (six bytes each in the line).
    const controls = '\u0001'.repeat(30_000);
    await admin(async (c) => {
      await c.query(`ALTER TABLE \`${database}\`.LinesForeign MODIFY name LONGTEXT CHARACTER SET latin1 NOT NULL`);
      // Datetimes of other precisions read with six fraction digits.
      await c.query(`ALTER TABLE \`${database}\`.LinesForeign MODIFY at DATETIME(3) NULL`);
      await c.query({
        sql: `INSERT INTO \`${database}\`.LinesForeign (id, name, doc, n, at) VALUES (1, ?, ?, 1, '2024-02-29 23:59:59.123'), (2, ?, ?, 2, NULL), (3, ?, ?, 3, '1999-12-31 00:00:00'), (4, ?, '{}', 4, NULL)`,
        values: [
          'café ÿ',
          '{ "a" : [ 1 ,\n\t2 ] , "s" : "x y\\"z" }',
          'plain',
          ' [ ] ',
          'x',
          JSON.stringify({ long }),
          controls,
        ],
      });
    });
    // The json column's text exactly as stored: blanks, newlines and tabs between tokens stay.
    const want = [
      {
        id: 1,
        name: 'café ÿ',
        doc: new JsonText('{ "a" : [ 1 ,\n\t2 ] , "s" : "x y\\"z" }'),
        n: 1,
        at: '2024-02-29T23:59:59.123000Z',
      },
      { id: 2, name: 'plain', doc: new JsonText(' [ ] '), n: 2, at: null },
      { id: 3, name: 'x', doc: new JsonText(JSON.stringify({ long })), n: 3, at: '1999-12-31T00:00:00.000000Z' },
      { id: 4, name: controls, doc: new JsonText('{}'), n: 4, at: null },
    ];
    let got = '';
    for await (const chunk of adapter.exportJsonLines(S, 'root')) got += Buffer.from(chunk).toString('utf8');
    expect(got).toBe(want.map((r) => `${encodeRecordLine(S, r, 'text')}\n`).join(''));
    await admin((c) => c.query(`ALTER TABLE \`${database}\`.LinesForeign MODIFY at DATETIME NULL`));
    got = '';
    for await (const chunk of adapter.exportJsonLines(S, 'root')) got += Buffer.from(chunk).toString('utf8');
    expect(got).toBe(
      want
        .map((r) => `${encodeRecordLine(S, { ...r, at: r.at && `${r.at.slice(0, 19)}.000000Z` }, 'text')}\n`)
        .join(''),
    );

    await admin(async (c) => {
      await c.query(`ALTER TABLE \`${database}\`.LinesForeign MODIFY n BIGINT NULL`);
      await c.query(`UPDATE \`${database}\`.LinesForeign SET n = NULL WHERE id = 2`);
    });
    const lines = async () => {
      for await (const _ of adapter.exportJsonLines(S, 'root'));
    };
    await expect(lines()).rejects.toMatchObject({
      code: 'INVALID_VALUE',
      message: expect.stringMatching(
        /LinesForeign \(table LinesForeign, set "root"\): a row holds NULL in field n, .* \.nullable\(\) or \.optional\(\)\.$/,
      ),
      details: { entity: 'LinesForeign', set: 'root', table: 'LinesForeign' },
    });
    // The pool is whole afterwards.
    expect(await adapter.count(S, 'root')).toBe(4);
  });

  describe('introspection of the Chinook dataset', () => {
    const datasets = sharedDatasetsDir();
    const script = datasets && join(datasets, 'chinook', 'Chinook_MySql.sql');
    const reason = !script || !existsSync(script) ? 'Chinook_MySql.sql not found' : undefined;
    let chinook: MysqlAdapter;
    let chinookDb: string;

    beforeAll(async () => {
      if (reason) return;
      chinookDb = await createScratchDatabase();
      // The script creates and uses its own `Chinook` database: load it into the scratch database instead.
      const sql = (await readFile(script!, 'utf8')).replace(
        /^(DROP DATABASE IF EXISTS|CREATE DATABASE|USE) `Chinook`;$/gm,
        '',
      );
      const url = new URL(serviceUrls.mysql);
      const args = [
        `-h${url.hostname}`,
        `-P${url.port || '3306'}`,
        `-u${decodeURIComponent(url.username || 'root')}`,
        '--default-character-set=utf8mb4',
        chinookDb,
      ];
      if (url.password) args.push(`-p${decodeURIComponent(url.password)}`);
      await new Promise<void>((resolve, reject) => {
        const child = execFile('mysql', args, { maxBuffer: 16 * 1024 * 1024 }, (err) =>
          err ? reject(err) : resolve(),
        );
        child.stdin?.end(sql);
      });
      chinook = createMysqlAdapter(settingsFor(chinookDb), { source: 'music' });
      await chinook.init();
    }, 120_000);

    afterAll(async () => {
      await chinook?.close();
    });

    it.skipIf(reason !== undefined)('finds its 11 tables with keys and foreign keys', async () => {
      const { entities: schemas, skipped, notData } = await chinook.introspect();
      // 11 tables, all entities: PlaylistTrack's two-column key becomes keyFields.
      expect(schemas.map((s) => s.name).sort()).toEqual([
        'Album',
        'Artist',
        'Customer',
        'Employee',
        'Genre',
        'Invoice',
        'InvoiceLine',
        'MediaType',
        'Playlist',
        'PlaylistTrack',
        'Track',
      ]);
      expect(skipped).toEqual([]);
      expect(notData).toEqual([]);
      const playlistTrack = schemas.find((s) => s.name === 'PlaylistTrack')!;
      expect(playlistTrack).toMatchObject({
        key: 'PlaylistId',
        keyFields: ['PlaylistId', 'TrackId'],
        keyType: 'integer',
      });
      const pairs: [number, number][] = [];
      for await (const batch of chinook.exportEntity(playlistTrack, 'root', { batchSize: 500 }))
        for (const r of batch) pairs.push([r.PlaylistId as number, r.TrackId as number]);
      expect(pairs).toHaveLength(8715);
      expect(pairs).toEqual([...pairs].sort((x, y) => x[0] - y[0] || x[1] - y[1]));
      const byName = new Map(schemas.map((s) => [s.name, s] as const));
      const invoice = byName.get('Invoice') as EntitySchema;
      expect(invoice).toMatchObject({
        key: 'InvoiceId',
        keyType: 'integer',
        origin: 'introspected',
        source: 'music',
        table: 'Invoice',
      });
      expect(invoice.fields.CustomerId).toMatchObject({
        type: 'integer',
        references: { entity: 'Customer', field: 'CustomerId' },
      });
      expect(invoice.fields.InvoiceDate?.type).toBe('datetime');
      expect(invoice.fields.Total).toMatchObject({ type: 'decimal', precision: 10, scale: 2 });
      expect(byName.get('Employee')?.fields.ReportsTo).toMatchObject({
        nullable: true,
        references: { entity: 'Employee', field: 'EmployeeId' },
      });
      const rows = await collect(chinook.exportEntity(invoice, 'root', { batchSize: 100 }));
      expect(rows).toHaveLength(await chinook.count(invoice, 'root'));
      const [[expected]] = (
        await admin((c) => c.query({ sql: `SELECT COUNT(*) FROM \`${chinookDb}\`.Invoice`, rowsAsArray: true }))
      )[0] as unknown as [[string]];
      expect(rows).toHaveLength(Number(expected));
      expect(rows[0]).toMatchObject({ InvoiceId: 1, InvoiceDate: '2021-01-01T00:00:00.000000Z', Total: '1.98' });
      const described = await chinook.describe(invoice, 'root');
      expect(described.foreignKeys).toEqual([
        {
          name: 'FK_InvoiceCustomerId',
          columns: ['CustomerId'],
          references: 'Customer',
          referencedColumns: ['CustomerId'],
        },
      ]);
    });

    it.skipIf(reason !== undefined)(
      'finds tables Koan created under their entity name (sets and bookkeeping left out), names other tables validly',
      async () => {
        const declared = buildSchema(
          { name: 'Declared', key: 'id', fields: { id: t.integer(), note: t.string().optional().nullable() } },
          'declared',
        );
        await chinook.ensureEntity(declared, 'root');
        await chinook.ensureEntity(declared, 'archive');
        await admin((c) => c.query(`CREATE TABLE \`${chinookDb}\`.\`Order Items\` (id INT PRIMARY KEY, note TEXT)`));
        await admin((c) => c.query(`CREATE TABLE \`${chinookDb}\`.\`Order-Items\` (id INT PRIMARY KEY, item INT)`));
        try {
          const found = (await chinook.introspect()).entities;
          const mine = found.filter((s) => s.name === 'Declared');
          expect(mine).toHaveLength(1);
          expect(mine[0]).toMatchObject({ table: 'Declared', origin: 'introspected' });
          expect(Object.keys(mine[0]!.fields)).toEqual(['id', 'note']);
          // The columns' notes give back the declared fields exactly (optional vs nullable included).
          expect(mine[0]!.fields.note).toMatchObject({ type: 'string', optional: true, nullable: true });
          expect(mine[0]!.fields.id).toMatchObject({ type: 'integer', optional: false, nullable: false });
          expect(found.filter((s) => (s.table ?? s.name).includes('#'))).toEqual([]);
          expect(await chinook.listSets(mine[0]!)).toEqual(['root', 'archive']);
          const items = found.find((s) => s.table === 'Order Items')!;
          const other = found.find((s) => s.table === 'Order-Items')!;
          expect([items.name, other.name]).toEqual(['Order_Items', 'Order_Items_2']);
          expect(() => buildSchema({ ...items, fields: items.fields }, 'introspected')).not.toThrow();
        } finally {
          await admin((c) => c.query(`DROP TABLE \`${chinookDb}\`.\`Order-Items\`, \`${chinookDb}\`.\`Order Items\``));
        }
      },
    );
  });
});

const conformanceDatabases = new WeakMap<object, string>();

describeAdapterConformance({
  name: 'mysql',
  skip: async () => skipReason,
  create: async () => {
    const database = await createScratchDatabase();
    const adapter = createMysqlAdapter(settingsFor(database));
    conformanceDatabases.set(adapter, database);
    return adapter;
  },
  destroy: (adapter) => dropScratchDatabases(conformanceDatabases.get(adapter)),
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { t } from '@koan/data';
import { buildSchema, decodeRecord, encodeRecordLine, normalizeRecord } from '@koan/data/adapter-kit';
import { createSqliteAdapter, type SqliteAdapter } from '@koan/data-sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'koan-sqlite-jsonl-'));
});
afterAll(async () => rm(root, { recursive: true, force: true }));

async function open(): Promise<SqliteAdapter> {
  const a = createSqliteAdapter({ path: join(root, `db-${++n}.sqlite`) });
  await a.init();
  return a;
}

const Doc = buildSchema(
  {
    name: 'JsonLinesDoc',
    key: 'id',
    fields: {
      id: t.string(),
      ref: t.uuid(),
      n: t.integer(),
      big: t.bigint(),
      price: t.decimal(),
      flag: t.boolean().nullable(),
      at: t.datetime(),
      day: t.date(),
      data: t.json().nullable(),
      note: t.string().nullable(),
    },
  },
  'declared',
);

const tricky = [
  'plain',
  'ünïcødé ✓ 😀',
  'quote " and \\ backslash',
  'new\nline\ttab\r',
  '\u0001\u001f control',
  '</script>',
  '',
];
const records = Array.from({ length: 2500 }, (_, i) =>
  normalizeRecord(Doc, {
    id: `k${String(i).padStart(5, '0')}${i % 7 === 0 ? 'é' : ''}`,
    ref: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    n: i % 2 ? -Number.MAX_SAFE_INTEGER + i : i,
    big: i % 3 ? 9223372036854775807n - BigInt(i) : -9223372036854775808n + BigInt(i),
    price: i % 5 ? `${i}.50` : '12345678901234567890.000000000100',
    flag: i % 3 === 0 ? null : i % 2 === 0,
    at: `2024-02-29T23:59:59.${String(i).padStart(6, '0')}Z`,
    day: '2024-02-29',
    data:
      i % 4 === 0 ? null : { s: tricky[i % tricky.length]!, list: [1, 2.5, null, true, 'x'], nested: { 'k"ey': [] } },
    note: i % 6 === 0 ? null : tricky[i % tricky.length]!,
  }),
);

describe('SQLite JSON-lines fast paths', () => {
  it('serves entities whose every field SQLite can render exactly, and no others', async () => {
    const a = await open();
    expect(a.jsonLinesSupported(Doc)).toBe(true);
    const withDouble = buildSchema({ name: 'D1', key: 'id', fields: { id: t.integer(), x: t.number() } }, 'declared');
    const withOptional = buildSchema(
      { name: 'D2', key: 'id', fields: { id: t.integer(), x: t.string().optional() } },
      'declared',
    );
    const withBinary = buildSchema({ name: 'D3', key: 'id', fields: { id: t.integer(), x: t.binary() } }, 'declared');
    const introspected = buildSchema({ name: 'D4', key: 'id', fields: { id: t.integer() } }, 'introspected');
    for (const s of [withDouble, withOptional, withBinary, introspected]) expect(a.jsonLinesSupported(s)).toBe(false);
    await a.close();
  });

  it('exportJsonLines lines decode to exactly the records exportEntity returns, in the same order', async () => {
    const a = await open();
    await a.ensureEntity(Doc, 'root');
    await a.transaction((tx) => tx.importBatch(Doc, 'root', records, { mode: 'insert' }));
    const fast: string[] = [];
    for await (const chunk of a.exportJsonLines(Doc, 'root', { batchSize: 300 }))
      fast.push(...Buffer.from(chunk).toString('utf8').split('\n').slice(0, -1));
    const slow: string[] = [];
    for await (const batch of a.exportEntity(Doc, 'root', { batchSize: 300 }))
      for (const r of batch) slow.push(encodeRecordLine(Doc, r, 'text'));
    expect(fast).toHaveLength(records.length);
    expect(fast.map((l) => decodeRecord(Doc, JSON.parse(l), 'text').record)).toEqual(
      slow.map((l) => decodeRecord(Doc, JSON.parse(l), 'text').record),
    );
    await a.close();
  });

  it('large pages arrive as whole-line chunks of ~60 KiB, in order, also from interleaved cursors of one snapshot', async () => {
    const a = await open();
    const Wide = buildSchema(
      { name: 'WideLines', key: 'id', fields: { id: t.integer(), text: t.string(), data: t.json() } },
      'declared',
    );
    await a.ensureEntity(Wide, 'root');
    await a.ensureEntity(Wide, 'other');
    const wide = Array.from({ length: 5000 }, (_, i) => ({
      id: i,
      text: `${'ü✓😀'.repeat(40)} ${i} ${'x'.repeat(i % 300)}`,
      data: { i, list: [i, 'é'] },
    }));
    await a.transaction(async (tx) => {
      await tx.importBatch(Wide, 'root', wide, { mode: 'insert' });
      await tx.importBatch(Wide, 'other', wide.slice(0, 2500), { mode: 'insert' });
    });
    const expected = (n: number) => wide.slice(0, n).map((r) => encodeRecordLine(Wide, r, 'text'));
    const collect = async (it: AsyncIterator<Uint8Array>, into: string[], sizes: number[]) => {
      const r = await it.next();
      if (r.done) return false;
      expect(r.value[r.value.length - 1]).toBe(0x0a);
      sizes.push(r.value.length);
      into.push(...Buffer.from(r.value).toString('utf8').split('\n').slice(0, -1));
      return true;
    };
    const lines: string[] = [];
    const sizes: number[] = [];
    const it = a.exportJsonLines(Wide, 'root', { batchSize: 1000 })[Symbol.asyncIterator]();
    while (await collect(it, lines, sizes));
    expect(lines).toEqual(expected(5000));
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024 * 3);
    expect(sizes.length).toBeGreaterThan(5 * 4);
    await a.readSnapshot(async (reader) => {
      const root = reader.exportJsonLines!(Wide, 'root', { batchSize: 700 })[Symbol.asyncIterator]();
      const other = reader.exportJsonLines!(Wide, 'other', { batchSize: 300 })[Symbol.asyncIterator]();
      const fromRoot: string[] = [];
      const fromOther: string[] = [];
      const rootSizes: number[] = [];
      let moreRoot = true;
      let moreOther = true;
      while (moreRoot || moreOther) {
        moreRoot = moreRoot && (await collect(root, fromRoot, rootSizes));
        moreOther = moreOther && (await collect(other, fromOther, []));
      }
      expect(fromRoot).toEqual(expected(5000));
      expect(fromOther).toEqual(expected(2500));
      expect(Math.max(...rootSizes)).toBeLessThan(64 * 1024 * 3);
    });
    await a.close();
  });

  it('importJsonLines stores exactly what importBatch stores, and counts inserts and updates', async () => {
    const a = await open();
    await a.ensureEntity(Doc, 'root');
    await a.ensureEntity(Doc, 'copy');
    const lines = records.map((r) => encodeRecordLine(Doc, r, 'text'));
    const first = await a.transaction((tx) =>
      tx.importJsonLines!(Doc, 'copy', lines.slice(0, 2000), { mode: 'upsert', bulk: true }),
    );
    expect(first).toEqual({ inserted: 2000, updated: 0 });
    const second = await a.transaction((tx) =>
      tx.importJsonLines!(Doc, 'copy', lines.slice(1500), { mode: 'upsert', bulk: true }),
    );
    expect(second).toEqual({ inserted: 500, updated: 500 });
    const back: unknown[] = [];
    for await (const batch of a.exportEntity(Doc, 'copy', { batchSize: 1000 })) back.push(...batch);
    const sorted = [...records].sort((x, y) =>
      Buffer.compare(Buffer.from(x.id as string), Buffer.from(y.id as string)),
    );
    expect(back).toEqual(sorted);
    await a.close();
  });

  it('insert-only fails on an existing key naming it, and a malformed line fails the batch; nothing of the batch stays', async () => {
    const a = await open();
    await a.ensureEntity(Doc, 'root');
    const lines = records.slice(0, 10).map((r) => encodeRecordLine(Doc, r, 'text'));
    await a.transaction((tx) => tx.importJsonLines!(Doc, 'root', lines.slice(0, 5), { mode: 'insert', bulk: true }));
    await expect(
      a.transaction((tx) => tx.importJsonLines!(Doc, 'root', lines.slice(3), { mode: 'insert', bulk: true })),
    ).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
      message: expect.stringContaining(String(records[3]!.id)),
    });
    await expect(
      a.transaction((tx) =>
        tx.importJsonLines!(Doc, 'root', [lines[7]!, '{"id": broken'], { mode: 'upsert', bulk: true }),
      ),
    ).rejects.toThrow();
    expect(await a.count(Doc, 'root')).toBe(5);
    await a.close();
  });
});

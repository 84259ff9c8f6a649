import { randomBytes } from 'node:crypto';
import { type DataRecord, type EntitySchema, KoanError, t } from '@koan/data';
import { buildSchema, encodeRecordLine, lineTranscoder, normalizeRecord } from '@koan/data/adapter-kit';
import { probeService, serviceUrls } from '@koan/data/testing';
import pg from 'pg';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { archiveLinesToCopy, COPY_TARGET } from '../src/copy-lines.js';
import { createPostgresAdapter, type PostgresAdapter } from '../src/index.js';

const Doc = buildSchema(
  {
    name: 'PgJsonLinesDoc',
    key: 'id',
    fields: {
      id: t.string(),
      ref: t.uuid().nullable(),
      n: t.integer(),
      x: t.number().nullable(),
      big: t.bigint(),
      price: t.decimal(),
      flag: t.boolean().nullable(),
      at: t.datetime(),
      day: t.date(),
      data: t.json().nullable(),
      bin: t.binary().nullable(),
      vec: t.vector(3).nullable(),
      note: t.string().nullable(),
      opt: t.string().optional(),
    },
  },
  'declared',
);
const transcoder = lineTranscoder(Doc, COPY_TARGET, 'text');

const tricky = [
  'plain',
  'ünïcødé ✓ 😀',
  'quote " and \\ backslash',
  'new\nline\ttab\r',
  '\u0001\u001f control',
  'braces } ] { [ , : in text',
  '',
];
const numbers = [0, -0, 1.5, -1e-7, 1e21, 5e-324, Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY];
const records: DataRecord[] = Array.from({ length: 1500 }, (_, i) =>
  normalizeRecord(Doc, {
    id: `k${String(i).padStart(5, '0')}${i % 7 === 0 ? 'é' : ''}`,
    ref: i % 9 === 0 ? null : `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    n: i % 2 ? -Number.MAX_SAFE_INTEGER + i : i,
    x: i % 11 === 0 ? null : numbers[i % numbers.length]!,
    big: i % 3 ? 9223372036854775807n - BigInt(i) : -9223372036854775808n + BigInt(i),
    price: i % 5 ? `${i}.50` : '12345678901234567890.000000000100',
    flag: i % 3 === 0 ? null : i % 2 === 0,
    at: `2024-02-29T23:59:59.${String(i).padStart(6, '0')}Z`,
    day: '2024-02-29',
    data:
      i % 4 === 0
        ? null
        : i % 4 === 1
          ? { s: tricky[i % tricky.length]!, list: [1, 2.5, null, true, 'x'], nested: { 'k"ey': [] } }
          : i % 4 === 2
            ? ['a', { b: '}]' }, 3]
            : 42,
    bin: i % 6 === 0 ? null : new Uint8Array([i & 255, 0, 255, 10, 9]),
    vec: i % 8 === 0 ? null : new Float32Array([i, -0, 1.5]),
    note: i % 6 === 0 ? null : tricky[i % tricky.length]!,
    ...(i % 2 ? { opt: `o${i}` } : {}),
  }),
);
const lines = records.map((r) => encodeRecordLine(Doc, r, 'text'));

describe('PostgreSQL restore fast path: archive lines to COPY text', () => {
  it('the scanner gives the text of the parsing path for every canonical line, and declines the others', () => {
    const canonical = transcoder.canonical;
    let scanned = 0;
    for (const line of lines) {
      const parsed = `${transcoder.parsed(line, 0)}\n`;
      const fast = canonical(line);
      if (fast !== undefined) {
        scanned++;
        expect(`${fast}\n`).toBe(parsed);
      } else expect(line).toMatch(/\\/); // only lines with escapes take the parsing path
    }
    // Line format 2 spells json as a string of its text, whose quotes are escaped: those lines take the parsing path.
    expect(scanned).toBeGreaterThan(lines.length / 4);
    // The same records spelled differently (spaces, other key order) take the parsing path, with the same result.
    for (const line of lines.slice(0, 200)) {
      const value = JSON.parse(line) as Record<string, unknown>;
      const spaced = JSON.stringify(value, null, 1).replaceAll('\n', '');
      const reordered = JSON.stringify(Object.fromEntries(Object.entries(value).reverse()));
      const expected = archiveLinesToCopy(Doc, [line], false, 'text').text;
      expect(canonical(spaced)).toBeUndefined();
      expect(archiveLinesToCopy(Doc, [spaced], false, 'text').text).toBe(expected);
      if (Object.keys(value).length > 1) expect(canonical(reordered)).toBeUndefined();
      expect(archiveLinesToCopy(Doc, [reordered], false, 'text').text).toBe(expected);
    }
  });

  it('refuses lines that do not decode, naming the field and the line', () => {
    const good = lines[1]!;
    const cases: [string, RegExp, string | undefined][] = [
      [good.replace('"n":', '"n":"1",').replace(/,"n":"1",[^,]*/, ',"n":"1"'), /expected an integer/, 'n'],
      [good.replace(/\}$/, ',"extra":1}'), /does not know: extra/, undefined],
      ['{"id": broken', /not valid JSON/, undefined],
      ['[1,2]', /not a JSON object/, undefined],
      [good.replace(/"flag":(true|false|null)/, '"flag":"yes"'), /expected a boolean/, 'flag'],
      [good.replace(/"vec":"[^"]*"/, '"vec":"AAAA"'), /vector has 3 bytes, expected 12/, 'vec'],
    ];
    for (const [line, message, field] of cases) {
      let error: unknown;
      try {
        archiveLinesToCopy(Doc, [lines[0]!, line], false, 'text', 10);
      } catch (e) {
        error = e;
      }
      expect(error, line).toBeInstanceOf(KoanError);
      expect((error as KoanError).message).toMatch(message);
      expect((error as KoanError).details.line).toBe(11);
      if (field) expect((error as KoanError).details.field).toBe(field);
    }
  });
});

// --- against the server ---

const database = `koan_jsonl_${randomBytes(4).toString('hex')}`;
let created = false;
let probed: Promise<string | undefined> | undefined;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: serviceUrls.postgres });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function ready(): Promise<string | undefined> {
  probed ??= (async () => {
    const reason = await probeService('postgres', () => admin('SELECT 1'));
    if (!reason) {
      await admin(`CREATE DATABASE ${database}`);
      created = true;
    }
    return reason;
  })();
  return probed;
}

afterAll(async () => {
  if (created) await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
});

let schemas = 0;
async function open(ctx: TestContext): Promise<PostgresAdapter | undefined> {
  const reason = await ready();
  if (reason) {
    ctx.skip(reason);
    return undefined;
  }
  const url = new URL(serviceUrls.postgres);
  url.pathname = `/${database}`;
  const a = createPostgresAdapter({ connectionString: url.toString(), schema: `jl_${++schemas}` });
  await a.init();
  await a.ensureEntity(Doc, 'root');
  return a;
}

async function all(a: PostgresAdapter, schema: EntitySchema): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of a.exportEntity(schema, 'root', { batchSize: 500 })) out.push(...batch);
  return out;
}

async function* batchesOf(xs: readonly string[], size: number): AsyncGenerator<string[]> {
  for (let i = 0; i < xs.length; i += size) yield xs.slice(i, i + size);
}

const byId = (xs: readonly DataRecord[]) =>
  [...xs].sort((x, y) => Buffer.compare(Buffer.from(x.id as string), Buffer.from(y.id as string)));

describe('PostgreSQL importJsonLineStream / importJsonLines', () => {
  it('one streamed COPY stores exactly the records (every type), as importBatch does', async (ctx) => {
    const a = await open(ctx);
    if (!a) return;
    try {
      const r = await a.transaction((tx) =>
        tx.importJsonLineStream!(Doc, 'root', batchesOf(lines, 400), { mode: 'insert', bulk: true }),
      );
      expect(r).toEqual({ inserted: records.length, updated: 0 });
      expect(await all(a, Doc)).toEqual(byId(records));
    } finally {
      await a.close();
    }
  });

  it('upserts by batch: the last line of a key wins and inserts and updates are counted', async (ctx) => {
    const a = await open(ctx);
    if (!a) return;
    try {
      await a.transaction((tx) =>
        tx.importJsonLines!(Doc, 'root', lines.slice(0, 1000), { mode: 'upsert', bulk: true }),
      );
      const changed = normalizeRecord(Doc, { ...records[999]!, note: 'changed' });
      const batch = [...lines.slice(900), encodeRecordLine(Doc, changed, 'text')];
      const r = await a.transaction((tx) => tx.importJsonLines!(Doc, 'root', batch, { mode: 'upsert', bulk: true }));
      expect(r).toEqual({ inserted: 500, updated: 100 });
      expect(await all(a, Doc)).toEqual(byId([...records.slice(0, 999), changed, ...records.slice(1000)]));
    } finally {
      await a.close();
    }
  });

  it('a line the server refuses, a line that does not decode and an existing key fail the stream with its line; nothing stays', async (ctx) => {
    const a = await open(ctx);
    if (!a) return;
    try {
      const refused = [...lines.slice(0, 700)];
      refused[612] = refused[612]!.replace(/"price":"[^"]*"/, '"price":"12,5"');
      await expect(
        a.transaction((tx) =>
          tx.importJsonLineStream!(Doc, 'root', batchesOf(refused, 250), { mode: 'insert', bulk: true }),
        ),
      ).rejects.toMatchObject({ code: 'INVALID_VALUE', details: { line: 612 } });
      const broken = [...lines.slice(0, 700)];
      broken[405] = '{"id":"x",';
      await expect(
        a.transaction((tx) =>
          tx.importJsonLineStream!(Doc, 'root', batchesOf(broken, 250), { mode: 'insert', bulk: true }),
        ),
      ).rejects.toMatchObject({ code: 'INVALID_VALUE', details: { line: 405 } });
      expect(await a.count(Doc, 'root')).toBe(0);
      await a.transaction((tx) => tx.importJsonLines!(Doc, 'root', lines.slice(0, 10), { mode: 'insert', bulk: true }));
      await expect(
        a.transaction((tx) =>
          tx.importJsonLineStream!(Doc, 'root', batchesOf(lines.slice(5, 300), 100), { mode: 'insert', bulk: true }),
        ),
      ).rejects.toMatchObject({ code: 'DUPLICATE_KEY' });
      expect(await a.count(Doc, 'root')).toBe(10);
    } finally {
      await a.close();
    }
  });
});

/**
 * Exact values between PostgreSQL and archive lines: what exportEntity and exportJsonLines read (both the same, and
 * equal to the server's own text), what the COPY and INSERT paths write into existing tables (generated columns,
 * GENERATED ALWAYS identities, arrays), and what is refused before anything is written, by entity, field and key.
 */
import { type DataRecord, type EntitySchema, JsonText, KoanError } from '@koan/data';
import { decodeRecord, encodeRecordLine, ROOT_SET } from '@koan/data/adapter-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresAdapter } from '../src/index.js';
import { createScratch, probe, type Scratch } from './scratch.js';

const unavailable = await probe();

async function collect(stream: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of stream) out.push(...batch);
  return out;
}

async function lines(stream: AsyncIterable<Uint8Array>): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
}

async function* batches(xs: readonly string[], size: number): AsyncGenerator<string[]> {
  for (let i = 0; i < xs.length; i += size) yield xs.slice(i, i + size);
}

describe('PostgreSQL exactness', () => {
  let db: Scratch;
  let adapter: PostgresAdapter;
  const entities = new Map<string, EntitySchema>();
  const entity = (name: string) => entities.get(name)!;

  beforeAll(async () => {
    if (unavailable) return;
    db = await createScratch('exact');
    await db.sql(`
      CREATE TABLE special (
        id int8 PRIMARY KEY, ts timestamptz, lts timestamp, d date, j json, jb jsonb, n numeric, arr int[], m money);
      INSERT INTO special VALUES
        (9007199254740993, 'infinity', '-infinity', 'infinity',
         '{"b": 1,  "a": [1, 2], "a": 12345678901234567890123, "s": "x\\ny"}', '{"z": 1, "big": 1.00000000000000000001}',
         'NaN', '{{1,NULL},{3,4}}', '-1234.56'),
        (-9223372036854775808, '0044-03-15 12:30:00.5+00 BC', '10000-01-01 00:00:00', '0001-01-01 BC',
         'null', 'null', 'Infinity', '[0:2]={1,2,3}', '0'),
        (1, NULL, NULL, NULL, NULL, NULL, '-0.000100', '{}', NULL),
        (2, '2024-02-29 23:59:59.999999+00', '294276-12-31 23:59:59.999999', '5874897-01-01', '[]', '{}', '1e-7', NULL, NULL);
      CREATE TABLE target (
        id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int, doubled int GENERATED ALWAYS AS (v * 2) STORED,
        tags int[], doc json, at date, u8 int8);
      CREATE TABLE wide (id int PRIMARY KEY, u numeric(20,0));`);
    adapter = await db.adapter();
    for (const e of (await adapter.introspect()).entities) entities.set(e.name, e);
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  });

  it('a date PostgreSQL holds beyond the archive form is refused loudly, naming the value', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const err = await collect(adapter.exportEntity(entity('special'), ROOT_SET)).catch((e) => e);
    expect(String(err.message)).toMatch(/a date after year 999999 cannot be archived: 5874897-01-01/);
    await db.sql(`UPDATE special SET d = '9999-12-31' WHERE id = 2`);
  });

  it('exportEntity and exportJsonLines give the same exact values: infinities, BC and far years, json text, NaN, int8 keys, arrays', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const special = entity('special');
    const records = await collect(adapter.exportEntity(special, ROOT_SET, { exactJson: true }));
    expect(records.map((r) => r.id)).toEqual([-9223372036854775808n, 1n, 2n, 9007199254740993n]);
    const [min, one, two, big] = records;
    expect(big).toMatchObject({
      ts: 'infinity',
      lts: '-infinity',
      d: 'infinity',
      n: 'NaN',
      arr: '{{1,NULL},{3,4}}',
      m: '-1234.56',
    });
    expect(min).toMatchObject({
      ts: '-000043-03-15T12:30:00.500000Z',
      lts: '+010000-01-01T00:00:00.000000Z',
      d: '+000000-01-01',
      n: 'Infinity',
      arr: '[0:2]={1,2,3}',
      m: '0.00',
    });
    expect(two).toMatchObject({ ts: '2024-02-29T23:59:59.999999Z', lts: '+294276-12-31T23:59:59.999999Z' });
    expect(one).toMatchObject({ j: null, jb: null, n: '-0.000100', arr: '{}' });
    // json: the stored text exactly; jsonb: its own text form; JSON null is the text "null", SQL NULL is null.
    expect(big!.j).toBeInstanceOf(JsonText);
    expect(String(big!.j)).toBe('{"b": 1,  "a": [1, 2], "a": 12345678901234567890123, "s": "x\\ny"}');
    expect(String(big!.jb)).toBe('{"z": 1, "big": 1.00000000000000000001}');
    expect(String(min!.j)).toBe('null');
    // Both paths agree byte for byte with the archive encoding of the records.
    const exported = await lines(adapter.exportJsonLines(special, ROOT_SET));
    expect(exported).toEqual(records.map((r) => encodeRecordLine(special, r, 'text')));
    // Each value is the server's own (checked against psql's text of the same rows).
    const server = await db.sql<{ j: string | null; n: string }>(
      'SELECT j::text AS j, n::text AS n FROM special ORDER BY id',
    );
    expect(records.map((r) => [r.j === null ? null : String(r.j), r.n])).toEqual(server.map((r) => [r.j, r.n]));
    // Without exactJson, json fields are JavaScript values (for application code).
    const plain = await collect(adapter.exportEntity(special, ROOT_SET));
    expect(plain[0]!.j).toBeNull();
    expect(plain[3]!.jb).toEqual({ z: 1, big: 1 });
  });

  it('the archive lines restore every special value exactly (COPY and INSERT paths)', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const special = entity('special');
    const exported = await lines(adapter.exportJsonLines(special, ROOT_SET));
    const digest = "SELECT md5(string_agg(t::text, E'\\n' ORDER BY t::text)) AS h FROM special t";
    const [before] = await db.sql(digest);
    for (const path of ['copy', 'insert', 'stream'] as const) {
      await adapter.transaction(async (tx) => {
        await tx.clear(special, ROOT_SET);
        if (path === 'stream')
          await tx.importJsonLineStream!(special, ROOT_SET, batches(exported, 2), { mode: 'insert', bulk: true });
        else await tx.importJsonLines!(special, ROOT_SET, exported, { mode: 'insert', bulk: path === 'copy' });
      });
      expect(await db.sql(digest), path).toEqual([before]);
    }
    // Records decoded from the lines (JsonText json values) through importBatch, upsert then insert.
    const records = exported.map((l) => decodeRecord(special, JSON.parse(l), 'text').record);
    for (const bulk of [false, true]) {
      await adapter.transaction(async (tx) => {
        await tx.clear(special, ROOT_SET);
        await tx.importBatch(special, ROOT_SET, records, { mode: 'insert', bulk });
        await tx.importBatch(special, ROOT_SET, records, { mode: 'upsert', bulk });
      });
      expect(await db.sql(digest), `importBatch bulk=${bulk}`).toEqual([before]);
    }
  });

  it('into an existing table: generated columns are never written, GENERATED ALWAYS identities take the archived ids, JSON arrays fill array columns', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const target = entity('target');
    expect(target.fields.doubled?.generated).toBe('stored');
    const lines2 = [
      '{"id":7,"v":2,"doubled":999,"tags":"{1,2}","doc":"{\\"a\\":  1}","at":"2024-01-01","u8":"5"}',
      '{"id":9,"v":null,"doubled":null,"tags":null,"doc":"null","at":null,"u8":null}',
    ];
    await adapter.transaction((tx) => tx.importJsonLines!(target, ROOT_SET, lines2, { mode: 'insert', bulk: true }));
    await adapter.importBatch(
      target,
      ROOT_SET,
      [{ id: 8, v: 3, doubled: 1, tags: '{}', doc: new JsonText('[1, 2]'), at: null, u8: null }],
      { mode: 'insert' },
    );
    // Format 1 archives held array columns as JSON arrays (a json field): they become array literals.
    const asJson = {
      ...target,
      fields: { ...target.fields, tags: { type: 'json', optional: false, nullable: true } },
    } as EntitySchema;
    await adapter.transaction((tx) =>
      tx.importJsonLines!(
        asJson,
        ROOT_SET,
        ['{"id":10,"v":1,"doubled":0,"tags":[[1,null],[3,4]],"doc":{"x":1},"at":null,"u8":null}'],
        {
          mode: 'insert',
          bulk: true,
          json: 'nested',
        },
      ),
    );
    // Line format 2 (a json field from another provider's JSON column) into the array column: its exact text.
    await adapter.importJsonLines(
      asJson,
      ROOT_SET,
      ['{"id":11,"v":1,"doubled":0,"tags":"[5, 6]","doc":"1","at":null,"u8":null}'],
      { mode: 'insert', bulk: true },
    );
    expect(await db.sql('SELECT id, v, doubled, tags::text AS tags, doc::text AS doc FROM target ORDER BY id')).toEqual(
      [
        { id: 7, v: 2, doubled: 4, tags: '{1,2}', doc: '{"a":  1}' },
        { id: 8, v: 3, doubled: 6, tags: '{}', doc: '[1, 2]' },
        { id: 9, v: null, doubled: null, tags: null, doc: 'null' },
        { id: 10, v: 1, doubled: 2, tags: '{{1,NULL},{3,4}}', doc: '{"x":1}' },
        { id: 11, v: 1, doubled: 2, tags: '{5,6}', doc: '1' },
      ],
    );
  });

  it('refuses before writing what PostgreSQL cannot hold, naming entity, field and key: zero dates, unsigned bigints beyond int8', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const target = entity('target');
    const zero = '{"id":20,"v":1,"doubled":null,"tags":null,"doc":null,"at":"0000-00-00","u8":null}';
    for (const bulk of [true, false]) {
      const err = await adapter
        .transaction((tx) => tx.importJsonLines!(target, ROOT_SET, [zero], { mode: 'insert', bulk }))
        .catch((e) => e);
      expect(err).toBeInstanceOf(KoanError);
      expect(err.message).toMatch(/target\.at/);
      expect(err.message).toMatch(/MySQL zero date/);
      expect(err.details).toMatchObject({ entity: 'target', field: 'at' });
      expect(String(err.details.key)).toBe('20');
    }
    const unsigned = {
      ...target,
      fields: { ...target.fields, u8: { type: 'bigint', optional: false, nullable: true, unsigned: true } },
    } as EntitySchema;
    const huge = { id: 21, v: 1, doubled: null, tags: null, doc: null, at: null, u8: 18446744073709551615n };
    for (const bulk of [true, false]) {
      const err = await adapter.importBatch(unsigned, ROOT_SET, [huge], { mode: 'insert', bulk }).catch((e) => e);
      expect(err).toMatchObject({ code: 'UNSUPPORTED_VALUE', details: { entity: 'target', field: 'u8', key: 21 } });
      expect(err.message).toMatch(/18446744073709551615, beyond the range of its PostgreSQL column/);
    }
    const line = '{"id":21,"v":1,"doubled":null,"tags":null,"doc":null,"at":null,"u8":"18446744073709551615"}';
    const err = await adapter
      .transaction((tx) => tx.importJsonLines!(unsigned, ROOT_SET, [line], { mode: 'insert', bulk: true }))
      .catch((e) => e);
    expect(err).toMatchObject({ code: 'UNSUPPORTED_VALUE', details: { field: 'u8', key: 21 } });
    expect(await db.sql('SELECT count(*)::int AS n FROM target WHERE id >= 20')).toEqual([{ n: 0 }]);
    // A column wide enough holds it exactly (numeric(20,0), what ensureEntity makes for unsigned bigints).
    const wide = {
      ...entity('wide'),
      fields: { id: entity('wide').fields.id!, u: { type: 'bigint', optional: false, nullable: true, unsigned: true } },
    } as EntitySchema;
    await adapter.importBatch(wide, ROOT_SET, [{ id: 1, u: 18446744073709551615n }], { mode: 'insert' });
    expect(await collect(adapter.exportEntity(wide, ROOT_SET))).toEqual([{ id: 1, u: 18446744073709551615n }]);
  });
});

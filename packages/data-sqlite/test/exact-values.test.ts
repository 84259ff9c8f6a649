/**
 * Values the SQLite adapter keeps exactly or refuses by name: JSON text on every path, unsigned bigints, text SQLite
 * would turn into numbers, values Koan's own tables should not hold, AUTOINCREMENT counters after writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DataRecord, type EntitySchema, JsonText, type KoanError, t } from '@koan/data';
import { buildSchema, decodeRecord, encodeRecordLine, ROOT_SET } from '@koan/data/adapter-kit';
import { createSqliteAdapter, type SqliteAdapter } from '@koan/data-sqlite';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'koan-sqlite-values-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
async function open(): Promise<SqliteAdapter> {
  const a = createSqliteAdapter({ path: join(root, `db-${++n}.sqlite`) });
  await a.init();
  return a;
}

async function all(stream: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of stream) out.push(...batch);
  return out;
}

async function lines(stream: AsyncIterable<Uint8Array>): Promise<string[]> {
  let text = '';
  for await (const chunk of stream) text += Buffer.from(chunk).toString('utf8');
  return text.split('\n').slice(0, -1);
}

async function failure(p: Promise<unknown>): Promise<KoanError | undefined> {
  return p.then(
    () => undefined,
    (e: unknown) => e as KoanError,
  );
}

const Doc = buildSchema({ name: 'Doc', key: 'id', fields: { id: t.integer(), j: t.json().nullable() } }, 'declared');
const TEXTS = [
  '{"big":12345678901234567890123,"s":"a\\nb"}',
  ' { "b" : 1.10 , "a" : [1e2, -0.0] , "a" : null } ',
  'null',
  '"\\u00e9\\ud83d\\ude00"',
  '[0.10000000000000000001]',
];

describe('SQLite keeps JSON text exactly', () => {
  it('through importBatch, importJsonLines (canonical and parsed lines), exportEntity with exactJson and exportJsonLines (main and snapshot)', async () => {
    const a = await open();
    const viaLines = buildSchema({ ...Doc, name: 'DocLines' }, 'declared');
    for (const e of [Doc, viaLines]) await a.ensureEntity(e, ROOT_SET);
    const records = [...TEXTS.map((text, i) => ({ id: i + 1, j: JsonText.parse(text) })), { id: 99, j: null }];
    await a.importBatch(Doc, ROOT_SET, records, { mode: 'insert' });
    // Format-2 lines; one written with blanks, so it takes the parsing path.
    const archive = records.map((r) => encodeRecordLine(Doc, r, 'text'));
    archive[0] = archive[0]!.replace('{"id":1,', '{ "id": 1, ');
    await a.transaction((tx) => tx.importJsonLines!(viaLines, ROOT_SET, archive, { mode: 'insert' }));
    for (const e of [Doc, viaLines]) {
      const raw = a.getInstance().prepare(`SELECT id, j FROM "${e.name}" ORDER BY id`).all() as {
        id: number;
        j: string | null;
      }[];
      expect(
        raw.map((r) => r.j),
        `${e.name}: stored text`,
      ).toEqual([...TEXTS, null]);
      const exact = await all(a.exportEntity(e, ROOT_SET, { exactJson: true }));
      expect(exact.map((r) => (r.j instanceof JsonText ? r.j.text : r.j))).toEqual([...TEXTS, null]);
      for (const read of [
        () => lines(a.exportJsonLines(e, ROOT_SET)),
        () => a.readSnapshot((r) => lines(r.exportJsonLines!(e, ROOT_SET))),
      ]) {
        const got = (await read()).map((l) => JSON.parse(l) as { j: unknown });
        expect(
          got.map((l) => l.j),
          `${e.name}: format-2 lines`,
        ).toEqual([...TEXTS, null]);
      }
      // Without exactJson, applications get JavaScript values (as JSON.parse gives them).
      expect((await a.get(e, ROOT_SET, 1))?.j).toEqual(JSON.parse(TEXTS[0]!));
    }
    await a.close();
  });

  it('refuses text that is not JSON and lone surrogates, by name, before anything of the batch is written', async () => {
    const a = await open();
    await a.ensureEntity(Doc, ROOT_SET);
    for (const [bad, why] of [
      [new JsonText('{"a":'), /Doc\.j of record 2: it is not JSON text/],
      [new JsonText('"\ud800"'), /Doc\.j of record 2: it holds a lone UTF-16 surrogate/],
    ] as const) {
      const e = await failure(
        a.importBatch(
          Doc,
          ROOT_SET,
          [
            { id: 1, j: { ok: true } },
            { id: 2, j: bad },
          ],
          { mode: 'insert' },
        ),
      );
      expect(e?.code).toBe('UNSUPPORTED_VALUE');
      expect(e?.message).toMatch(why);
      expect(await a.count(Doc, ROOT_SET)).toBe(0);
    }
    // A line whose json text is not JSON is refused by the line decoder.
    const line = '{"id":3,"j":"{\\"a\\":"}';
    await expect(
      a.transaction((tx) => tx.importJsonLines!(Doc, ROOT_SET, [line], { mode: 'insert' })),
    ).rejects.toMatchObject({ code: 'INVALID_VALUE' });
    expect(await a.count(Doc, ROOT_SET)).toBe(0);
    await a.close();
  });
});

describe('bigint keys beyond 2^53 page exactly', () => {
  it('on every export path (SQL-rendered lines on the main connection and in a snapshot, records)', async () => {
    const a = await open();
    const Big = buildSchema({ name: 'BigKeys', key: 'id', fields: { id: t.bigint(), v: t.string() } }, 'declared');
    await a.ensureEntity(Big, ROOT_SET);
    const records = Array.from({ length: 40 }, (_, i) => ({ id: 2n ** 62n + BigInt(i), v: `v${i}` }));
    await a.importBatch(Big, ROOT_SET, records, { mode: 'insert' });
    const want = records.map((r) => encodeRecordLine(Big, r, 'text'));
    expect(await lines(a.exportJsonLines(Big, ROOT_SET, { batchSize: 3 }))).toEqual(want);
    expect(await a.readSnapshot((r) => lines(r.exportJsonLines!(Big, ROOT_SET, { batchSize: 3 })))).toEqual(want);
    expect(await all(a.exportEntity(Big, ROOT_SET, { batchSize: 3 }))).toEqual(records);
    await a.close();
  });
});

describe("datetimes and dates in the codec's special forms", () => {
  it('are stored as the text they are and read back as such, through records and lines', async () => {
    const a = await open();
    const When = buildSchema(
      { name: 'When', key: 'id', fields: { id: t.integer(), at: t.datetime().nullable(), day: t.date().nullable() } },
      'declared',
    );
    const viaLines = buildSchema({ ...When, name: 'WhenLines' }, 'declared');
    for (const e of [When, viaLines]) await a.ensureEntity(e, ROOT_SET);
    const records = [
      { id: 1, at: 'infinity', day: '-infinity' },
      { id: 2, at: '+010000-01-01T00:00:00.000000Z', day: '-000043-03-15' },
      { id: 3, at: '0000-00-00T00:00:00.000000Z', day: '2024-00-15' },
      { id: 4, at: '2024-05-01T10:00:00.123456Z', day: '2024-02-29' },
    ];
    await a.importBatch(When, ROOT_SET, records, { mode: 'insert' });
    await a.transaction((tx) =>
      tx.importJsonLines!(
        viaLines,
        ROOT_SET,
        records.map((r) => encodeRecordLine(viaLines, r, 'text')),
        { mode: 'insert' },
      ),
    );
    for (const e of [When, viaLines]) {
      expect(await all(a.exportEntity(e, ROOT_SET))).toEqual(records);
      expect((await lines(a.exportJsonLines(e, ROOT_SET))).map((l) => JSON.parse(l))).toEqual(records);
      expect(a.getInstance().prepare(`SELECT at, day FROM "${e.name}" ORDER BY id`).raw(true).all()).toEqual(
        records.map((r) => [r.at, r.day]),
      );
    }
    await a.close();
  });
});

describe('unsigned bigints: SQLite INTEGER is signed 64-bit', () => {
  const U = (name: string): EntitySchema =>
    buildSchema(
      { name, key: 'id', fields: { id: t.integer().spec, u: { ...t.bigint().spec, unsigned: true } } },
      'declared',
    );

  it('a value beyond 2^63-1 is refused by name into an INTEGER column (Koan tables), on both write paths', async () => {
    const a = await open();
    const E = U('Unsigned');
    await a.ensureEntity(E, ROOT_SET);
    const records = [
      { id: 1, u: 2n ** 63n - 1n },
      { id: 2, u: 2n ** 64n - 1n },
    ];
    const e = await failure(a.importBatch(E, ROOT_SET, records, { mode: 'insert' }));
    expect(e?.code).toBe('UNSUPPORTED_VALUE');
    expect(e?.message).toMatch(
      /Unsigned\.u of record 2: 18446744073709551615 is beyond SQLite's signed 64-bit INTEGER/,
    );
    const viaLines = records.map((r) => encodeRecordLine(E, r, 'text'));
    const l = await failure(a.transaction((tx) => tx.importJsonLines!(E, ROOT_SET, viaLines, { mode: 'insert' })));
    expect(l?.code).toBe('UNSUPPORTED_VALUE');
    expect(await a.count(E, ROOT_SET)).toBe(0);
    await a.importBatch(E, ROOT_SET, [records[0]!], { mode: 'insert' });
    expect(await all(a.exportEntity(E, ROOT_SET))).toEqual([records[0]]);
    await a.close();
  });

  it('is stored exactly as text into a TEXT column (a table made that way), and read back exactly', async () => {
    const a = await open();
    const E = U('UnsignedText');
    a.getInstance().exec('CREATE TABLE "UnsignedText" (id INTEGER PRIMARY KEY, u TEXT NOT NULL)');
    const records = [
      { id: 1, u: 2n ** 64n - 1n },
      { id: 2, u: 5n },
    ];
    await a.importBatch(E, ROOT_SET, records, { mode: 'insert' });
    expect(a.getInstance().prepare('SELECT typeof(u), u FROM "UnsignedText" ORDER BY id').raw(true).all()).toEqual([
      ['text', '18446744073709551615'],
      ['text', '5'],
    ]);
    expect(await all(a.exportEntity(E, ROOT_SET))).toEqual(records);
    await a.close();
  });
});

describe('values a Koan table should not hold (written there by other code) fail the backup by name', () => {
  it('on the SQL-rendered line path of the main connection and of a snapshot, and on the record path', async () => {
    const a = await open();
    const E = buildSchema(
      { name: 'Flags', key: 'id', fields: { id: t.integer(), flag: t.boolean(), n: t.integer(), s: t.string() } },
      'declared',
    );
    await a.ensureEntity(E, ROOT_SET);
    await a.importBatch(E, ROOT_SET, [{ id: 1, flag: true, n: 1, s: 'a' }], { mode: 'insert' });
    expect(a.jsonLinesSupported(E)).toBe(true);
    const reads = [
      () => lines(a.exportJsonLines(E, ROOT_SET)),
      () => a.readSnapshot((r) => lines(r.exportJsonLines!(E, ROOT_SET))),
      () => all(a.exportEntity(E, ROOT_SET)),
    ];
    for (const [sql, why] of [
      [
        "INSERT INTO Flags VALUES (2, 5, 1, 'b')",
        /Table Flags, column flag, row with key 2: holds INTEGER 5, which the boolean field Flags\.flag/,
      ],
      [
        "UPDATE Flags SET flag = 1, n = 'x' WHERE id = 2",
        /Table Flags, column n, row with key 2: holds TEXT "x", which the integer field Flags\.n/,
      ],
      [
        "UPDATE Flags SET n = 2, s = x'00' WHERE id = 2",
        /Table Flags, column s, row with key 2: holds BLOB of 1 bytes/,
      ],
    ] as const) {
      a.getInstance().exec(sql);
      for (const read of reads) {
        const e = await failure(read());
        expect(e?.code, sql).toBe('UNSUPPORTED_VALUE');
        expect(e?.message, sql).toMatch(why);
      }
    }
    await a.close();
  });
});

describe('AUTOINCREMENT counters', () => {
  it('finish (with no archived structure) advances sqlite_sequence past the ids written, whatever the counter held', async () => {
    const a = await open();
    a.getInstance().exec('CREATE TABLE ticket (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL)');
    const [ticket] = (await a.introspect()).entities;
    await a.transaction(async (tx) => {
      await tx.importBatch(
        ticket!,
        ROOT_SET,
        [40, 41, 45].map((id) => ({ id, title: `t${id}` })),
        { mode: 'insert' },
      );
      a.getInstance().exec("UPDATE sqlite_sequence SET seq = 2 WHERE name = 'ticket'");
      await a.structure.finish(tx, undefined, [{ entity: ticket!, set: ROOT_SET }], []);
    });
    expect(a.getInstance().prepare("SELECT seq FROM sqlite_sequence WHERE name = 'ticket'").pluck(true).get()).toBe(45);
    a.getInstance().exec("INSERT INTO ticket (title) VALUES ('next')");
    expect(a.getInstance().prepare('SELECT max(id) FROM ticket').pluck(true).get()).toBe(46);
    // A table without a primary key round-trips its rows (duplicates included) and takes inserts only.
    a.getInstance().exec("CREATE TABLE log (at TEXT, what TEXT); INSERT INTO log VALUES ('1', 'a'), ('1', 'a')");
    const log = (await a.introspect()).entities.find((e) => e.name === 'log')!;
    expect(log).toMatchObject({ keyless: true, key: '', keyType: 'none' });
    const rows = await all(a.exportEntity(log, ROOT_SET, { batchSize: 1 }));
    expect(rows).toEqual([
      { at: '1', what: 'a' },
      { at: '1', what: 'a' },
    ]);
    expect((await failure(a.importBatch(log, ROOT_SET, rows, { mode: 'upsert' })))?.code).toBe('UNSUPPORTED_KEY');
    expect((await failure(a.remove(log, ROOT_SET, [1])))?.code).toBe('UNSUPPORTED_KEY');
    expect(await a.getMany(log, ROOT_SET, [1])).toEqual([]);
    await a.importBatch(log, ROOT_SET, rows, { mode: 'insert' });
    expect(await a.count(log, ROOT_SET)).toBe(4);
    expect(decodeRecord(log, JSON.parse(encodeRecordLine(log, rows[0]!, 'text')), 'text').record).toEqual(rows[0]);
    await a.close();
  });
});

describe('structure capture', () => {
  it('names the views it does not carry (they read tables outside the backup) and what it captures, in sqlite_master order', async () => {
    const a = await open();
    a.getInstance().exec(`
      CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT);
      CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER REFERENCES a (id));
      CREATE INDEX b_a ON b (a_id);
      CREATE VIEW only_a AS SELECT * FROM a;
      CREATE VIEW a_and_b AS SELECT a.v FROM a JOIN b ON b.a_id = a.id;
      CREATE TRIGGER a_touch AFTER UPDATE ON a BEGIN SELECT 1; END;
      INSERT INTO a (v) VALUES ('x'); PRAGMA user_version = 3;`);
    const a_ = (await a.introspect()).entities.find((e) => e.name === 'a')!;
    const s = await a.structure.capture([{ entity: a_, set: ROOT_SET }]);
    expect(s.provider).toBe('sqlite');
    expect(s.objects.map((o) => `${o.kind} ${o.name}`)).toEqual([
      'table a',
      'view only_a',
      'trigger a_touch',
      'sequence a',
      'pragma user_version',
    ]);
    expect(s.notCaptured).toEqual([
      { kind: 'view', name: 'a_and_b', reason: 'it reads b, which this backup does not hold' },
    ]);
    await a.close();
  });
});

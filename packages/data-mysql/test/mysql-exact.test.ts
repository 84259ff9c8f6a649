/**
 * Exactness of the MariaDB adapter on a database it did not write (test/varied-schema.ts): what introspection makes of
 * every column type, every value read back exactly by `exportEntity` and `exportJsonLines` (checked against the
 * server's own text), writes into tables made by others (generated columns, ON UPDATE, AUTO_INCREMENT, BIT, YEAR,
 * zero dates) on every write path, and refusals of what a column cannot hold, by name, before anything is written.
 */
import { type DataRecord, type EntitySchema, JsonText, type KoanError, t } from '@koan/data';
import { buildSchema, type DataWriter, encodeRecordLine } from '@koan/data/adapter-kit';
import { probeService, serviceUrls } from '@koan/data/testing';
import mysql, { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlAdapter, type MysqlAdapter } from '../src/index.js';
import { admin, dumpSchema, mysqlScript, scratchDatabase, tableDigest } from './native.js';
import { VARIED_SCHEMA, VARIED_TABLES } from './varied-schema.js';

const skipReason = await probeService('mysql', async () => {
  const conn = await createConnection({ uri: serviceUrls.mysql, connectTimeout: 3000 });
  await conn.end();
});

async function collect(iterable: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of iterable) out.push(...batch);
  return out;
}

async function linesOf(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  let text = '';
  for await (const chunk of chunks) text += Buffer.from(chunk).toString('utf8');
  return text;
}

describe.skipIf(skipReason !== undefined)('MariaDB adapter on a database it did not write', () => {
  const drops: (() => Promise<void>)[] = [];
  let source: string;
  let adapter: MysqlAdapter;
  let entities: Map<string, EntitySchema>;

  beforeAll(async () => {
    const db = await scratchDatabase('exact_src');
    drops.push(db.drop);
    source = db.name;
    await mysqlScript(source, VARIED_SCHEMA);
    adapter = createMysqlAdapter({ uri: serviceUrls.mysql, database: source, poolSize: 3 }, { source: 'src' });
    await adapter.init();
    entities = new Map((await adapter.introspect()).entities.map((e) => [e.name, e]));
  }, 120_000);

  afterAll(async () => {
    await adapter?.close();
    for (const drop of drops) await drop().catch(() => undefined);
  });

  it('introspects every table: tinyint(1) as integer, bigint and unsigned keys, bit, float, generated, keyless, any key type; the view as not data', async () => {
    const { entities: found, skipped, notData } = await adapter.introspect();
    expect(found.map((e) => e.name).sort()).toEqual([...VARIED_TABLES].sort());
    expect(skipped).toEqual([]);
    expect(notData).toEqual([{ name: 'v_kinds', kind: 'view', note: expect.stringMatching(/view/) }]);
    const kinds = entities.get('kinds')!;
    const types = Object.fromEntries(
      Object.entries(kinds.fields).map(([n, f]) => [
        n,
        `${f.type}${f.unsigned ? ' unsigned' : ''}${f.generated ? ` ${f.generated}` : ''}`,
      ]),
    );
    expect(types).toEqual({
      id: 'integer',
      flag: 'integer',
      small: 'integer',
      med: 'integer',
      zf: 'integer',
      big: 'bigint',
      ubig: 'bigint unsigned',
      b1: 'string',
      b12: 'string',
      f: 'number',
      d: 'number',
      dec65: 'decimal',
      dz: 'date',
      dt6: 'datetime',
      dt0: 'datetime',
      tm: 'string',
      yr: 'integer',
      en: 'string',
      st: 'string',
      js: 'json',
      txt: 'string',
      vc: 'string',
      bin: 'binary',
      fixed: 'binary',
      blb: 'binary',
      geo: 'binary',
      ts: 'datetime',
      gv: 'integer virtual',
      gs: 'string stored',
    });
    expect(kinds.fields.dec65).toMatchObject({ precision: 65, scale: 30 });
    expect(entities.get('bigkeys')).toMatchObject({ key: 'id', keyType: 'bigint' });
    expect(entities.get('ukeys')).toMatchObject({ keyType: 'bigint' });
    expect(entities.get('ukeys')!.fields.id).toMatchObject({ type: 'bigint', unsigned: true });
    expect(entities.get('deckeys')).toMatchObject({ keyType: 'decimal' });
    expect(entities.get('datekeys')).toMatchObject({ keyType: 'date', keyFields: ['day', 'seq'] });
    expect(entities.get('binkeys')).toMatchObject({ keyType: 'binary' });
    expect(entities.get('enumkeys')).toMatchObject({ keyType: 'string', keyFields: ['kind', 'n'] });
    expect(entities.get('bitkeys')).toMatchObject({ keyType: 'string' });
    expect(entities.get('nokey')).toMatchObject({ keyless: true, key: '', keyType: 'none' });
  });

  it('reads every value exactly: tinyint 5 and -1, bigints, FLOAT, bits, zero dates, DATETIME(6), json text, JSON null vs SQL NULL', async () => {
    const rows = await collect(adapter.exportEntity(entities.get('kinds')!, 'root', { exactJson: true }));
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(rows.map((r) => r.flag)).toEqual([0, 1, 5, -1, 0]);
    expect(byId.get(0)).toMatchObject({
      zf: 42,
      big: -(2n ** 63n),
      ubig: 2n ** 64n - 1n,
      b1: '0',
      b12: '000000000001',
      f: 16777216,
      d: 0.1,
      dec65: '12345678901234567890123456789012345.123456789012345678901234567890',
      dz: '0000-00-00',
      dt6: '2024-00-15T10:00:00.123456Z',
      dt0: '0000-00-00T00:00:00.000000Z',
      tm: '-838:59:59.000',
      yr: 0,
      en: 'medium',
      st: 'a,c',
      txt: 'tab\there é',
      ts: '2001-02-03T04:05:06.789000Z',
      gv: 7,
      gs: 'ZERO ID',
    });
    // The stored JSON text exactly: a number beyond double precision, key order, a duplicate key, blanks.
    expect(byId.get(0)!.js).toEqual(
      new JsonText('{"z":1, "big":12345678901234567890123,"a":[1.0,1E2,-0.000],"dup":1,"dup":2}'),
    );
    expect(byId.get(3)!.js).toEqual(new JsonText('  [ 1 ,\n 2 ]  '));
    expect(byId.get(1)!.js).toEqual(new JsonText('null')); // JSON null
    expect(byId.get(2)!.js).toBeNull(); // SQL NULL
    expect(byId.get(1)).toMatchObject({ f: Math.fround(0.1), d: 0.30000000000000004, b12: '101010101010', yr: 2155 });
    expect(byId.get(2)).toMatchObject({ f: -3.4028234663852886e38, d: 1e300, ubig: 2n ** 63n });
    expect(byId.get(3)).toMatchObject({ f: 1.401298464324817e-45, d: 5e-324 });
    // Spatial values are MariaDB's bytes: the SRID (4326, little-endian), then the WKB of POINT(1 2).
    expect(Buffer.from(byId.get(0)!.geo as Uint8Array).toString('hex')).toBe(
      'e61000000101000000000000000000f03f0000000000000040',
    );
    expect(Buffer.from(byId.get(0)!.fixed as Uint8Array).toString('hex')).toBe('00010200');
    // Without exactJson (an application's reads) json fields are JavaScript values.
    const plain = await collect(adapter.exportEntity(entities.get('kinds')!, 'root'));
    expect(plain.find((r) => r.id === 3)!.js).toEqual([1, 2]);
  });

  it('reads every DOUBLE and FLOAT as the exact double the server holds (mysql2 rounds some when it parses text)', async () => {
    const conn = await mysql.createConnection({ uri: serviceUrls.mysql, database: source });
    try {
      await conn.query('CREATE TABLE ratios (id INT PRIMARY KEY, f FLOAT, d DOUBLE)');
      await conn.query(
        'INSERT INTO ratios WITH RECURSIVE seq (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < 300) SELECT i, i / 7, i / 3 FROM seq',
      );
      // The server's own text of each value (CONCAT keeps it a string), parsed exactly by Number().
      const [texts] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT id, CONCAT(CAST(f AS DOUBLE)) AS f, CONCAT(d) AS d FROM ratios ORDER BY id',
      );
      const ratios = (await adapter.introspect()).entities.find((e) => e.name === 'ratios')!;
      const rows = await collect(adapter.exportEntity(ratios, 'root'));
      expect(rows.map((r) => [r.id, r.f, r.d])).toEqual(texts.map((t) => [t.id, Number(t.f), Number(t.d)]));
      // 64/7 as a FLOAT is 9.142857551574707 exactly (mysql2's own parser says ...709, which is no float32).
      expect(rows.find((r) => r.id === 64)!.f).toBe(Math.fround(64 / 7));
    } finally {
      await conn.query('DROP TABLE IF EXISTS ratios');
      await conn.end();
    }
  });

  it('pages every key type in the server order, exactly across 2^53 and the unsigned range, one or two rows a page', async () => {
    const keysOf = async (name: string, pick: (r: DataRecord) => unknown, batchSize = 1) =>
      (await collect(adapter.exportEntity(entities.get(name)!, 'root', { batchSize }))).map(pick);
    expect(await keysOf('bigkeys', (r) => r.id)).toEqual([
      -(2n ** 63n),
      0n,
      9007199254740992n,
      9007199254740993n,
      2n ** 63n - 1n,
    ]);
    expect(await keysOf('ukeys', (r) => r.id, 2)).toEqual([0n, 2n ** 63n, 2n ** 64n - 2n, 2n ** 64n - 1n]);
    expect(await keysOf('deckeys', (r) => r.amount)).toEqual([
      '-1.5000',
      '0.0000',
      '0.0001',
      '9.9999',
      '10.0000',
      '9999999999999999.9999',
    ]);
    expect(await keysOf('datekeys', (r) => `${r.day}/${r.seq}`)).toEqual([
      '0000-00-00/1',
      '2024-00-15/1',
      '2024-02-29/1',
      '2024-02-29/2',
      '9999-12-31/7',
    ]);
    expect(await keysOf('binkeys', (r) => Buffer.from(r.k as Uint8Array).toString('hex'))).toEqual([
      '',
      '00',
      '0000',
      '7f',
      'ff',
    ]);
    // ENUM orders by position ('zeta' first), BIT by number: pages continue in that order.
    expect(await keysOf('enumkeys', (r) => `${r.kind}/${r.n}`)).toEqual([
      'zeta/1',
      'zeta/2',
      'alpha/1',
      'alpha/2',
      'mid/3',
    ]);
    expect(await keysOf('bitkeys', (r) => r.k)).toEqual(['00000000', '00000010', '10000000', '11111111']);
    // A table without a key: every row, duplicates included, in batches.
    expect(await keysOf('nokey', (r) => `${r.a}/${r.b}`)).toEqual(['1/same', '1/same', 'null/null', '2/other']);
  });

  it('renders JSON lines byte-equal to the records (format 2, exact json text), for every entity it renders', async () => {
    let rendered = 0;
    for (const entity of entities.values()) {
      if (!adapter.jsonLinesSupported(entity)) continue;
      rendered++;
      const records = await collect(adapter.exportEntity(entity, 'root', { exactJson: true }));
      const want = records.map((r) => `${encodeRecordLine(entity, r, 'text')}\n`).join('');
      expect(await linesOf(adapter.exportJsonLines(entity, 'root', { batchSize: 2 })), entity.name).toBe(want);
    }
    // kinds has FLOAT/DOUBLE columns, whose text is not JavaScript's: it takes exportEntity.
    expect(adapter.jsonLinesSupported(entities.get('kinds')!)).toBe(false);
    expect(rendered).toBe(VARIED_TABLES.length - 1);
    // The fast path's lines of json columns: the exact text, as a JSON string.
    const Json = buildSchema(
      { name: 'kindsJson', key: 'id', table: 'kinds', fields: { id: t.integer(), js: t.json().nullable() } },
      'introspected',
    );
    const lines = (await linesOf(adapter.exportJsonLines(Json, 'root'))).split('\n');
    expect(lines[0]).toBe(
      '{"id":0,"js":"{\\"z\\":1, \\"big\\":12345678901234567890123,\\"a\\":[1.0,1E2,-0.000],\\"dup\\":1,\\"dup\\":2}"}',
    );
    expect(lines.slice(1, 3)).toEqual(['{"id":1,"js":"null"}', '{"id":2,"js":null}']);
  });

  describe('writes into tables made by mysqldump --no-data', () => {
    let target: string;
    let into: MysqlAdapter;

    beforeAll(async () => {
      const db = await scratchDatabase('exact_dump');
      drops.push(db.drop);
      target = db.name;
      await mysqlScript(target, (await dumpSchema(source)).replace(/ AUTO_INCREMENT=\d+/g, ''));
      into = createMysqlAdapter({ uri: serviceUrls.mysql, database: target, poolSize: 3 });
      await into.init();
    });

    afterAll(async () => {
      await into?.close();
    });

    const paths: [string, (tx: DataWriter, e: EntitySchema, rs: DataRecord[]) => Promise<unknown>][] = [
      ['INSERT', (tx, e, rs) => tx.importBatch(e, 'root', rs, { mode: 'insert' })],
      ['LOAD DATA', (tx, e, rs) => tx.importBatch(e, 'root', rs, { mode: 'insert', bulk: true })],
      [
        'archive lines (LOAD DATA)',
        (tx, e, rs) =>
          tx.importJsonLines!(
            e,
            'root',
            rs.map((r) => encodeRecordLine(e, r, 'text')),
            { mode: 'insert', bulk: true },
          ),
      ],
      [
        'archive line stream',
        (tx, e, rs) =>
          tx.importJsonLineStream!(
            e,
            'root',
            (async function* () {
              yield rs.map((r) => encodeRecordLine(e, r, 'text'));
            })(),
            { mode: 'insert', bulk: true },
          ),
      ],
    ];

    it.for(paths)(
      'writes every value exactly through %s, never writes generated columns, moves AUTO_INCREMENT past the ids',
      async ([, write]) => {
        const exported = new Map<string, DataRecord[]>();
        for (const table of VARIED_TABLES)
          exported.set(table, await collect(adapter.exportEntity(entities.get(table)!, 'root', { exactJson: true })));
        await into.transaction(async (tx) => {
          await tx.deferConstraints?.();
          for (const table of VARIED_TABLES) {
            await tx.clear(entities.get(table)!, 'root');
            await write(tx, entities.get(table)!, exported.get(table)!);
          }
        });
        for (const table of VARIED_TABLES)
          expect(await tableDigest(target, table), table).toEqual(await tableDigest(source, table));
        const next = await admin(async (c) => {
          const [rows] = await c.query({
            sql: "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kinds'",
            rowsAsArray: true,
          });
          return Number((rows as unknown as unknown[][])[0]![0]);
        }, target);
        expect(next).toBeGreaterThan(1000);
      },
    );

    it.for([false, true])(
      'an upsert (bulk: %s) keeps the restored ON UPDATE CURRENT_TIMESTAMP values and writes ENUM, SET and BIT values back',
      async (bulk) => {
        const kinds = entities.get('kinds')!;
        const rows = await collect(adapter.exportEntity(kinds, 'root', { exactJson: true }));
        await into.transaction(async (tx) => {
          await tx.clear(kinds, 'root');
          await tx.importBatch(kinds, 'root', rows, { mode: 'insert' });
        });
        // Change every row in the target, then merge the archived rows back: every value comes back as it was,
        // the TIMESTAMP ... ON UPDATE column included.
        await admin(
          (c) => c.query("UPDATE kinds SET vc = CONCAT('x', id), en = 'small', st = 'b', b12 = b'111111111111'"),
          target,
        );
        expect(await tableDigest(target, 'kinds')).not.toEqual(await tableDigest(source, 'kinds'));
        const result = await into.importBatch(kinds, 'root', rows, { mode: 'upsert', bulk });
        expect(result).toEqual({ inserted: 0, updated: rows.length });
        expect(await tableDigest(target, 'kinds')).toEqual(await tableDigest(source, 'kinds'));
      },
    );

    it('treats an upsert into a keyless table as an insert, and refuses reads and removals by key', async () => {
      const nokey = entities.get('nokey')!;
      const rows = await collect(adapter.exportEntity(nokey, 'root'));
      await into.clear(nokey, 'root');
      expect(await into.importBatch(nokey, 'root', rows, { mode: 'upsert', bulk: true })).toEqual({
        inserted: 4,
        updated: 0,
      });
      expect(await tableDigest(target, 'nokey')).toEqual(await tableDigest(source, 'nokey'));
      await expect(into.get(nokey, 'root', 1)).rejects.toMatchObject({ code: 'UNSUPPORTED_KEY' });
      await expect(into.remove(nokey, 'root', [1])).rejects.toMatchObject({ code: 'UNSUPPORTED_KEY' });
      expect(await into.clear(nokey, 'root')).toBe(4);
    });
  });
});

describe.skipIf(skipReason !== undefined)('MariaDB refuses what a column cannot hold, by name, before writing', () => {
  let database: { name: string; drop: () => Promise<void> };
  let adapter: MysqlAdapter;
  const Narrow = buildSchema(
    {
      name: 'Narrow',
      key: 'id',
      table: 'narrow',
      fields: {
        id: t.integer(),
        f: t.number().nullable(),
        ts: t.datetime().nullable(),
        d: t.decimal().nullable(),
        b: t.string().nullable(),
        ti: t.integer().nullable(),
        y: t.integer().nullable(),
        u: t.integer().nullable(),
        dt: t.datetime().nullable(),
        dd: t.date().nullable(),
        n: t.number().nullable(),
        fx: t.binary().nullable(),
        big: t.bigint().nullable(),
      },
    },
    'introspected',
  );
  const empty = Object.fromEntries(Object.keys(Narrow.fields).map((f) => [f, null]));

  beforeAll(async () => {
    database = await scratchDatabase('refuse');
    await admin(
      (c) =>
        c.query(
          'CREATE TABLE narrow (id INT PRIMARY KEY, f FLOAT NULL, ts TIMESTAMP NULL, d DECIMAL(5,2) NULL, b BIT(4) NULL, ' +
            'ti TINYINT NULL, y YEAR NULL, u INT UNSIGNED NULL, dt DATETIME(6) NULL, dd DATE NULL, n DOUBLE NULL, ' +
            'fx BINARY(4) NULL, big BIGINT NULL)',
        ),
      database.name,
    );
    adapter = createMysqlAdapter({ uri: serviceUrls.mysql, database: database.name, poolSize: 2 });
    await adapter.init();
  });

  afterAll(async () => {
    await adapter?.close();
    await database?.drop();
  });

  const refused: [string, unknown, RegExp][] = [
    ['f', 0.1, /not a 32-bit float/],
    ['ts', '2040-01-01T00:00:00.000000Z', /outside the range of a TIMESTAMP/],
    ['ts', '2024-00-15T00:00:00.000000Z', /outside the range of a TIMESTAMP/],
    ['ts', '2024-01-01T00:00:00.500000Z', /more fraction digits than the column keeps \(0\)/],
    ['d', '1.234', /3 fraction digits .* DECIMAL\(5,2\) .* would round it/],
    ['d', '12345.1', /does not fit the DECIMAL\(5,2\)/],
    ['d', 'NaN', /no NaN/],
    ['b', '10101', /BIT\(4\) column holds exactly 4 binary digits/],
    ['ti', 300, /outside the column's range \(-128 to 127\)/],
    ['y', 1800, /not a YEAR/],
    ['u', -1, /outside the column's range \(0 to 4294967295\)/],
    ['dt', 'infinity', /no infinity datetime/],
    ['dt', '+010000-01-01T00:00:00.000000Z', /outside 0000-9999/],
    ['dd', '-000043-03-15', /outside 0000-9999/],
    ['n', Number.NaN, /no NaN/],
    ['n', Number.POSITIVE_INFINITY, /no Infinity/],
    ['fx', new Uint8Array([1, 2]), /padded with zero bytes/],
  ];

  const paths: [string, (tx: DataWriter, rs: DataRecord[]) => Promise<unknown>][] = [
    ['INSERT', (tx, rs) => tx.importBatch(Narrow, 'root', rs, { mode: 'insert' })],
    ['upsert', (tx, rs) => tx.importBatch(Narrow, 'root', rs, { mode: 'upsert' })],
    ['LOAD DATA', (tx, rs) => tx.importBatch(Narrow, 'root', rs, { mode: 'insert', bulk: true })],
    [
      'archive lines',
      (tx, rs) =>
        tx.importJsonLines!(
          Narrow,
          'root',
          rs.map((r) => encodeRecordLine(Narrow, r, 'text')),
          { mode: 'insert', bulk: true },
        ),
    ],
    [
      'archive line stream',
      (tx, rs) =>
        tx.importJsonLineStream!(
          Narrow,
          'root',
          (async function* () {
            yield rs.slice(0, 1).map((r) => encodeRecordLine(Narrow, r, 'text'));
            yield rs.slice(1).map((r) => encodeRecordLine(Narrow, r, 'text'));
          })(),
          { mode: 'insert', bulk: true },
        ),
    ],
  ];

  it.for(paths)(
    'through %s: UNSUPPORTED_VALUE naming entity, field, key and reason; nothing written',
    async ([, write]) => {
      await adapter.clear(Narrow, 'root');
      for (const [field, value, reason] of refused) {
        // A good row first, so a refusal of the second row shows that nothing of the batch stays.
        const rows = [
          { ...empty, id: 1 },
          { ...empty, id: 7, [field]: value },
        ];
        const error = (await adapter.transaction((tx) => write(tx, rows)).catch((e) => e)) as KoanError;
        expect(error.code, `${field} = ${String(value)}: ${error.message}`).toBe('UNSUPPORTED_VALUE');
        expect(error.message).toMatch(new RegExp(`Narrow\\.${field} \\(key 7\\)`));
        expect(error.message).toMatch(reason);
        expect(error.details).toMatchObject({ entity: 'Narrow', field, key: '7' });
        expect(await adapter.count(Narrow, 'root')).toBe(0);
      }
    },
  );

  it.for(paths)(
    'through %s: writes what the columns hold exactly (year 0, zero dates, float32, bits)',
    async ([, write]) => {
      await adapter.clear(Narrow, 'root');
      const rows = [
        {
          ...empty,
          id: 1,
          f: Math.fround(0.1),
          ts: '0000-00-00T00:00:00.000000Z',
          d: '-999.990',
          b: '0101',
          ti: -128,
          y: 0,
          u: 4294967295,
          dt: '0000-00-00T00:00:00.000000Z',
          dd: '2024-00-15',
          n: 5e-324,
          fx: new Uint8Array([0, 1, 2, 0]),
          big: 9007199254740993n,
        },
        {
          ...empty,
          id: 2,
          ts: '2038-01-19T03:14:07.000000Z',
          y: 2155,
          dt: '0001-01-01T00:00:00.000001Z',
          dd: '0000-00-00',
        },
      ];
      await adapter.transaction((tx) => write(tx, rows));
      const text = await admin(async (c) => {
        const [r] = await c.query({
          sql: 'SELECT id, CAST(f AS DOUBLE), ts, d, BIN(b), ti, y, u, dt, dd, n, HEX(fx), big FROM narrow ORDER BY id',
          rowsAsArray: true,
        });
        return (r as unknown as unknown[][]).map((row) => row.map((v) => (v === null ? 'NULL' : String(v))).join('|'));
      }, database.name);
      expect(text).toEqual([
        '1|0.10000000149011612|0000-00-00 00:00:00|-999.99|101|-128|0|4294967295|0000-00-00 00:00:00.000000|2024-00-15|5e-324|00010200|9007199254740993',
        '2|NULL|2038-01-19 03:14:07|NULL|NULL|NULL|2155|NULL|0001-01-01 00:00:00.000001|0000-00-00|NULL|NULL|NULL',
      ]);
      await adapter.clear(Narrow, 'root');
    },
  );
});

describe.skipIf(skipReason !== undefined)('tables for entities of other stores (cross-provider restores)', () => {
  let database: { name: string; drop: () => Promise<void> };
  let adapter: MysqlAdapter;

  beforeAll(async () => {
    database = await scratchDatabase('xp_keys');
    adapter = createMysqlAdapter({ uri: serviceUrls.mysql, database: database.name, poolSize: 2 });
    await adapter.init();
  });

  afterAll(async () => {
    await adapter?.close();
    await database?.drop();
  });

  const cases: [string, EntitySchema, DataRecord[], string][] = [
    [
      'decimal(10,2)',
      buildSchema({ name: 'DecKey', key: 'k', fields: { k: t.decimal(10, 2), v: t.integer() } }, 'introspected'),
      [
        { k: '10.50', v: 1 },
        { k: '-3.00', v: 2 },
        { k: '2.25', v: 3 },
      ],
      'decimal(10,2)',
    ],
    [
      'date and datetime',
      buildSchema(
        { name: 'DayKey', key: 'd', keyFields: ['d', 'at'], fields: { d: t.date(), at: t.datetime(), v: t.integer() } },
        'introspected',
      ),
      [
        { d: '2024-02-29', at: '2024-02-29T10:00:00.000001Z', v: 1 },
        { d: '2024-02-29', at: '2024-02-29T09:00:00.000000Z', v: 2 },
        { d: '1999-01-01', at: '1999-01-01T00:00:00.000000Z', v: 3 },
      ],
      'date',
    ],
    [
      'bigint unsigned',
      buildSchema(
        { name: 'UKey', key: 'k', fields: { k: { ...t.bigint().spec, unsigned: true }, v: t.integer().spec } },
        'introspected',
      ),
      [
        { k: 2n ** 64n - 1n, v: 1 },
        { k: 9007199254740993n, v: 2 },
        { k: 0n, v: 3 },
      ],
      'bigint(20) unsigned',
    ],
    [
      'binary',
      buildSchema({ name: 'BinKey', key: 'k', fields: { k: t.binary(), v: t.integer() } }, 'introspected'),
      [
        { k: new Uint8Array([255]), v: 1 },
        { k: new Uint8Array([0, 0]), v: 2 },
        { k: new Uint8Array([0]), v: 3 },
      ],
      'varbinary(3072)',
    ],
  ];

  it.for(cases)(
    'creates a table keyed by %s, writes it and pages it in key order',
    async ([, schema, records, storeType]) => {
      await adapter.ensureEntity(schema, 'root');
      const described = await adapter.describe(schema, 'root');
      expect(described.columns[0]!.storeType).toBe(storeType);
      await adapter.importBatch(schema, 'root', records, { mode: 'insert', bulk: true });
      await adapter.importBatch(schema, 'root', records, { mode: 'upsert' });
      const back = await collect(adapter.exportEntity(schema, 'root', { batchSize: 1 }));
      const order = (r: DataRecord) => `${r.v}`;
      const sorted = [...records].sort((a, b) => {
        for (const f of schema.keyFields ?? [schema.key]) {
          const x = a[f];
          const y = b[f];
          const c =
            x instanceof Uint8Array
              ? Buffer.compare(Buffer.from(x), Buffer.from(y as Uint8Array))
              : typeof x === 'string' && schema.fields[f]!.type === 'decimal'
                ? Number(x) - Number(y)
                : x! < y!
                  ? -1
                  : x! > y!
                    ? 1
                    : 0;
          if (c !== 0) return c;
        }
        return 0;
      });
      expect(back.map(order)).toEqual(sorted.map(order));
      expect(back).toHaveLength(records.length);
      // remove addresses rows by `key` alone: every row with that first key column goes.
      const first = records[0]![schema.key];
      const same = records.filter((r) => String(r[schema.key]) === String(first)).length;
      expect(await adapter.remove(schema, 'root', [first as never])).toBe(same);
    },
  );

  it('creates a table without a primary key for a keyless entity and inserts every row', async () => {
    const Log = buildSchema(
      { name: 'Log', keyless: true, fields: { at: t.datetime(), msg: t.string() } },
      'introspected',
    );
    await adapter.ensureEntity(Log, 'root');
    expect((await adapter.describe(Log, 'root')).primaryKey).toEqual([]);
    const rows = [
      { at: '2024-01-01T00:00:00.000000Z', msg: 'same' },
      { at: '2024-01-01T00:00:00.000000Z', msg: 'same' },
    ];
    await adapter.importBatch(Log, 'root', rows, { mode: 'insert' });
    await adapter.importBatch(Log, 'root', rows, { mode: 'upsert', bulk: true });
    expect(await collect(adapter.exportEntity(Log, 'root', { batchSize: 3 }))).toEqual([...rows, ...rows]);
  });
});

describe.skipIf(skipReason !== undefined)('introspection names what it cannot back up', () => {
  it('a system-versioned table is skipped with its reason; a sequence is not data', async () => {
    const db = await scratchDatabase('skipped');
    const adapter = createMysqlAdapter({ uri: serviceUrls.mysql, database: db.name, poolSize: 1 });
    try {
      await mysqlScript(
        db.name,
        'CREATE TABLE plain (id INT PRIMARY KEY); CREATE TABLE audited (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING; CREATE SEQUENCE seq_orders;',
      );
      await adapter.init();
      const { entities, skipped, notData } = await adapter.introspect();
      expect(entities.map((e) => e.name)).toEqual(['plain']);
      expect(skipped).toEqual([
        { table: 'audited', reason: expect.stringMatching(/system-versioned: its history rows/) },
      ]);
      expect(notData).toEqual([{ name: 'seq_orders', kind: 'sequence', note: expect.stringMatching(/sequence/) }]);
    } finally {
      await adapter.close();
      await db.drop();
    }
  });
});

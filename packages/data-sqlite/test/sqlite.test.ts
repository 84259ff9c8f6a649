import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, introspectSources, registeredEntities, t, unregisterEntity } from '@koan/data';
import { buildSchema, ROOT_SET } from '@koan/data/adapter-kit';
import { describeAdapterConformance, sharedDatasetsDir } from '@koan/data/testing';
import { createSqliteAdapter, fieldTypeOfColumn, type SqliteAdapter } from '@koan/data-sqlite';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'koan-sqlite-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
const dbFile = () => join(root, `db-${++n}.sqlite`);

async function open(path = dbFile(), settings: { walMode?: boolean } = {}): Promise<SqliteAdapter> {
  const adapter = createSqliteAdapter({ path, ...settings });
  await adapter.init();
  return adapter;
}

describeAdapterConformance({ name: 'sqlite (file, WAL)', create: async () => createSqliteAdapter({ path: dbFile() }) });
describeAdapterConformance({
  name: 'sqlite (:memory:)',
  create: async () => createSqliteAdapter({ path: ':memory:' }),
});

const Item = buildSchema(
  {
    name: 'SqliteItem',
    key: 'id',
    fields: { id: t.integer(), name: t.string(), price: t.decimal(), at: t.datetime().nullable() },
  },
  'declared',
);

describe('sqlite adapter', () => {
  it('opens the file in WAL mode by default, and in rollback-journal mode without snapshot reads when walMode is false', async () => {
    const wal = await open();
    expect(wal.getInstance().pragma('journal_mode', { simple: true })).toBe('wal');
    expect(wal.capabilities.snapshotReads).toBe(true);
    await wal.close();
    const plain = await open(dbFile(), { walMode: false });
    expect(plain.getInstance().pragma('journal_mode', { simple: true })).toBe('delete');
    expect(plain.capabilities.snapshotReads).toBe(false);
    expect(await plain.readSnapshot(async (r) => r.consistency)).toBe('fuzzy');
    await plain.close();
  });

  it('leaves an existing database in its journal mode (reading it changes nothing); walMode: true switches it', async () => {
    const path = dbFile();
    const raw = new Database(path);
    raw.pragma('journal_mode = DELETE');
    raw.exec("CREATE TABLE legacy (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO legacy VALUES (1, 'a'), (2, 'b')");
    raw.close();
    const digest = async () =>
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
    const before = await digest();
    const a = await open(path);
    expect(a.getInstance().pragma('journal_mode', { simple: true })).toBe('delete');
    const [legacy] = (await a.introspect()).entities;
    expect(a.capabilities.snapshotReads).toBe(true);
    // A consistent read there holds a read lock: the rows are those of the moment it began.
    const rows = await a.readSnapshot(async (r) => {
      expect(r.consistency).toBe('snapshot');
      const out: unknown[] = [];
      for await (const batch of r.exportEntity(legacy!, ROOT_SET)) out.push(...batch);
      return out;
    });
    expect(rows).toEqual([
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
    ]);
    await a.close();
    expect(await digest(), 'the file is byte for byte as it was').toBe(before);
    const switched = await open(path, { walMode: true });
    expect(switched.getInstance().pragma('journal_mode', { simple: true })).toBe('wal');
    await switched.close();
  });

  it('creates tables with the documented column types, one per set, and describes them', async () => {
    const a = await open();
    await a.ensureEntity(Item, ROOT_SET);
    await a.ensureEntity(Item, 'eu');
    const d = await a.describe(Item, 'eu');
    expect(d.location).toContain('"SqliteItem#eu"');
    expect(d.columns).toEqual([
      { name: 'id', storeType: 'INTEGER', nullable: false },
      { name: 'name', storeType: 'TEXT', nullable: false },
      { name: 'price', storeType: 'DECIMAL_TEXT', nullable: false },
      { name: 'at', storeType: 'DATETIME_TEXT', nullable: true },
    ]);
    expect(d.primaryKey).toEqual(['id']);
    const raw = a.getInstance();
    await a.importBatch(Item, ROOT_SET, [{ id: 1, name: 'x', price: '12.50', at: '2024-05-01T10:00:00.123456Z' }], {
      mode: 'insert',
    });
    expect(raw.prepare('SELECT price, typeof(price) AS t FROM "SqliteItem"').get()).toEqual({
      price: '12.50',
      t: 'text',
    });
    await a.close();
  });

  it('rejects a table that lacks a declared field with SCHEMA_MISMATCH, and a write to a missing set with TABLE_MISSING', async () => {
    const a = await open();
    a.getInstance().exec('CREATE TABLE "SqliteItem" (id INTEGER PRIMARY KEY, name TEXT)');
    await expect(a.ensureEntity(Item, ROOT_SET)).rejects.toMatchObject({ code: 'SCHEMA_MISMATCH' });
    await expect(
      a.importBatch(Item, 'nope', [{ id: 1, name: 'x', price: '1' }], { mode: 'insert' }),
    ).rejects.toMatchObject({ code: 'TABLE_MISSING' });
    expect(await a.count(Item, 'nope')).toBe(0);
    await a.close();
  });

  it('serialises writers behind an open transaction and keeps its writes out when it throws', async () => {
    const a = await open();
    await a.ensureEntity(Item, ROOT_SET);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const tx = a.transaction(async (w) => {
      await w.importBatch(Item, ROOT_SET, [{ id: 1, name: 'in tx', price: '1' }], { mode: 'insert' });
      await gate;
      throw new Error('rollback');
    });
    const outside = a.importBatch(Item, ROOT_SET, [{ id: 2, name: 'outside', price: '2' }], { mode: 'insert' });
    release();
    await expect(tx).rejects.toThrow('rollback');
    await outside;
    expect((await a.getMany(Item, ROOT_SET, [1, 2])).map((r) => r.name)).toEqual(['outside']);
    await a.close();
  });

  it('bulk writes bind many rows per statement: a duplicate inside one is named exactly and nothing stays; upserts of a key twice keep the last', async () => {
    const a = await open();
    await a.ensureEntity(Item, ROOT_SET);
    const rows = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        id: from + i,
        name: `n${from + i}`,
        price: `${from + i}.5`,
        at: null,
      }));
    await a.importBatch(Item, ROOT_SET, rows(1000, 1), { mode: 'insert' });
    // Row 137 of 250 (inside the second statement) repeats the stored key 1000; row 201 repeats row 5.
    const batch = rows(1, 250);
    batch[137] = { ...batch[137]!, id: 1000 };
    await expect(a.importBatch(Item, ROOT_SET, batch, { mode: 'insert', bulk: true })).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
      details: { key: 1000 },
    });
    batch[137] = rows(138, 1)[0]!;
    batch[201] = { ...batch[5]!, name: 'again' };
    await expect(a.importBatch(Item, ROOT_SET, batch, { mode: 'insert', bulk: true })).rejects.toMatchObject({
      code: 'DUPLICATE_KEY',
      details: { key: 6 },
    });
    expect(await a.count(Item, ROOT_SET)).toBe(1);

    await a.ensureEntity(Item, 'fresh');
    expect(await a.importBatch(Item, 'fresh', batch, { mode: 'upsert', bulk: true })).toEqual({
      inserted: 250,
      updated: 0,
    });
    expect(await a.count(Item, 'fresh')).toBe(249);
    expect((await a.get(Item, 'fresh', 6))?.name).toBe('again');
    expect((await a.get(Item, 'fresh', 250))?.name).toBe('n250');
    await a.close();
  });

  it('upserts into a set that holds records count updates exactly as row by row, keys repeated within and across statements', async () => {
    const a = await open();
    await a.ensureEntity(Item, ROOT_SET);
    const item = (id: number, name = `n${id}`) => ({ id, name, price: '1.00', at: null });
    await a.importBatch(
      Item,
      ROOT_SET,
      Array.from({ length: 50 }, (_, i) => item(i + 1)),
      { mode: 'insert' },
    );
    // Keys 1-200 then 1-50 again (250 rows: two full statements and a tail of 50); a new key twice in one statement.
    const batch = Array.from({ length: 250 }, (_, i) => item((i % 200) + 1, `v${i}`));
    batch[10] = item(500, 'first');
    batch[20] = item(500, 'second');
    const seen = new Set(Array.from({ length: 50 }, (_, i) => i + 1));
    let updated = 0;
    for (const r of batch) {
      if (seen.has(r.id)) updated++;
      else seen.add(r.id);
    }
    expect(updated).toBe(99);
    expect(await a.importBatch(Item, ROOT_SET, batch, { mode: 'upsert', bulk: true })).toEqual({
      inserted: 250 - updated,
      updated,
    });
    expect(await a.count(Item, ROOT_SET)).toBe(seen.size);
    expect((await a.get(Item, ROOT_SET, 500))?.name).toBe('second');
    expect((await a.get(Item, ROOT_SET, 1))?.name).toBe('v200');
    await a.close();
  });

  it('is loaded by the runtime for provider "sqlite", relative to cwd', async () => {
    const runtime = new DataRuntime({
      cwd: root,
      sources: { default: { provider: 'sqlite', settings: { path: 'nested/app.db' } } },
    });
    const a = await runtime.adapter('default');
    expect(a.provider).toBe('sqlite');
    await a.ensureEntity(Item, ROOT_SET);
    await runtime.close();
    expect((await readFile(join(root, 'nested/app.db'))).subarray(0, 15).toString()).toBe('SQLite format 3');
  });

  it('introspecting two databases that hold the same table names registers both, the second under a source-qualified name', async () => {
    const files = { shop: dbFile(), 'shop-eu': dbFile() };
    for (const [source, path] of Object.entries(files)) {
      const db = new Database(path);
      db.exec(`CREATE TABLE accounts (id INTEGER PRIMARY KEY, who TEXT NOT NULL);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER REFERENCES accounts (id));
        INSERT INTO accounts VALUES (1, '${source}');`);
      db.close();
    }
    const runtime = new DataRuntime({
      sources: Object.fromEntries(
        Object.entries(files).map(([s, path]) => [s, { provider: 'sqlite', settings: { path } }]),
      ),
    });
    try {
      const found = await introspectSources(runtime);
      expect(found.skipped).toEqual([]);
      const byName = Object.fromEntries(found.entities.map((e) => [e.name, e]));
      expect(Object.keys(byName).sort()).toEqual(['accounts', 'accounts_shop_eu', 'orders', 'orders_shop_eu']);
      expect(byName.accounts_shop_eu).toMatchObject({ source: 'shop-eu', table: 'accounts' });
      expect(byName.orders_shop_eu?.fields.account_id?.references).toEqual({ entity: 'accounts_shop_eu', field: 'id' });
      expect(byName.orders?.fields.account_id?.references).toEqual({ entity: 'accounts', field: 'id' });
      const rowsOf = async (name: string) => {
        const schema = byName[name]!;
        const out: unknown[] = [];
        for await (const batch of (await runtime.adapter(schema.source)).exportEntity(schema, ROOT_SET))
          out.push(...batch);
        return out;
      };
      expect(await rowsOf('accounts')).toEqual([{ id: 1, who: 'shop' }]);
      expect(await rowsOf('accounts_shop_eu')).toEqual([{ id: 1, who: 'shop-eu' }]);
    } finally {
      for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
      await runtime.close();
    }
  });

  it('preload loads the provider without opening the database; adapter() opens it, and only a write creates the file', async () => {
    const runtime = new DataRuntime({
      cwd: root,
      sources: {
        default: { provider: 'sqlite', settings: { path: 'preloaded/app.db' } },
        missing: { provider: 'nosuchprovider', settings: {} },
      },
    });
    await runtime.preload('default');
    expect(existsSync(join(root, 'preloaded'))).toBe(false);
    await expect(runtime.preload('missing')).rejects.toMatchObject({ code: 'PROVIDER_NOT_INSTALLED' });
    await expect(runtime.preload('nope')).rejects.toMatchObject({ code: 'UNKNOWN_SOURCE' });
    const adapter = await runtime.adapter('default');
    // Reads of a database that does not exist yet (a backup, a restore's dry run) see it empty and create nothing.
    expect(await adapter.count(Item, ROOT_SET)).toBe(0);
    expect(await adapter.readSnapshot(async (r) => r.count(Item, ROOT_SET))).toBe(0);
    expect(await adapter.introspect?.()).toEqual({ entities: [], skipped: [], notData: [] });
    expect(existsSync(join(root, 'preloaded')), 'opening and reading create nothing').toBe(false);
    await adapter.ensureEntity(Item, ROOT_SET);
    expect(existsSync(join(root, 'preloaded/app.db'))).toBe(true);
    await adapter.importBatch(Item, ROOT_SET, [{ id: 1, name: 'a', price: '1.5', at: null }], { mode: 'insert' });
    expect(await adapter.readSnapshot(async (r) => r.count(Item, ROOT_SET))).toBe(1);
    expect((adapter as SqliteAdapter).getInstance().pragma('journal_mode', { simple: true })).toBe('wal');
    await runtime.close();
  });

  it('maps declared SQLite types of foreign tables to field types', () => {
    expect(
      [
        'INTEGER',
        'NVARCHAR(120)',
        'NUMERIC(10,2)',
        'DATETIME',
        'TIMESTAMP',
        'DATE',
        'BLOB',
        'REAL',
        'BOOLEAN',
        'BIGINT',
        '',
        'DECIMAL_TEXT',
      ].map(fieldTypeOfColumn),
    ).toEqual([
      'integer',
      'string',
      'decimal',
      'string',
      'string',
      'date',
      'binary',
      'number',
      'boolean',
      'bigint',
      'string',
      'decimal',
    ]);
  });

  it('introspects the Chinook database: 11 tables, keys (composite included) and foreign keys', async (ctx) => {
    const datasets = sharedDatasetsDir();
    if (!datasets) return ctx.skip('../shared/datasets is absent');
    const sql = (await readFile(join(datasets, 'chinook/Chinook_Sqlite.sql'), 'utf8'))
      .replace(/^\uFEFF/, '')
      .replace(/\r\n/g, '\n');
    const path = dbFile();
    const db = new Database(path);
    db.exec(sql);
    db.close();

    const a = await open(path);
    await a.ensureEntity(Item, ROOT_SET); // a Koan table beside them comes back with its exact stored schema
    const { entities: all, skipped, notData } = await a.introspect();
    const koan = all.filter((e) => e.origin === 'declared');
    expect(koan).toEqual([{ ...Item, source: 'default' }]);
    const entities = all.filter((e) => e.origin === 'introspected');
    const names = entities.map((e) => e.table).sort();
    expect(names).toEqual([
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

    const track = entities.find((e) => e.name === 'Track')!;
    expect(track).toMatchObject({
      key: 'TrackId',
      keyType: 'integer',
      origin: 'introspected',
      table: 'Track',
      source: 'default',
    });
    expect(track.fields.AlbumId).toMatchObject({
      type: 'integer',
      nullable: true,
      references: { entity: 'Album', field: 'AlbumId' },
    });
    expect(track.fields.GenreId?.references).toEqual({ entity: 'Genre', field: 'GenreId' });
    expect(track.fields.UnitPrice).toMatchObject({ type: 'decimal', precision: 10, scale: 2 });
    expect(track.fields.Name).toMatchObject({ type: 'string', nullable: false });
    const employee = entities.find((e) => e.name === 'Employee')!;
    expect(employee.fields.ReportsTo?.references).toEqual({ entity: 'Employee', field: 'EmployeeId' });
    // DATETIME text is kept as spelled ('1962-02-18 00:00:00'): SQLite has no datetime storage of its own.
    expect(employee.fields.BirthDate?.type).toBe('string');

    // Introspected entities stream like declared ones, with values in runtime form.
    const invoice = entities.find((e) => e.name === 'Invoice')!;
    expect(await a.count(invoice, ROOT_SET)).toBe(412);
    const [first] = await a.getMany(invoice, ROOT_SET, [1]);
    expect(first).toMatchObject({ InvoiceId: 1, InvoiceDate: '2021-01-01 00:00:00', Total: '1.98' });
    let rows = 0;
    let last = 0;
    for await (const batch of a.exportEntity(track, ROOT_SET, { batchSize: 500 }))
      for (const r of batch) {
        expect(r.TrackId as number).toBeGreaterThan(last);
        last = r.TrackId as number;
        rows++;
      }
    expect(rows).toBe(3503);

    // A composite primary key maps to keyFields, and pages by the whole tuple.
    const playlistTrack = entities.find((e) => e.name === 'PlaylistTrack')!;
    expect(playlistTrack).toMatchObject({
      key: 'PlaylistId',
      keyFields: ['PlaylistId', 'TrackId'],
      keyType: 'integer',
    });
    const pairs: [number, number][] = [];
    for await (const batch of a.exportEntity(playlistTrack, ROOT_SET, { batchSize: 7 }))
      for (const r of batch) pairs.push([r.PlaylistId as number, r.TrackId as number]);
    expect(pairs).toHaveLength(8715);
    const sorted = [...pairs].sort((x, y) => x[0] - y[0] || x[1] - y[1]);
    expect(pairs).toEqual(sorted);
    await a.close();
  });
});

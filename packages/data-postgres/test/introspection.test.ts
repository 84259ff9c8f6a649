/**
 * Introspection of a database nobody on this project wrote: every schema, tables without a key, keys of every
 * ordered type, the field type of each native type, partitions, views, materialized views and foreign tables named
 * as not data, and the adapter reading and writing tables of other schemas through their namespace.
 */
import type { DataRecord, EntitySchema } from '@koan/data';
import { ROOT_SET } from '@koan/data/adapter-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresAdapter } from '../src/index.js';
import { createScratch, probe, type Scratch } from './scratch.js';

const unavailable = await probe();

async function collect(stream: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of stream) out.push(...batch);
  return out;
}

describe('PostgreSQL introspection of an existing database', () => {
  let db: Scratch;
  let adapter: PostgresAdapter;
  let result: Awaited<ReturnType<PostgresAdapter['introspect']>>;
  const entity = (name: string): EntitySchema => {
    const e = result.entities.find((x) => x.name === name);
    if (!e) throw new Error(`no entity ${name}: ${result.entities.map((x) => x.name).join(', ')}`);
    return e;
  };

  beforeAll(async () => {
    if (unavailable) return;
    db = await createScratch('introspect');
    await db.sql(`
      CREATE SCHEMA billing;
      CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE DOMAIN small_pos AS int4 CHECK (VALUE > 0);
      CREATE DOMAIN price AS numeric(8,2);
      CREATE TABLE customer (id int8 PRIMARY KEY, name text);
      CREATE TABLE billing.invoice (id int PRIMARY KEY, customer_id int8 REFERENCES customer (id), total price);
      CREATE TABLE billing_invoice (id int PRIMARY KEY);
      CREATE TABLE log (at timestamptz, msg text);
      CREATE TABLE k_numeric (k numeric PRIMARY KEY);
      CREATE TABLE k_date (k date PRIMARY KEY);
      CREATE TABLE k_ts (k timestamptz PRIMARY KEY);
      CREATE TABLE k_uuid (k uuid PRIMARY KEY);
      CREATE TABLE k_bytes (k bytea PRIMARY KEY);
      CREATE TABLE k_bool (k bool PRIMARY KEY);
      CREATE TABLE k_enum (k mood PRIMARY KEY);
      CREATE TABLE typed (
        id int2 PRIMARY KEY, i4 int4, i8 int8, n numeric(10,3), m money, f4 real, f8 float8, ts timestamp, tz timestamptz,
        d date, j json, jb jsonb, b bytea, u uuid, ok bool, arr int[], txt text[], e mood, dom small_pos, p price,
        bits bit(3), vb varbit, iv interval, t time, ip inet, tsv tsvector, r int4range, x xml, c char(4),
        g int GENERATED ALWAYS AS (i4 * 2) STORED);
      CREATE TABLE m (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      CREATE TABLE m_rest PARTITION OF m DEFAULT PARTITION BY LIST (id);
      CREATE TABLE m_rest_1 PARTITION OF m_rest FOR VALUES IN (1);
      CREATE TABLE parent_plain (id int PRIMARY KEY);
      CREATE TABLE child_plain (extra int) INHERITS (parent_plain);
      CREATE VIEW v AS SELECT id FROM customer;
      CREATE MATERIALIZED VIEW mv AS SELECT count(*) AS n FROM customer;
      CREATE EXTENSION postgres_fdw;
      CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw;
      CREATE FOREIGN TABLE remote (a int) SERVER elsewhere;
      INSERT INTO customer VALUES (9007199254740993, 'big');
      INSERT INTO billing.invoice VALUES (1, 9007199254740993, 12.5);
      INSERT INTO log VALUES (NULL, 'x'), (NULL, 'x'), ('2024-01-01', 'y');
      INSERT INTO m VALUES (1, '2024-05-01'), (1, '2020-01-01'), (2, '2024-06-01');
      INSERT INTO parent_plain VALUES (1);
      INSERT INTO child_plain VALUES (2, 20);`);
    adapter = await db.adapter();
    result = await adapter.introspect();
  }, 60_000);

  afterAll(async () => {
    await db?.drop();
  });

  it('finds every table of every schema; skips none; names the rest as not data', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    expect(result.skipped).toEqual([]);
    expect(entity('billing_invoice_2')).toMatchObject({ table: 'invoice', namespace: 'billing' });
    expect(entity('billing_invoice')).toMatchObject({ table: 'billing_invoice' });
    expect(entity('billing_invoice').namespace).toBeUndefined();
    expect(entity('billing_invoice_2').fields.customer_id?.references).toEqual({ entity: 'customer', field: 'id' });
    const notData = Object.fromEntries(result.notData.map((n) => [n.name, [n.kind, n.note]]));
    expect(notData).toMatchObject({
      m_2024: ['partition', 'its rows are backed up through m'],
      m_rest: ['partition', 'its rows are backed up through m'],
      m_rest_1: ['partition', 'its rows are backed up through m'],
      v: ['view', expect.any(String)],
      mv: ['materialized view', expect.any(String)],
      remote: ['foreign table', 'its rows live on the foreign server elsewhere'],
    });
    expect(result.entities.map((e) => e.name)).not.toContain('m_2024');
  });

  it('keys of every ordered type, int8 as exact bigint; a table without a key is keyless', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const keyTypes = Object.fromEntries(
      ['customer', 'k_numeric', 'k_date', 'k_ts', 'k_uuid', 'k_bytes', 'k_bool', 'k_enum', 'typed', 'm'].map((n) => [
        n,
        entity(n).keyType,
      ]),
    );
    expect(keyTypes).toEqual({
      customer: 'bigint',
      k_numeric: 'decimal',
      k_date: 'date',
      k_ts: 'datetime',
      k_uuid: 'uuid',
      k_bytes: 'binary',
      k_bool: 'boolean',
      k_enum: 'string',
      typed: 'integer',
      m: 'integer',
    });
    expect(entity('log')).toMatchObject({ keyless: true, key: '', keyType: 'none' });
    expect(await collect(adapter.exportEntity(entity('customer'), ROOT_SET))).toEqual([
      { id: 9007199254740993n, name: 'big' },
    ]);
  });

  it('maps each native type to its field type (arrays, enums, ranges... as their text; generated columns marked)', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const typed = entity('typed');
    expect(Object.fromEntries(Object.entries(typed.fields).map(([n, f]) => [n, f.type]))).toEqual({
      id: 'integer',
      i4: 'integer',
      i8: 'bigint',
      n: 'decimal',
      m: 'decimal',
      f4: 'number',
      f8: 'number',
      ts: 'datetime',
      tz: 'datetime',
      d: 'date',
      j: 'json',
      jb: 'json',
      b: 'binary',
      u: 'uuid',
      ok: 'boolean',
      arr: 'string',
      txt: 'string',
      e: 'string',
      dom: 'integer',
      p: 'decimal',
      bits: 'string',
      vb: 'string',
      iv: 'string',
      t: 'string',
      ip: 'string',
      tsv: 'string',
      r: 'string',
      x: 'string',
      c: 'string',
      g: 'integer',
    });
    expect(typed.fields.g?.generated).toBe('stored');
    expect(typed.fields.n).toMatchObject({ precision: 10, scale: 3 });
    expect(typed.fields.p).toMatchObject({ precision: 8, scale: 2 });
  });

  it('reads, counts, writes and clears tables through their namespace; partitions through the parent; inheritance children apart', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const invoice = entity('billing_invoice_2');
    expect(await adapter.count(invoice, ROOT_SET)).toBe(1);
    expect(await collect(adapter.exportEntity(invoice, ROOT_SET))).toEqual([
      { id: 1, customer_id: 9007199254740993n, total: '12.50' },
    ]);
    expect((await adapter.describe(invoice, ROOT_SET)).location).toBe('billing.invoice');
    await adapter.importBatch(invoice, ROOT_SET, [{ id: 2, customer_id: 9007199254740993n, total: '1.00' }], {
      mode: 'upsert',
    });
    expect(await db.sql('SELECT id FROM billing.invoice ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    expect(await adapter.listSets(invoice)).toEqual([ROOT_SET]);
    const m = entity('m');
    expect(await adapter.count(m, ROOT_SET)).toBe(3);
    const lines = [];
    for await (const chunk of adapter.exportJsonLines(m, ROOT_SET)) lines.push(Buffer.from(chunk).toString());
    expect(lines.join('').trimEnd().split('\n')).toHaveLength(3);
    // A plain parent is read ONLY: its inheritance child is a table of its own.
    expect(await adapter.count(entity('parent_plain'), ROOT_SET)).toBe(1);
    expect(await adapter.count(entity('child_plain'), ROOT_SET)).toBe(1);
    await adapter.transaction((tx) => tx.clear(invoice, ROOT_SET));
    expect(await db.sql('SELECT count(*)::int AS n FROM billing.invoice')).toEqual([{ n: 0 }]);
  });

  it('ensureEntity creates a keyless entity of another namespace (a restore from another provider) in its schema, without a key', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const moved = { ...entity('log'), name: 'moved_log', table: 'moved_log', namespace: 'archive', source: 'default' };
    await adapter.ensureEntity(moved, ROOT_SET);
    expect(await adapter.describe(moved, ROOT_SET)).toMatchObject({
      exists: true,
      location: 'archive.moved_log',
      primaryKey: [],
    });
    await adapter.importBatch(
      moved,
      ROOT_SET,
      [
        { at: null, msg: 'a' },
        { at: null, msg: 'a' },
      ],
      { mode: 'insert' },
    );
    expect(await db.sql('SELECT count(*)::int AS n FROM archive.moved_log')).toEqual([{ n: 2 }]);
  });

  it('a keyless table: every row exported in a stable order, insert-only, cleared', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const log = entity('log');
    const rows = await collect(adapter.exportEntity(log, ROOT_SET));
    expect(rows).toHaveLength(3);
    expect(await collect(adapter.exportEntity(log, ROOT_SET, { batchSize: 1 }))).toEqual(rows);
    await expect(adapter.importBatch(log, ROOT_SET, rows, { mode: 'upsert' })).rejects.toMatchObject({
      code: 'UNSUPPORTED_KEY',
    });
    expect(await adapter.importBatch(log, ROOT_SET, rows, { mode: 'insert', bulk: true })).toEqual({
      inserted: 3,
      updated: 0,
    });
    expect(await adapter.count(log, ROOT_SET)).toBe(6);
    expect(await adapter.clear(log, ROOT_SET)).toBe(6);
    expect(await adapter.count(log, ROOT_SET)).toBe(0);
  });
});

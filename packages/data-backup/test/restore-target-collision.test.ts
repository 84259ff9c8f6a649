/**
 * Two archived entities that would land in one table of the target are refused before anything is written
 * (`TARGET_COLLISION`): PostgreSQL's `public.orders` and `sales.orders` into MariaDB or SQLite (no schemas there), and
 * `orders` / `"Orders"` into SQLite (table names are case-insensitive there), two long names into PostgreSQL (cut
 * to 63 bytes). Restored one at a time, each goes in.
 */
import { join } from 'node:path';
import { registeredEntities, unregisterEntity } from '@koan/data';
import { backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import { createScratch, type Dialect, probeDialect, type ScratchDatabase } from './scratch-databases.js';

const SOURCE_SQL = `
  CREATE SCHEMA sales;
  CREATE TABLE public.orders (id integer PRIMARY KEY, v text NOT NULL);
  INSERT INTO public.orders VALUES (1, 'public-1'), (2, 'public-2');
  CREATE TABLE sales.orders (id integer PRIMARY KEY, v text NOT NULL);
  INSERT INTO sales.orders VALUES (1, 'sales-1'), (3, 'sales-3');
  CREATE TABLE public."Orders" (id integer PRIMARY KEY, v text NOT NULL);
  INSERT INTO public."Orders" VALUES (1, 'Orders-1');
`;

const pgUnavailable = await probeDialect('postgres');
const myUnavailable = await probeDialect('mariadb');

function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}

describe.skipIf(Boolean(pgUnavailable))('restore into a target where two archived entities share one table', () => {
  const scratches: ScratchDatabase[] = [];
  let env: Awaited<ReturnType<typeof makeContext>>;
  let names: string[] = [];

  beforeAll(async () => {
    const db = await createScratch('postgres', 'collide_src', SOURCE_SQL);
    scratches.push(db);
    env = await makeContext({ src: db.source });
    forgetIntrospected();
    const result = await backupAllEntities(env.context, 'collide', { introspect: true });
    names = result.entities.map((e) => e.entityType).sort();
    forgetIntrospected();
  }, 120_000);

  afterAll(async () => {
    forgetIntrospected();
    await env?.cleanup();
    for (const db of scratches) await db.drop().catch(() => undefined);
  });

  /** A second application: the target database only, reading the same backup storage. */
  async function target(dialect: Dialect) {
    const db = await createScratch(dialect, `collide_${dialect.slice(0, 2)}`);
    scratches.push(db);
    const ctx = await makeContext(
      { tgt: db.source },
      { profiles: { local: { provider: 'local', settings: { root: join(env.dir, 'backups') } } } },
    );
    return { db, ctx };
  }

  it('the backup holds the three tables as three entities', () => {
    expect(names).toEqual(['Orders', 'orders', 'sales_orders']);
  });

  it('into MariaDB: public.orders and sales.orders are refused (TARGET_COLLISION) naming both; nothing is written', async (ctx) => {
    if (myUnavailable) return ctx.skip(myUnavailable);
    const { db, ctx: t } = await target('mariadb');
    try {
      const err = await restoreAllEntities(t.context, 'collide', { targetSource: 'tgt' }).catch((e) => e);
      expect(err).toMatchObject({ code: 'TARGET_COLLISION' });
      expect(err.message).toMatch(
        /orders@root \(src: orders\) and sales_orders@root \(src: sales\.orders\) -> table orders of tgt/,
      );
      expect(err.message).toMatch(/includeEntityTypes.*--entity/);
      expect(err.details).toMatchObject({
        collisions: [
          {
            source: 'tgt',
            location: 'orders',
            entities: [
              { entity: 'orders', set: 'root' },
              { entity: 'sales_orders', set: 'root' },
            ],
          },
        ],
      });
      // "Orders" and "orders" are two tables in MariaDB (lower_case_table_names=0 here): not a collision.
      expect(err.details.collisions).toHaveLength(1);
      const conn = await mysql.createConnection({ ...(await mysqlUri(db)) });
      try {
        const [rows] = await conn.query('SHOW TABLES');
        expect(rows).toEqual([]);
      } finally {
        await conn.end();
      }
      // One at a time, each goes in.
      const first = await restoreAllEntities(t.context, 'collide', {
        targetSource: 'tgt',
        includeEntityTypes: ['orders', 'Orders'],
      });
      expect(first.entities.map((e) => [e.entityType, e.status, e.inserted]).sort()).toEqual([
        ['Orders', 'Restored', 1],
        ['orders', 'Restored', 2],
      ]);
    } finally {
      forgetIntrospected();
      await t.cleanup();
    }
  });

  it('into SQLite: orders, "Orders" and sales.orders all map to one table (case-insensitive): refused, nothing written', async () => {
    const { db, ctx: t } = await target('sqlite');
    try {
      const err = await restoreAllEntities(t.context, 'collide', { targetSource: 'tgt' }).catch((e) => e);
      expect(err).toMatchObject({ code: 'TARGET_COLLISION' });
      expect(err.message).toMatch(
        /Orders@root \(src: Orders\), orders@root \(src: orders\) and sales_orders@root \(src: sales\.orders\) -> table orders of tgt/,
      );
      expect(err.details.collisions).toEqual([
        expect.objectContaining({ source: 'tgt', location: 'orders', entities: expect.any(Array) }),
      ]);
      const path = (db.source.settings as { path: string }).path;
      const sqlite = new Database(path, { readonly: true });
      try {
        expect(sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([]);
      } finally {
        sqlite.close();
      }
      // A dry run is refused the same way.
      await expect(
        restoreAllEntities(t.context, 'collide', { targetSource: 'tgt', dryRun: true }),
      ).rejects.toMatchObject({ code: 'TARGET_COLLISION' });
      const one = await restoreAllEntities(t.context, 'collide', {
        targetSource: 'tgt',
        includeEntityTypes: ['sales_orders'],
      });
      expect(one.entities.map((e) => [e.entityType, e.status, e.inserted])).toEqual([['sales_orders', 'Restored', 2]]);
    } finally {
      forgetIntrospected();
      await t.cleanup();
    }
  });

  it('into another PostgreSQL database the three keep their own tables', async () => {
    const { ctx: t } = await target('postgres');
    try {
      const report = await restoreAllEntities(t.context, 'collide', { targetSource: 'tgt' });
      expect(report.entities.map((e) => [e.entityType, e.status, e.inserted]).sort()).toEqual([
        ['Orders', 'Restored', 1],
        ['orders', 'Restored', 2],
        ['sales_orders', 'Restored', 2],
      ]);
    } finally {
      forgetIntrospected();
      await t.cleanup();
    }
  });
});

describe.skipIf(Boolean(pgUnavailable))('restore into PostgreSQL, which cuts names to 63 bytes', () => {
  it('two SQLite tables whose names differ only after 63 bytes are refused (TARGET_COLLISION)', async () => {
    const long = 'x'.repeat(63);
    const src = await createScratch(
      'sqlite',
      'collide_long',
      `CREATE TABLE ${long}_one (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO ${long}_one VALUES (1, 'one');
       CREATE TABLE ${long}_two (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO ${long}_two VALUES (1, 'two');`,
    );
    const tgt = await createScratch('postgres', 'collide_long');
    const env = await makeContext({ src: src.source, tgt: tgt.source });
    try {
      forgetIntrospected();
      await backupAllEntities(env.context, 'long', { introspect: true });
      forgetIntrospected();
      const err = await restoreAllEntities(env.context, 'long', { targetSource: 'tgt' }).catch((e) => e);
      expect(err).toMatchObject({ code: 'TARGET_COLLISION' });
      expect(err.details.collisions).toEqual([expect.objectContaining({ source: 'tgt', location: `public.${long}` })]);
    } finally {
      forgetIntrospected();
      await env.cleanup();
      await src.drop();
      await tgt.drop();
    }
  });
});

async function mysqlUri(db: ScratchDatabase): Promise<{ uri: string }> {
  return { uri: (db.source.settings as { uri: string }).uri };
}

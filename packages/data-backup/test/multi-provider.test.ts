/**
 * The demo application: entities on SQLite, JSON files, memory, PostgreSQL, MariaDB, Redis and LanceDB, backed up
 * together into one archive and restored into a fresh environment (other databases, key prefixes and folders).
 * Each server is gated with probeService (CI=true turns "unreachable" into a failure); scratch databases and key
 * prefixes are created for this run and removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { defineEntity, type Entity, type SourceConfig, t, unregisterEntity } from '@koan/data';
import { probeService, serviceUrls } from '@koan/data/testing';
import { BackupService, RestoreService } from '@koan/data-backup';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import { deleteRedisKeys, probeRedis } from './scratch-databases.js';

const tag = randomBytes(4).toString('hex');
const scratch = {
  pgA: `koan_mp_a_${tag}`,
  pgB: `koan_mp_b_${tag}`,
  myA: `koan_mp_a_${tag}`,
  myB: `koan_mp_b_${tag}`,
  redisA: `mpa${tag}`,
  redisB: `mpb${tag}`,
};

const common = {
  id: t.integer(),
  name: t.string(),
  amount: t.decimal(),
  at: t.datetime(),
  meta: t.json().nullable(),
  active: t.boolean(),
};
const defs = {
  mp_sqlite: () =>
    defineEntity({ name: 'MpCustomer', key: 'id', source: 'mp_sqlite', fields: { ...common, big: t.bigint() } }),
  mp_json: () => defineEntity({ name: 'MpSetting', key: 'id', source: 'mp_json', fields: common }),
  mp_mem: () => defineEntity({ name: 'MpSession', key: 'id', source: 'mp_mem', fields: common }),
  mp_pg: () =>
    defineEntity({
      name: 'MpOrder',
      key: 'id',
      source: 'mp_pg',
      fields: { ...common, customerId: t.integer().references('MpCustomer'), day: t.date() },
    }),
  mp_my: () =>
    defineEntity({ name: 'MpInvoice', key: 'id', source: 'mp_my', fields: { ...common, note: t.string().optional() } }),
  mp_redis: () => defineEntity({ name: 'MpCache', key: 'id', source: 'mp_redis', fields: common }),
  mp_lance: () =>
    defineEntity({
      name: 'MpEmbedding',
      key: 'id',
      source: 'mp_lance',
      fields: { id: t.integer(), label: t.string(), vec: t.vector(8) },
    }),
} as const;
type SourceName = keyof typeof defs;

function row(source: SourceName, i: number): Record<string, unknown> {
  if (source === 'mp_lance')
    return { id: i + 1, label: `v${i}`, vec: Float32Array.from({ length: 8 }, (_, k) => i * 0.5 + k / 7) };
  const base = {
    id: i + 1,
    name: `${source} ${i} ✓ "quoted"`,
    amount: `${i * 7}.${String(i % 100).padStart(2, '0')}`,
    at: `2024-05-${String((i % 28) + 1).padStart(2, '0')}T10:11:12.${String(i % 1_000_000).padStart(6, '0')}Z`,
    meta: i % 3 === 0 ? null : { i, list: [1, 'two', null], nested: { ok: i % 2 === 0 } },
    active: i % 2 === 0,
  };
  if (source === 'mp_sqlite') return { ...base, big: 9_007_199_254_740_993n + BigInt(i) };
  if (source === 'mp_pg')
    return { ...base, customerId: (i % 50) + 1, day: `2024-02-${String((i % 28) + 1).padStart(2, '0')}` };
  if (source === 'mp_my') return i % 2 ? { ...base, note: `n${i}` } : base;
  return base;
}

async function pgAdmin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: serviceUrls.postgres });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
async function myAdmin(sql: string): Promise<void> {
  const url = new URL(serviceUrls.mysql);
  url.pathname = '/';
  const c = await mysql.createConnection(url.toString());
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
const dbUrl = (base: string, db: string) => {
  const u = new URL(base);
  u.pathname = `/${db}`;
  return u.toString();
};

const available = new Set<SourceName>(['mp_sqlite', 'mp_json', 'mp_mem', 'mp_lance']);
const skipped: string[] = [];
const entities = new Map<SourceName, Entity>();
let envA: Awaited<ReturnType<typeof makeContext>>;
let envB: Awaited<ReturnType<typeof makeContext>>;
const ROWS = 500;

function sources(side: 'a' | 'b'): Record<string, SourceConfig> {
  const s = side === 'a';
  const out: Record<string, SourceConfig> = {
    mp_sqlite: { provider: 'sqlite', settings: { path: `app-${side}.sqlite` } },
    mp_json: { provider: 'json', settings: { directory: `json-${side}` } },
    mp_mem: { provider: 'memory' },
    mp_lance: { provider: 'lancedb', settings: { uri: `lance-${side}` } },
  };
  if (available.has('mp_pg'))
    out.mp_pg = {
      provider: 'postgres',
      settings: { connectionString: dbUrl(serviceUrls.postgres, s ? scratch.pgA : scratch.pgB) },
    };
  if (available.has('mp_my'))
    out.mp_my = { provider: 'mysql', settings: { uri: dbUrl(serviceUrls.mysql, s ? scratch.myA : scratch.myB) } };
  if (available.has('mp_redis'))
    out.mp_redis = {
      provider: 'redis',
      settings: { url: serviceUrls.redis, keyPrefix: s ? scratch.redisA : scratch.redisB },
    };
  return out;
}

beforeAll(async () => {
  if (!(await probeService('postgres', () => pgAdmin('SELECT 1')))) {
    await pgAdmin(`CREATE DATABASE ${scratch.pgA}`);
    await pgAdmin(`CREATE DATABASE ${scratch.pgB}`);
    available.add('mp_pg');
  } else skipped.push('postgres');
  if (!(await probeService('mariadb', () => myAdmin('SELECT 1')))) {
    await myAdmin(`CREATE DATABASE ${scratch.myA}`);
    await myAdmin(`CREATE DATABASE ${scratch.myB}`);
    available.add('mp_my');
  } else skipped.push('mariadb');
  const redisUp = await probeRedis();
  if (!redisUp) available.add('mp_redis');
  else skipped.push('redis');
  for (const s of available) entities.set(s, defs[s]() as unknown as Entity);
  envA = await makeContext(sources('a'));
  // the fresh environment: same source names, other databases, key prefixes and folders; reads the same backups
  envB = await makeContext(sources('b'), {
    profiles: { local: { provider: 'local', settings: { root: join(envA.dir, 'backups') } } },
  });
  for (const [s, e] of entities)
    await e.withRuntime(envA.context.runtime).upsertMany(Array.from({ length: ROWS }, (_, i) => row(s, i)) as never);
}, 120_000);

afterAll(async () => {
  for (const e of entities.values()) unregisterEntity(e.schema.name);
  await envB?.cleanup();
  await envA?.cleanup();
  if (available.has('mp_pg'))
    for (const db of [scratch.pgA, scratch.pgB])
      await pgAdmin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  if (available.has('mp_my'))
    for (const db of [scratch.myA, scratch.myB]) await myAdmin(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
  if (available.has('mp_redis')) await deleteRedisKeys(scratch.redisA, scratch.redisB);
});

describe('multi-provider demo application', () => {
  it('backs up every provider into one archive and restores it into a fresh environment, record for record', async () => {
    if (skipped.length) console.warn(`[koan tests] multi-provider runs without: ${skipped.join(', ')}`);
    const manifest = await new BackupService(envA.context).backupAllEntities('demo-app', {
      maxConcurrency: 3,
      tags: ['demo'],
    });
    expect(manifest.status).toBe('Completed');
    const providers = Object.fromEntries(manifest.entities.map((e) => [e.entityType, e.provider]));
    const expected: Record<string, string> = {
      MpCustomer: 'sqlite',
      MpSetting: 'json',
      MpSession: 'memory',
      MpEmbedding: 'lancedb',
      ...(available.has('mp_pg') ? { MpOrder: 'postgres' } : {}),
      ...(available.has('mp_my') ? { MpInvoice: 'mysql' } : {}),
      ...(available.has('mp_redis') ? { MpCache: 'redis' } : {}),
    };
    expect(providers).toEqual(expected);
    for (const e of manifest.entities) expect(e.itemCount).toBe(ROWS);
    expect(manifest.verification.totalItemCount).toBe(ROWS * entities.size);
    const consistency = Object.fromEntries(manifest.sources.map((s) => [s.name, s.consistency]));
    if (available.has('mp_redis')) expect(consistency.mp_redis).toBe('fuzzy');
    if (available.has('mp_pg')) expect(consistency.mp_pg).toBe('snapshot');

    const report = await new RestoreService(envB.context).restoreAllEntities('demo-app', { maxConcurrency: 2 });
    expect(report.entities.every((e) => e.status === 'Restored' && e.inserted === ROWS)).toBe(true);
    for (const [s, e] of entities) {
      const original = await e.withRuntime(envA.context.runtime).all();
      const restored = await e.withRuntime(envB.context.runtime).all();
      expect(restored, `${s}: ${e.schema.name}`).toEqual(original);
      expect(restored).toHaveLength(ROWS);
    }
  });
});

// Whole-application backup benchmark: several entities of BENCH_ROWS rows (~300 bytes each) across providers
// (two SQLite files, PostgreSQL, MariaDB). Times backupAllEntities with maxConcurrency 2 against the sum of
// single-entity backups (each entity alone, maxConcurrency 1), and reports each phase's peak RSS.
// Runs against built dist: npx tsc -b packages/data-backup packages/data-sqlite packages/data-postgres packages/data-mysql
//
//   BENCH_ROWS=30000 node bench/whole-app.mjs
//
// Env: BENCH_ROWS (default 300000), BENCH_REPEAT (default 3; single and whole phases alternate, medians reported),
// KOAN_TEST_PG_URL, KOAN_TEST_MYSQL_URL. Unreachable servers are left out (said so).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataRuntime, defineEntity, t } from '@koan/data';
import { BackupContext, backupAllEntities } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import mysql from 'mysql2/promise';
import pg from 'pg';

const ROWS = Number(process.env.BENCH_ROWS ?? 300_000);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const PG_URL = process.env.KOAN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MY_URL = process.env.KOAN_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const here = fileURLToPath(new URL('.', import.meta.url));
const phase = process.argv[2];

const fields = {
  id: t.integer(),
  name: t.string(),
  email: t.string(),
  amount: t.decimal(),
  at: t.datetime(),
  active: t.boolean(),
  note: t.string(),
};
const ENTITIES = [
  { name: 'BenchUser', source: 'bench_sqlite_a' },
  { name: 'BenchEvent', source: 'bench_sqlite_b' },
  { name: 'BenchOrder', source: 'bench_pg' },
  { name: 'BenchInvoice', source: 'bench_my' },
];

const withDb = (url, db) => {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
};

function sourcesFor(config) {
  const out = {
    bench_sqlite_a: { provider: 'sqlite', settings: { path: join(config.dir, 'a.sqlite') } },
    bench_sqlite_b: { provider: 'sqlite', settings: { path: join(config.dir, 'b.sqlite') } },
  };
  if (config.pg) out.bench_pg = { provider: 'postgres', settings: { connectionString: withDb(PG_URL, config.pg) } };
  if (config.my) out.bench_my = { provider: 'mysql', settings: { uri: withDb(MY_URL, config.my) } };
  return out;
}

async function context(config) {
  const runtime = new DataRuntime({ sources: sourcesFor(config), cwd: config.dir });
  const storage = await StorageProfiles.load(
    {
      defaultProfile: 'local',
      profiles: { local: { provider: 'local', settings: { root: join(config.dir, 'backups') } } },
    },
    { cwd: config.dir },
  );
  return new BackupContext({ runtime, storage });
}

function define(config) {
  const sources = sourcesFor(config);
  return ENTITIES.filter((e) => sources[e.source]).map((e) =>
    defineEntity({ name: e.name, key: 'id', source: e.source, fields }),
  );
}

const row = (i) => ({
  id: i + 1,
  name: `Customer number ${i}`,
  email: `customer.${i}@example.com`,
  amount: `${(i * 37) % 100000}.${String(i % 100).padStart(2, '0')}`,
  at: `2024-05-${String((i % 28) + 1).padStart(2, '0')}T10:11:12.${String(i % 1_000_000).padStart(6, '0')}Z`,
  active: i % 2 === 0,
  note: `Lorem ipsum dolor sit amet ${i}, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua ${i % 977}.`,
});

/** One measured phase in this (child) process: prints { seconds, peakRssMB, perEntity }. */
async function runPhase(config) {
  const ctx = await context(config);
  const entities = define(config);
  const results = [];
  // Untimed warm-up in both phases (JIT, connections, page cache), so neither pays for it.
  await backupAllEntities(ctx, 'warmup', { maxConcurrency: 1 });
  const t0 = performance.now();
  if (phase === 'whole') {
    const m = await backupAllEntities(ctx, 'whole', { maxConcurrency: Number(process.env.BENCH_CONCURRENCY ?? 2) });
    results.push({ entities: m.entities.length, items: m.verification.totalItemCount, bytes: m.archive.sizeBytes });
  } else {
    for (const e of entities) {
      const s = performance.now();
      const m = await backupAllEntities(ctx, `single-${e.name}`, { includeEntityTypes: [e.name], maxConcurrency: 1 });
      results.push({ entity: e.name, seconds: (performance.now() - s) / 1000, items: m.verification.totalItemCount });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await ctx.close();
  process.stdout.write(JSON.stringify({ seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, results }));
}

async function admin(kind, sql) {
  if (kind === 'pg') {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  } else {
    const u = new URL(MY_URL);
    u.pathname = '/';
    const c = await mysql.createConnection(u.toString());
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  }
}

async function main() {
  const tag = randomBytes(3).toString('hex');
  const dir = join(here, '.work', `whole-app-${tag}`);
  mkdirSync(dir, { recursive: true });
  const config = { dir };
  try {
    await admin('pg', `CREATE DATABASE koan_bench_${tag}`);
    config.pg = `koan_bench_${tag}`;
  } catch (e) {
    console.log(`postgres left out: ${e.message}`);
  }
  try {
    await admin('my', `CREATE DATABASE koan_bench_${tag}`);
    config.my = `koan_bench_${tag}`;
  } catch (e) {
    console.log(`mariadb left out: ${e.message}`);
  }
  try {
    const ctx = await context(config);
    const entities = define(config);
    const seed0 = performance.now();
    for (const e of entities) {
      const bound = e.withRuntime(ctx.runtime);
      for (let i = 0; i < ROWS; i += 5000)
        await bound.upsertMany(Array.from({ length: Math.min(5000, ROWS - i) }, (_, k) => row(i + k)));
    }
    await ctx.close();
    console.log(
      `seeded ${entities.length} entities × ${ROWS} rows (${entities.map((e) => e.schema.source).join(', ')}) in ${((performance.now() - seed0) / 1000).toFixed(1)} s`,
    );
    const child = (p) => {
      const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), p, JSON.stringify(config)], {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      });
      if (r.status !== 0) throw new Error(`${p} failed: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    // Alternated, so that a slow spell of the machine hits both sides; medians of REPEAT runs each.
    const singles = [];
    const wholes = [];
    for (let r = 0; r < REPEAT; r++) {
      singles.push(child('single'));
      wholes.push(child('whole'));
    }
    const mid = (runs) => [...runs].sort((a, b) => a.seconds - b.seconds)[runs.length >> 1];
    const single = mid(singles);
    const whole = mid(wholes);
    const peak = (runs) => Math.max(...runs.map((r) => r.peakRssMB)).toFixed(0);
    const list = (runs) => runs.map((r) => r.seconds.toFixed(2)).join(', ');
    for (const r of single.results)
      console.log(`  single ${r.entity.padEnd(13)} ${r.seconds.toFixed(2)} s  (${r.items} rows)`);
    console.log(
      `sum of single-entity backups (maxConcurrency 1): ${single.seconds.toFixed(2)} s median of ${list(singles)}, peak RSS ${peak(singles)} MB`,
    );
    console.log(
      `backupAllEntities (maxConcurrency ${process.env.BENCH_CONCURRENCY ?? 2}):          ${whole.seconds.toFixed(2)} s median of ${list(wholes)}, peak RSS ${peak(wholes)} MB, ${(whole.results[0].bytes / 1048576).toFixed(1)} MiB archive`,
    );
    const ratio = whole.seconds / single.seconds;
    console.log(`ratio of medians: ${ratio.toFixed(2)}× (target ≤ 0.65×) ${ratio <= 0.65 ? 'MET' : 'NOT MET'}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (config.pg) await admin('pg', `DROP DATABASE IF EXISTS ${config.pg} WITH (FORCE)`).catch(() => undefined);
    if (config.my) await admin('my', `DROP DATABASE IF EXISTS ${config.my}`).catch(() => undefined);
  }
}

if (phase) await runPhase(JSON.parse(process.argv[3]));
else await main();

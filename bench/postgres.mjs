// PostgreSQL export and import against pg_dump -Fc / pg_restore: BENCH_ROWS=1000000 node bench/postgres.mjs
// Needs a build (npx tsc -b packages/data-postgres), pg_dump, pg_restore and psql, and a server at
// KOAN_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test). Works in scratch databases it drops.
// Each phase runs in its own process under /usr/bin/time, so wall time and peak RSS are per phase
// (peak RSS is the largest process of the phase; the server is not counted on either side).
// BENCH_VARIANTS=0 skips the extra import variants (bulk upsert, multi-row INSERT) and the exportEntity path.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGunzip, createGzip } from 'node:zlib';

const base = new URL(process.env.KOAN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
const uri = (database) => {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
};

const f = (type, extra = {}) => ({ type, optional: false, nullable: false, ...extra });
const Person = Object.freeze({
  name: 'Person',
  key: 'id',
  keyType: 'uuid',
  source: 'default',
  origin: 'declared',
  fields: {
    id: f('uuid'),
    name: f('string'),
    email: f('string'),
    age: f('integer'),
    balance: f('decimal', { precision: 12, scale: 2 }),
    created: f('datetime'),
    tags: f('json'),
    bio: f('string'),
  },
});

async function adapterFor(database) {
  const { createPostgresAdapter } = await import('../packages/data-postgres/dist/index.js');
  const adapter = createPostgresAdapter({ connectionString: uri(database), poolSize: 2 });
  await adapter.init();
  return adapter;
}

/** Phase (b): a backup's read of the table: snapshot, server-built JSON lines, gzip level 1. */
async function exportPhase(database, file, path) {
  const { encodeRecordLine } = await import('../packages/data/dist/index.js');
  const adapter = await adapterFor(database);
  const gzip = createGzip({ level: 1 });
  const done = new Promise((resolve, reject) =>
    gzip.pipe(createWriteStream(file)).on('finish', resolve).on('error', reject),
  );
  const write = async (chunk) => {
    if (!gzip.write(chunk)) await new Promise((r) => gzip.once('drain', r));
  };
  let rows = 0;
  await adapter.readSnapshot(async (reader) => {
    if (path === 'lines') {
      for await (const chunk of reader.exportJsonLines(Person, 'root')) {
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) rows++;
        await write(chunk);
      }
      return;
    }
    let text = '';
    for await (const batch of reader.exportEntity(Person, 'root', { batchSize: 5000 })) {
      for (const record of batch) text += `${encodeRecordLine(Person, record)}\n`;
      rows += batch.length;
      if (text.length >= 256 * 1024) {
        await write(text);
        text = '';
      }
    }
    if (text) await write(text);
  });
  gzip.end();
  await done;
  await adapter.close();
  return rows;
}

/** Phase (d): a restore's write: gunzip, parse and decode lines, import in batches (one in flight). */
async function importPhase(database, file, mode, bulk) {
  const { decodeRecord } = await import('../packages/data/dist/index.js');
  const adapter = await adapterFor(database);
  await adapter.ensureEntity(Person, 'root');
  let batch = [];
  let rows = 0;
  let inFlight = Promise.resolve();
  const flush = async () => {
    const records = batch;
    batch = [];
    await inFlight;
    inFlight = adapter.importBatch(Person, 'root', records, { mode, bulk }).then((r) => {
      rows += r.inserted + r.updated;
    });
  };
  let rest = '';
  for await (const chunk of createReadStream(file).pipe(createGunzip({ chunkSize: 256 * 1024 }))) {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (line) batch.push(decodeRecord(Person, JSON.parse(line)).record);
      if (batch.length === 5000) await flush();
    }
  }
  if (rest) batch.push(decodeRecord(Person, JSON.parse(rest)).record);
  if (batch.length) await flush();
  await inFlight;
  await adapter.close();
  return rows;
}

const psql = (database, sql) =>
  execFileSync('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-d', uri(database), '-c', sql], {
    encoding: 'utf8',
  }).trim();

/** Runs a shell command under /usr/bin/time: wall seconds and the largest process's peak RSS. */
function timed(label, command) {
  const r = spawnSync('/usr/bin/time', ['-f', 'KOAN_TIME %e %M', 'bash', '-o', 'pipefail', '-c', command], {
    encoding: 'utf8',
  });
  const m = /KOAN_TIME ([\d.]+) (\d+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${label} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return { label, seconds: Number(m[1]), rssMB: Math.round(Number(m[2]) / 1024), out: r.stdout.trim() };
}

async function main() {
  const rowsWanted = Number(process.env.BENCH_ROWS ?? 1_000_000);
  const variants = process.env.BENCH_VARIANTS !== '0';
  const tag = randomBytes(4).toString('hex');
  const db = {
    src: `koan_bench_${tag}_src`,
    dump: `koan_bench_${tag}_dump`,
    koan: `koan_bench_${tag}_koan`,
    ...(variants ? { upsert: `koan_bench_${tag}_upsert`, insert: `koan_bench_${tag}_insert` } : {}),
  };
  const dir = join(tmpdir(), `koan-bench-pg-${tag}`);
  mkdirSync(dir, { recursive: true });
  const files = {
    dump: join(dir, 'person.dump'),
    jsonl: join(dir, 'person.jsonl.gz'),
    records: join(dir, 'records.jsonl.gz'),
  };
  const self = fileURLToPath(import.meta.url);
  try {
    for (const name of Object.values(db)) psql(base.pathname.slice(1) || 'postgres', `CREATE DATABASE ${name}`);
    const setup = await adapterFor(db.src);
    await setup.ensureEntity(Person, 'root');
    await setup.close();
    const t0 = performance.now();
    // ~300 bytes per row as archive JSON, generated server-side.
    psql(
      db.src,
      `INSERT INTO "Person" (id, name, email, age, balance, created, tags, bio)
       SELECT gen_random_uuid(), 'Name ' || g || ' ' || substr(md5(g::text), 1, 6), 'user' || g || '@example.com', g % 90,
              round((g::bigint * 7919 % 10000000) / 100.0, 2), timestamptz '2020-01-01 00:00:00Z' + g * interval '1.234567 second',
              jsonb_build_array('alpha', 't' || (g % 17), CASE WHEN g % 2 = 1 THEN 'beta' ELSE 'gamma' END),
              left(repeat(md5(g::text), 4), 100)
       FROM generate_series(1, ${rowsWanted}) g`,
    );
    psql(db.src, 'VACUUM ANALYZE "Person"');
    console.log(
      `generated ${psql(db.src, 'SELECT count(*) FROM "Person"')} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    const results = [
      timed('(a) pg_dump -Fc -t Person', `pg_dump -Fc -t '"Person"' -d ${uri(db.src)} -f ${files.dump}`),
      timed('(b) koan exportJsonLines → gzip -1', `node ${self} export ${db.src} ${files.jsonl} lines`),
      timed('(c) pg_restore into a fresh database', `pg_restore -d ${uri(db.dump)} ${files.dump}`),
      timed('(d) koan bulk insert (COPY) of the JSONL', `node ${self} import ${db.koan} ${files.jsonl} insert bulk`),
    ];
    if (variants)
      results.push(
        timed('(b2) koan exportEntity + encodeRecordLine', `node ${self} export ${db.src} ${files.records} records`),
        timed(
          '(d2) koan bulk upsert (COPY → stage → INSERT)',
          `node ${self} import ${db.upsert} ${files.jsonl} upsert bulk`,
        ),
        timed('(d3) koan multi-row INSERT (no bulk)', `node ${self} import ${db.insert} ${files.jsonl} insert rows`),
      );
    for (const r of results)
      console.log(
        `${r.label.padEnd(48)} ${r.seconds.toFixed(2).padStart(7)} s  ${String(r.rssMB).padStart(5)} MB  ${r.out}`,
      );
    const [a, b, c, d] = results;
    console.log(
      `sizes: person.dump ${(statSync(files.dump).size / 1e6).toFixed(1)} MB, person.jsonl.gz ${(statSync(files.jsonl).size / 1e6).toFixed(1)} MB`,
    );
    console.log(`backup  ratio (b)/(a) = ${(b.seconds / a.seconds).toFixed(2)}  (target ≤ 0.75)`);
    console.log(`restore ratio (d)/(c) = ${(d.seconds / c.seconds).toFixed(2)}  (target ≤ 1.25)`);
    console.log(`peak RSS of koan phases: ${Math.max(b.rssMB, d.rssMB)} MB (target ≤ 150)`);
    const counts = [db.dump, db.koan].map((name) => psql(name, 'SELECT count(*) FROM "Person"'));
    console.log(`restored rows: pg_restore ${counts[0]}, koan ${counts[1]}`);
    const same =
      psql(db.src, `SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM "Person" t`) ===
      psql(db.koan, `SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM "Person" t`);
    console.log(`koan restore identical to source: ${same}`);
  } finally {
    for (const name of Object.values(db))
      psql(base.pathname.slice(1) || 'postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  }
}

const [phase, database, file, ...rest] = process.argv.slice(2);
if (phase === 'export') console.log(`${await exportPhase(database, file, rest[0])} rows`);
else if (phase === 'import') console.log(`${await importPhase(database, file, rest[0], rest[1] === 'bulk')} rows`);
else await main();

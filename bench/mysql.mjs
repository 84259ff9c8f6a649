// MySQL/MariaDB backup and restore against mysqldump: BENCH_ROWS=1000000 node bench/mysql.mjs
// Needs a build (npx tsc -b packages/data-mysql), the mysql and mysqldump CLIs, and a server at
// KOAN_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306/test). Works in scratch databases it drops.
// Each phase runs in its own process under /usr/bin/time, so wall time and peak RSS are per phase
// (peak RSS is the largest process of the phase; the server is not counted on either side).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createGunzip, createGzip } from 'node:zlib';

const url = new URL(process.env.KOAN_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test');
const cli = [`-h${url.hostname}`, `-P${url.port || '3306'}`, `-u${decodeURIComponent(url.username || 'root')}`];
if (url.password) cli.push(`-p${decodeURIComponent(url.password)}`);
const uri = (database) => {
  const u = new URL(url);
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
  const { createMysqlAdapter } = await import('../packages/data-mysql/dist/index.js');
  const adapter = createMysqlAdapter({ uri: uri(database), poolSize: 2 });
  await adapter.init();
  return adapter;
}

/** Phase (b): a backup's read of the table: snapshot export, archive JSON lines, gzip level 1. */
async function exportPhase(database, file) {
  const { encodeRecordLine } = await import('../packages/data/dist/index.js');
  const adapter = await adapterFor(database);
  const gzip = createGzip({ level: 1, chunk: 256 * 1024 });
  const done = new Promise((resolve, reject) =>
    gzip.pipe(createWriteStream(file)).on('finish', resolve).on('error', reject),
  );
  const write = async (chunk) => {
    if (!gzip.write(chunk)) await new Promise((r) => gzip.once('drain', r));
  };
  let rows = 0;
  await adapter.readSnapshot(async (reader) => {
    let text = '';
    for await (const batch of reader.exportEntity(Person, 'root', {
      batchSize: Number(process.env.BENCH_BATCH ?? 5000),
    })) {
      for (const record of batch) text += encodeRecordLine(Person, record) + '\n';
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

/** Phase (d): a restore's write: gunzip, parse and decode lines, bulk import in batches (one in flight). */
async function importPhase(database, file) {
  const { decodeRecord } = await import('../packages/data/dist/index.js');
  const adapter = await adapterFor(database);
  await adapter.ensureEntity(Person, 'root');
  const importBatchSize = Number(process.env.BENCH_BATCH ?? 5000);
  let batch = [];
  let rows = 0;
  let inFlight = Promise.resolve();
  const flush = async () => {
    const records = batch;
    batch = [];
    await inFlight;
    inFlight = adapter
      .importBatch(Person, 'root', records, { mode: process.env.BENCH_MODE ?? 'insert', bulk: true })
      .then((r) => {
        rows += r.inserted + r.updated;
      });
  };
  let rest = '';
  for await (const chunk of createReadStream(file).pipe(createGunzip())) {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      if (line) batch.push(decodeRecord(Person, JSON.parse(line)).record);
      if (batch.length === importBatchSize) await flush();
    }
  }
  if (rest) batch.push(decodeRecord(Person, JSON.parse(rest)).record);
  if (batch.length) await flush();
  await inFlight;
  await adapter.close();
  return rows;
}

const mysql = (database, sql) =>
  execFileSync('mysql', [...cli, '-N', '-e', sql, ...(database ? [database] : [])], { encoding: 'utf8' }).trim();

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
  const tag = randomBytes(4).toString('hex');
  const db = { src: `koan_bench_${tag}_src`, dump: `koan_bench_${tag}_dump`, koan: `koan_bench_${tag}_koan` };
  const dir = join(tmpdir(), `koan-bench-mysql-${tag}`);
  mkdirSync(dir, { recursive: true });
  const files = { dump: join(dir, 'dump.sql.gz'), jsonl: join(dir, 'person.jsonl.gz') };
  const self = fileURLToPath(import.meta.url);
  const conn = cli.join(' ');
  try {
    for (const name of Object.values(db)) mysql('', `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
    const setup = await adapterFor(db.src);
    await setup.ensureEntity(Person, 'root');
    await setup.close();
    const t0 = performance.now();
    // ~300 bytes per row as archive JSON; generated server-side from MariaDB's sequence engine.
    for (let from = 1; from <= rowsWanted; from += 250_000) {
      const to = Math.min(rowsWanted, from + 249_999);
      mysql(
        db.src,
        `INSERT INTO Person (id, name, email, age, balance, created, tags, bio)
         SELECT UUID(), CONCAT('Name ', seq, ' ', SUBSTR(MD5(seq), 1, 6)), CONCAT('user', seq, '@example.com'), seq % 90,
                ROUND((seq * 7919 % 10000000) / 100, 2), TIMESTAMPADD(MICROSECOND, seq * 1234567, '2020-01-01 00:00:00'),
                JSON_ARRAY('alpha', CONCAT('t', seq % 17), IF(seq % 2, 'beta', 'gamma')), LEFT(REPEAT(MD5(seq), 4), 100)
         FROM seq_${from}_to_${to}`,
      );
    }
    console.log(
      `generated ${mysql(db.src, 'SELECT COUNT(*) FROM Person')} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );

    const results = [
      timed(
        '(a) mysqldump --single-transaction | gzip -1',
        `mysqldump ${conn} --single-transaction ${db.src} Person | gzip -1 > ${files.dump}`,
      ),
      timed('(b) koan export → JSONL + gzip -1', `node ${self} export ${db.src} ${files.jsonl}`),
      timed('(c) gunzip -c | mysql', `gunzip -c ${files.dump} | mysql ${conn} ${db.dump}`),
      timed('(d) koan bulk import of the JSONL', `node ${self} import ${db.koan} ${files.jsonl}`),
    ];
    for (const r of results)
      console.log(
        `${r.label.padEnd(48)} ${r.seconds.toFixed(2).padStart(7)} s  ${String(r.rssMB).padStart(5)} MB  ${r.out}`,
      );
    const [a, b, c, d] = results;
    console.log(
      `sizes: dump.sql.gz ${(statSync(files.dump).size / 1e6).toFixed(1)} MB, person.jsonl.gz ${(statSync(files.jsonl).size / 1e6).toFixed(1)} MB`,
    );
    console.log(`backup  ratio (b)/(a) = ${(b.seconds / a.seconds).toFixed(2)}  (target ≤ 1.25)`);
    console.log(`restore ratio (d)/(c) = ${(d.seconds / c.seconds).toFixed(2)}  (target ≤ 0.75)`);
    console.log(`peak RSS of koan phases: ${Math.max(b.rssMB, d.rssMB)} MB (target ≤ 150)`);
    const counts = [db.dump, db.koan].map((name) => mysql(name, 'SELECT COUNT(*) FROM Person'));
    console.log(`restored rows: mysql ${counts[0]}, koan ${counts[1]}`);
  } finally {
    for (const name of Object.values(db)) mysql('', `DROP DATABASE IF EXISTS \`${name}\``);
    rmSync(dir, { recursive: true, force: true });
  }
}

const [phase, database, file] = process.argv.slice(2);
if (phase === 'export') console.log(`${await exportPhase(database, file)} rows`);
else if (phase === 'import') console.log(`${await importPhase(database, file)} rows`);
else await main();

// Wide rows: peak RSS of backup, validate and restore of a table of 45,000 rows of ~100 KB each (4.5 GB of JSON
// lines), against the native tools in the same run, then the 1M-row benchmark table again (≤ 150 MB).
//   npm run build && node bench/wide-rows.mjs
//   BENCH_PROVIDERS=postgres,mysql,sqlite  BENCH_WIDE_ROWS=45000  BENCH_WIDE_BYTES=100000  BENCH_NARROW=1 (0: skip the
//   1M-row re-check)  BENCH_BATCH / BENCH_BATCH_BYTES (library defaults unless given: the figures are what users get)
// Every phase runs in its own process under GNU time (bench/_lib.mjs `measure`): wall time and the peak RSS of the
// largest process of the phase. Targets: ≤ 200 MB for each koan phase of the wide table, ≤ 150 MB at 1M narrow rows.
// Works in scratch databases / files it removes at the end (also when a phase fails).
import { execFileSync, spawnSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measure, scratchDir, sh, table } from './_lib.mjs';

const self = fileURLToPath(import.meta.url);
const rows = Number(process.env.BENCH_WIDE_ROWS ?? 45_000);
const rowBytes = Number(process.env.BENCH_WIDE_BYTES ?? 100_000);
const providers = (process.env.BENCH_PROVIDERS ?? 'postgres,mysql,sqlite').split(',').filter(Boolean);
const suffix = Math.random().toString(36).slice(2, 8);
const pgBase = new URL(process.env.KOAN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
const myBase = new URL(process.env.KOAN_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test');
/** The payload's length: the row's JSON line is ~`rowBytes` with the other fields. */
const payloadChars = Math.max(1, rowBytes - 150);

/** The options of every koan phase: the library's defaults unless the environment says otherwise. */
function jobOptions() {
  return {
    ...(process.env.BENCH_BATCH ? { batchSize: Number(process.env.BENCH_BATCH) } : {}),
    ...(process.env.BENCH_BATCH_BYTES ? { batchBytes: process.env.BENCH_BATCH_BYTES } : {}),
  };
}

async function wideEntity() {
  const { t } = await import('@koan/data');
  const { buildSchema } = await import('@koan/data/adapter-kit');
  const fields = {
    id: t.integer(),
    name: t.string(),
    createdAt: t.datetime(),
    tags: t.json(),
    payload: t.string(),
  };
  return { fields, schema: buildSchema({ name: 'Wide', key: 'id', fields }, 'declared') };
}

/** One koan phase in this process (run by `measure` as a child): backup, validate or restore of the Wide entity. */
async function phase(op, dir, sourceJson) {
  const { DataRuntime, Entity } = await import('@koan/data');
  const { BackupContext, BackupDiscoveryService, backupEntity, restoreEntity } = await import('@koan/data-backup');
  const { StorageProfiles } = await import('@koan/storage');
  const { fields, schema } = await wideEntity();
  const runtime = new DataRuntime({ sources: { default: JSON.parse(sourceJson) }, cwd: dir });
  const storage = await StorageProfiles.load(
    { profiles: { local: { provider: 'local', settings: { root: join(dir, 'backups') } } } },
    { cwd: dir },
  );
  const context = new BackupContext({ runtime, storage });
  const Wide = new Entity(schema, fields).withRuntime(runtime);
  let result;
  if (op === 'backup') {
    const m = await backupEntity(context, Wide, 'wide', jobOptions());
    result = {
      items: m.verification.totalItemCount,
      archiveBytes: m.archive.sizeBytes,
      dataBytes: m.verification.totalSizeBytes,
    };
  } else if (op === 'validate') {
    const v = await new BackupDiscoveryService(context).validateBackup('wide');
    if (!v.isValid) throw new Error(`validation failed: ${v.issues.slice(0, 3).join('; ')}`);
    result = { items: v.checkedLines };
  } else {
    const r = await restoreEntity(context, Wide, 'wide', jobOptions());
    result = { items: r.totalRecords };
  }
  await context.close();
  console.log(JSON.stringify({ op, ...result }));
}

async function createTable(source) {
  const { DataRuntime } = await import('@koan/data');
  const { schema } = await wideEntity();
  const runtime = new DataRuntime({ sources: { default: source } });
  const adapter = await runtime.adapter('default');
  await adapter.ensureEntity(schema, 'root');
  await runtime.close();
}

const pg = {
  url: (db) => Object.assign(new URL(pgBase), { pathname: `/${db}` }).toString(),
  psql: (db, sql) =>
    execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pg.url(db), '-c', sql], { encoding: 'utf8' }),
  create: (db) => pg.psql('postgres', `CREATE DATABASE ${db}`),
  drop: (db) => pg.psql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`),
  quiesce: () => pg.psql('postgres', 'CHECKPOINT'),
  source: (db) => ({ provider: 'postgres', settings: { connectionString: pg.url(db) } }),
  // Each payload is a different cut of 200 KB of hex digits: no repeat within deflate's 32 KiB window or a row
  // (PostgreSQL's TOAST keeps it uncompressed), ~55% of its size deflated.
  seed: (db) =>
    pg.psql(
      db,
      `INSERT INTO "Wide" (id, name, "createdAt", tags, payload)
       SELECT i, 'wide row ' || i, timestamptz '2020-01-01 00:00:00Z' + i * interval '1 second',
              jsonb_build_array('wide', i % 7), substr(s.t, (i * 7919) % 100000 + 1, ${payloadChars})
       FROM generate_series(1, ${rows}) AS i,
            (SELECT string_agg(md5(g::text), '') AS t FROM generate_series(1, ${Math.ceil((payloadChars + 100_000) / 32)}) g) s;
       ANALYZE "Wide"`,
    ),
  nativeBackup: (db, dir) => `pg_dump -Fc -Z1 -d '${pg.url(db)}' -t '"Wide"' -f ${join(dir, 'dump.pgc')}`,
  nativeRestore: (db, dir) => `pg_restore -d '${pg.url(db)}' ${join(dir, 'dump.pgc')}`,
  names: ['pg_dump -Fc -Z1', 'pg_restore'],
  count: (db) => Number(sh(`psql -X -At -d '${pg.url(db)}' -c 'SELECT count(*) FROM "Wide"'`).trim()),
  digest: (db) =>
    execFileSync(
      'psql',
      [
        '-X',
        '-At',
        '-d',
        pg.url(db),
        '-c',
        `SELECT md5(string_agg(md5(payload) || name, ',' ORDER BY id)) FROM "Wide"`,
      ],
      { encoding: 'utf8' },
    ).trim(),
};

const myArgs = `-h ${myBase.hostname} -P ${myBase.port || 3306} -u ${decodeURIComponent(myBase.username || 'root')}${myBase.password ? ` -p${decodeURIComponent(myBase.password)}` : ''}`;
const my = {
  url: (db) => Object.assign(new URL(myBase), { pathname: `/${db}` }).toString(),
  sql: (db, sql) => execFileSync('mysql', [...myArgs.split(' '), ...(db ? [db] : []), '-e', sql], { encoding: 'utf8' }),
  create: (db) => my.sql('', `CREATE DATABASE ${db} CHARACTER SET utf8mb4`),
  drop: (db) => my.sql('', `DROP DATABASE IF EXISTS ${db}`),
  quiesce: () => {},
  source: (db) => ({ provider: 'mysql', settings: { uri: my.url(db) } }),
  seed: (db) =>
    my.sql(
      db,
      `SET SESSION group_concat_max_len = 1048576;
       SET @s = (SELECT GROUP_CONCAT(MD5(seq) SEPARATOR '') FROM seq_1_to_${Math.ceil((payloadChars + 100_000) / 32)});
       INSERT INTO \`Wide\` (id, name, createdAt, tags, payload)
       SELECT seq, CONCAT('wide row ', seq), TIMESTAMP('2020-01-01 00:00:00') + INTERVAL seq SECOND,
              JSON_ARRAY('wide', seq % 7), SUBSTRING(@s, (seq * 7919) % 100000 + 1, ${payloadChars})
       FROM seq_1_to_${rows}`,
    ),
  nativeBackup: (db, dir) =>
    `mysqldump ${myArgs} --single-transaction ${db} Wide | gzip -1 > ${join(dir, 'dump.sql.gz')}`,
  nativeRestore: (db, dir) => `gunzip -c ${join(dir, 'dump.sql.gz')} | mysql ${myArgs} ${db}`,
  names: ['mysqldump|gzip -1', 'gunzip|mysql'],
  count: (db) => Number(sh(`mysql ${myArgs} -N ${db} -e 'SELECT count(*) FROM Wide'`).trim()),
  digest: (db) =>
    my
      .sql(
        db,
        `SET SESSION group_concat_max_len = 67108864; SELECT MD5(GROUP_CONCAT(CONCAT(MD5(payload), name) ORDER BY id SEPARATOR ',')) AS d FROM Wide`,
      )
      .trim(),
};

/** SQLite: databases are files in the scratch directory. */
function sqliteProvider(dir) {
  const file = (db) => join(dir, `${db}.db`);
  const sqlite = (db, sql) => execFileSync('sqlite3', [file(db)], { input: sql, encoding: 'utf8' });
  return {
    create: () => {},
    drop: (db) => {
      for (const ext of ['', '-wal', '-shm']) rmSync(`${file(db)}${ext}`, { force: true });
    },
    quiesce: () => {},
    source: (db) => ({ provider: 'sqlite', settings: { path: file(db) } }),
    seed: (db) =>
      sqlite(
        db,
        `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ${Math.ceil((payloadChars + 100_000) / 32)}),
              s(t) AS (SELECT group_concat(lower(hex(randomblob(16))), '') FROM g),
              r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ${rows})
         INSERT INTO "Wide" (id, name, createdAt, tags, payload)
         SELECT i, 'wide row ' || i, strftime('%Y-%m-%dT%H:%M:%S', '2020-01-01', '+' || i || ' seconds') || '.000000Z',
                json_array('wide', i % 7), substr(s.t, (i * 7919) % 100000 + 1, ${payloadChars})
         FROM r, s;`,
      ),
    nativeBackup: (db, d) => `sqlite3 ${file(db)} .dump | gzip -1 > ${join(d, 'dump.sql.gz')}`,
    nativeRestore: (db, d) => `gunzip -c ${join(d, 'dump.sql.gz')} | sqlite3 ${file(db)}`,
    names: ['sqlite3 .dump|gzip -1', 'gunzip|sqlite3'],
    count: (db) => Number(sqlite(db, 'SELECT count(*) FROM "Wide";').trim()),
    digest: (db) => sqlite(db, `SELECT count(*), sum(length(payload)), max(name) FROM "Wide";`).trim(),
  };
}

async function wideRun(name) {
  const dir = scratchDir(`wide-${name}`);
  const p = name === 'postgres' ? pg : name === 'mysql' ? my : sqliteProvider(dir);
  const src = `koan_wide_src_${suffix}`;
  const nativeDb = `koan_wide_native_${suffix}`;
  const koanDb = `koan_wide_koan_${suffix}`;
  const dbs = [src, nativeDb, koanDb];
  try {
    for (const db of dbs) {
      p.drop(db);
      p.create(db);
    }
    await createTable(p.source(src));
    console.error(`${name}: seeding ${rows} rows of ~${rowBytes} bytes...`);
    const t0 = performance.now();
    p.seed(src);
    console.error(`${name}: seeded in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const run = (command) => {
      p.quiesce();
      return measure(command);
    };
    const koan = (op, db) => run(`node ${self} --phase ${op} ${dir} '${JSON.stringify(p.source(db))}'`);
    // BENCH_NATIVE=0 leaves the native tools out (quicker runs when only koan's memory is looked at).
    const natives = process.env.BENCH_NATIVE !== '0';
    const skipped = { seconds: Number.NaN, peakRssMB: Number.NaN };
    const nb = natives ? run(p.nativeBackup(src, dir)) : skipped;
    console.error(`${name}: native backup ${nb.seconds.toFixed(1)} s`);
    const kb = koan('backup', src);
    console.error(`${name}: koan backup ${kb.seconds.toFixed(1)} s, ${kb.peakRssMB?.toFixed(0)} MB`);
    const kv = koan('validate', src);
    console.error(`${name}: koan validate ${kv.seconds.toFixed(1)} s, ${kv.peakRssMB?.toFixed(0)} MB`);
    const nr = natives ? run(p.nativeRestore(nativeDb, dir)) : skipped;
    console.error(`${name}: native restore ${nr.seconds.toFixed(1)} s`);
    const kr = koan('restore', koanDb);
    console.error(`${name}: koan restore ${kr.seconds.toFixed(1)} s, ${kr.peakRssMB?.toFixed(0)} MB`);
    const b = JSON.parse(kb.stdout.trim().split('\n').pop());
    const v = JSON.parse(kv.stdout.trim().split('\n').pop());
    const k = JSON.parse(kr.stdout.trim().split('\n').pop());
    const counts = [b.items, v.items, k.items, p.count(koanDb), natives ? p.count(nativeDb) : rows];
    if (counts.some((n) => n !== rows)) throw new Error(`${name}: count mismatch ${JSON.stringify(counts)}`);
    if (p.digest(src) !== p.digest(koanDb)) throw new Error(`${name}: the restored table differs from the source`);
    const dumpFile = join(dir, name === 'postgres' ? 'dump.pgc' : 'dump.sql.gz');
    const mb = (x) => (x ?? 0).toFixed(0);
    return {
      provider: name,
      rows: `${rows} × ${(rowBytes / 1000).toFixed(0)} KB`,
      'koan backup s / MB': `${kb.seconds.toFixed(1)} / ${mb(kb.peakRssMB)}`,
      'native backup s / MB': `${nb.seconds.toFixed(1)} / ${mb(nb.peakRssMB)} (${p.names[0]})`,
      'backup time ratio': (kb.seconds / nb.seconds).toFixed(2),
      'koan validate s / MB': `${kv.seconds.toFixed(1)} / ${mb(kv.peakRssMB)}`,
      'koan restore s / MB': `${kr.seconds.toFixed(1)} / ${mb(kr.peakRssMB)}`,
      'native restore s / MB': `${nr.seconds.toFixed(1)} / ${mb(nr.peakRssMB)} (${p.names[1]})`,
      'restore time ratio': (kr.seconds / nr.seconds).toFixed(2),
      'bytes jsonl/zip/dump': `${(b.dataBytes / 1e9).toFixed(2)}G/${(b.archiveBytes / 1e9).toFixed(2)}G/${natives ? (statSync(dumpFile).size / 1e9).toFixed(2) : '-'}G`,
      peakMB: Math.max(kb.peakRssMB ?? 0, kv.peakRssMB ?? 0, kr.peakRssMB ?? 0),
    };
  } finally {
    for (const db of dbs) {
      try {
        p.drop(db);
      } catch (e) {
        console.error(`could not drop ${db}: ${e.message}`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The 1M-row benchmark table (bench/providers.mjs, one run each): peak RSS must stay ≤ 150 MB. */
function narrowRun(list) {
  const r = spawnSync(process.execPath, [join(process.cwd(), 'bench', 'providers.mjs')], {
    env: { ...process.env, BENCH_ROWS: '1000000', BENCH_REPEAT: '1', BENCH_PROVIDERS: list.join(',') },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`bench/providers.mjs failed (${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').pop()).results;
}

async function main() {
  const results = [];
  for (const name of providers) results.push(await wideRun(name));
  const worst = Math.max(...results.map((r) => r.peakMB));
  console.log(table(results.map(({ peakMB, ...r }) => r)));
  console.log(`wide rows: largest koan peak RSS ${worst.toFixed(0)} MB (target ≤ 200)`);
  let narrow = [];
  if (process.env.BENCH_NARROW !== '0') {
    const servers = providers.filter((p) => p !== 'sqlite');
    if (servers.length) narrow = narrowRun(servers);
    for (const n of narrow)
      console.log(
        `${n.provider} 1M rows: koan peak RSS backup/restore ${n['koan peak RSS b/r (MB)']} MB (target ≤ 150)`,
      );
  }
  console.log(JSON.stringify({ benchmark: 'wide-rows', rows, rowBytes, node: process.version, results, narrow }));
}

const args = process.argv.slice(2);
if (args[0] === '--phase') await phase(args[1], args[2], args[3]);
else await main();

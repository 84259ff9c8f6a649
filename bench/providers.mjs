// PostgreSQL and MariaDB: the full backup/restore pipeline against the native tools, in the same run.
//   npm run build && node bench/providers.mjs          (BENCH_ROWS=100000,1000000  BENCH_REPEAT=3  BENCH_PROVIDERS=postgres,mysql)
// PostgreSQL: koan backup vs pg_dump -Fc;   koan restore vs pg_restore (into a fresh database)
// MariaDB:    koan backup vs mysqldump --single-transaction | gzip -1;   koan restore vs gunzip | mysql (fresh database)
// Every phase runs in its own process under GNU time: wall time and the peak RSS of the largest process.
import { execFileSync } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { schema } from './_job.mjs';
import { measure, median, scratchDir, sh, table } from './_lib.mjs';

const rowsList = (process.env.BENCH_ROWS ?? '100000,1000000').split(',').map(Number);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const providers = (process.env.BENCH_PROVIDERS ?? 'postgres,mysql').split(',');
const job = join(process.cwd(), 'bench', '_job.mjs');
const pgBase = new URL(process.env.KOAN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
const myBase = new URL(process.env.KOAN_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test');
const suffix = Math.random().toString(36).slice(2, 8);

const pg = {
  url: (db) => Object.assign(new URL(pgBase), { pathname: `/${db}` }).toString(),
  psql: (db, sql) =>
    execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', pg.url(db), '-c', sql], { encoding: 'utf8' }),
  create: (db) => pg.psql('postgres', `CREATE DATABASE ${db}`),
  drop: (db) => pg.psql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`),
  quiesce: () => pg.psql('postgres', 'CHECKPOINT'),
  source: (db) => ({ provider: 'postgres', settings: { connectionString: pg.url(db) } }),
  seed: (db, rows) =>
    pg.psql(
      db,
      `INSERT INTO "Person" (id, name, email, visits, balance, "createdAt", tags, bio)
       SELECT md5(i::text)::uuid, 'Person Number ' || i, 'person.' || i || '@example.org', i % 10000, ((i % 1000000) / 100.0)::numeric(12,2),
              timestamptz '2020-01-01 00:00:00Z' + i * interval '1 second' + (i % 1000000) * interval '1 microsecond',
              jsonb_build_array('alpha', 'tag-' || (i % 97), jsonb_build_object('score', i % 13)), repeat('x', 60) || lpad(i::text, 40, '0')
       FROM generate_series(1, ${rows}) AS i; ANALYZE "Person"`,
    ),
  nativeBackup: (db, dir) => `pg_dump -Fc -d '${pg.url(db)}' -t '"Person"' -f ${join(dir, 'dump.pgc')}`,
  nativeRestore: (db, dir) => `pg_restore -d '${pg.url(db)}' ${join(dir, 'dump.pgc')}`,
  dumpFile: 'dump.pgc',
  names: ['pg_dump -Fc', 'pg_restore'],
  count: (db) => Number(sh(`psql -X -At -d '${pg.url(db)}' -c 'SELECT count(*) FROM "Person"'`).trim()),
};

const myArgs = `-h ${myBase.hostname} -P ${myBase.port || 3306} -u ${decodeURIComponent(myBase.username || 'root')}${myBase.password ? ` -p${decodeURIComponent(myBase.password)}` : ''}`;
const my = {
  url: (db) => Object.assign(new URL(myBase), { pathname: `/${db}` }).toString(),
  sql: (db, sql) => execFileSync('mysql', [...myArgs.split(' '), ...(db ? [db] : []), '-e', sql], { encoding: 'utf8' }),
  create: (db) => my.sql('', `CREATE DATABASE ${db} CHARACTER SET utf8mb4`),
  drop: (db) => my.sql('', `DROP DATABASE IF EXISTS ${db}`),
  quiesce: () => {},
  source: (db) => ({ provider: 'mysql', settings: { uri: my.url(db) } }),
  seed: (db, rows) =>
    my.sql(
      db,
      `INSERT INTO \`Person\` (id, name, email, visits, balance, createdAt, tags, bio)
       SELECT LOWER(CONCAT_WS('-', SUBSTR(MD5(seq),1,8), SUBSTR(MD5(seq),9,4), SUBSTR(MD5(seq),13,4), SUBSTR(MD5(seq),17,4), SUBSTR(MD5(seq),21,12))),
              CONCAT('Person Number ', seq), CONCAT('person.', seq, '@example.org'), seq % 10000, CAST((seq % 1000000) / 100 AS DECIMAL(12,2)),
              TIMESTAMP('2020-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
              JSON_ARRAY('alpha', CONCAT('tag-', seq % 97), JSON_OBJECT('score', seq % 13)), CONCAT(REPEAT('x', 60), LPAD(seq, 40, '0'))
       FROM seq_1_to_${rows}`,
    ),
  nativeBackup: (db, dir) =>
    `mysqldump ${myArgs} --single-transaction ${db} Person | gzip -1 > ${join(dir, 'dump.sql.gz')}`,
  nativeRestore: (db, dir) => `gunzip -c ${join(dir, 'dump.sql.gz')} | mysql ${myArgs} ${db}`,
  dumpFile: 'dump.sql.gz',
  names: ['mysqldump|gzip -1', 'gunzip|mysql'],
  count: (db) => Number(sh(`mysql ${myArgs} -N ${db} -e 'SELECT count(*) FROM Person'`).trim()),
};

async function createTable(p, db) {
  const { DataRuntime } = await import('@koan/data');
  const runtime = new DataRuntime({ sources: { default: p.source(db) } });
  const adapter = await runtime.adapter('default');
  await adapter.ensureEntity(schema, 'root');
  await runtime.close();
}

const results = [];
for (const name of providers) {
  const p = name === 'postgres' ? pg : my;
  for (const rows of rowsList) {
    const dir = scratchDir(`${name}-${rows}`);
    const src = `koan_bench_src_${suffix}`;
    p.drop(src);
    p.create(src);
    await createTable(p, src);
    console.error(`${name}: seeding ${rows} rows...`);
    p.seed(src, rows);
    const runs = { nb: [], kb: [], nr: [], kr: [] };
    const rss = { nb: 0, kb: 0, nr: 0, kr: 0 };
    let sizes = {};
    try {
      for (let r = 0; r < repeat; r++) {
        console.error(`${name} rows=${rows} run ${r + 1}/${repeat}`);
        rmSync(join(dir, 'backups'), { recursive: true, force: true });
        const nativeDb = `koan_bench_native_${suffix}`;
        const koanDb = `koan_bench_koan_${suffix}`;
        for (const db of [nativeDb, koanDb]) {
          p.drop(db);
          p.create(db);
        }
        // Each phase starts with the server's dirty pages written out (PostgreSQL: CHECKPOINT; InnoDB has no
        // cheap equivalent) and the OS's (`sync`, in measure).
        const phase = (command) => {
          p.quiesce();
          return measure(command);
        };
        const nb = phase(p.nativeBackup(src, dir));
        const kb = phase(`node ${job} backup ${dir} '${JSON.stringify(p.source(src))}'`);
        const nr = phase(p.nativeRestore(nativeDb, dir));
        const kr = phase(`node ${job} restore ${dir} '${JSON.stringify(p.source(koanDb))}'`);
        const b = JSON.parse(kb.stdout.trim().split('\n').pop());
        const k = JSON.parse(kr.stdout.trim().split('\n').pop());
        if (b.items !== rows || k.items !== rows || p.count(koanDb) !== rows || p.count(nativeDb) !== rows)
          throw new Error(`count mismatch: ${JSON.stringify({ b, k })}`);
        sizes = { dump: statSync(join(dir, p.dumpFile)).size, archive: b.archiveBytes, jsonl: b.dataBytes };
        for (const [key, m] of Object.entries({ nb, kb, nr, kr })) {
          runs[key].push(m.seconds);
          rss[key] = Math.max(rss[key], m.peakRssMB ?? 0);
        }
        for (const db of [nativeDb, koanDb]) p.drop(db);
      }
    } finally {
      p.drop(src);
      rmSync(dir, { recursive: true, force: true });
    }
    const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
    results.push({
      provider: name,
      rows,
      'native backup (s)': `${m.nb.toFixed(2)} (${p.names[0]})`,
      'koan backup (s)': m.kb.toFixed(2),
      'backup ratio': (m.kb / m.nb).toFixed(2),
      'native restore (s)': `${m.nr.toFixed(2)} (${p.names[1]})`,
      'koan restore (s)': m.kr.toFixed(2),
      'restore ratio': (m.kr / m.nr).toFixed(2),
      'koan peak RSS b/r (MB)': `${rss.kb.toFixed(0)}/${rss.kr.toFixed(0)}`,
      'native peak RSS b/r (MB)': `${rss.nb.toFixed(0)}/${rss.nr.toFixed(0)}`,
      'bytes jsonl/zip/dump': `${(sizes.jsonl / 1e6).toFixed(0)}M/${(sizes.archive / 1e6).toFixed(0)}M/${(sizes.dump / 1e6).toFixed(0)}M`,
    });
  }
}
console.log(table(results));
console.log(JSON.stringify({ benchmark: 'providers', repeat, node: process.version, results }));

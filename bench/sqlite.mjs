// SQLite backup/restore benchmark against the native tools, in the same run.
//   npm run bench:sqlite               (BENCH_ROWS=100000,1000000 BENCH_REPEAT=3 by default)
// Backup:  koan backup (zip+jsonl, deflate level 1)   vs  sqlite3 db .dump | gzip -1
// Restore: koan restore (validate first, bulk insert) vs  gunzip -c dump | sqlite3 new.db
// Floor:   the rows already in memory, inserted with one prepared statement (no archive, no JSON): what any restore costs
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createSqliteAdapter } from '@koan/data-sqlite';
import { schema } from './_job.mjs';
import { measure, median, scratchDir, table } from './_lib.mjs';

const rowsList = (process.env.BENCH_ROWS ?? '100000,1000000').split(',').map(Number);
const repeat = Number(process.env.BENCH_REPEAT ?? 3);
const job = join(process.cwd(), 'bench', '_job.mjs');
const sqliteSource = (path) => `'${JSON.stringify({ provider: 'sqlite', settings: { path } })}'`;
const floorJob = join(process.cwd(), 'bench', '_sqlite-floor.mjs');

function uuidOf(i) {
  const h = i.toString(16).padStart(12, '0');
  return `${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}-${h.slice(0, 4)}-4${h.slice(4, 7)}-8${h.slice(7, 10)}-${h}${'0'.repeat(0)}`.slice(
    0,
    36,
  );
}

async function seed(file, rows) {
  const adapter = createSqliteAdapter({ path: file });
  await adapter.init();
  await adapter.ensureEntity(schema, 'root');
  const bio = 'x'.repeat(60);
  const batch = 10_000;
  for (let start = 0; start < rows; start += batch) {
    const records = [];
    for (let i = start; i < Math.min(rows, start + batch); i++) {
      records.push({
        id: uuidOf(i),
        name: `Person Number ${i}`,
        email: `person.${i}@example.org`,
        visits: i % 10_000,
        balance: `${(i % 1_000_000) / 100}`.includes('.') ? ((i % 1_000_000) / 100).toFixed(2) : `${i % 1_000_000}.00`,
        createdAt: new Date(Date.UTC(2020, 0, 1) + i * 1000)
          .toISOString()
          .replace('Z', `${String(i % 1000).padStart(3, '0')}Z`),
        tags: ['alpha', `tag-${i % 97}`, { score: i % 13 }],
        bio: `${bio}${String(i).padStart(40, '0')}`,
      });
    }
    await adapter.transaction((tx) => tx.importBatch(schema, 'root', records, { mode: 'insert', bulk: true }));
  }
  await adapter.close();
}

const results = [];
for (const rows of rowsList) {
  const dir = scratchDir(`sqlite-${rows}`);
  const src = join(dir, 'source.db');
  console.error(`seeding ${rows} rows...`);
  await seed(src, rows);
  const runs = { nativeBackup: [], koanBackup: [], nativeRestore: [], koanRestore: [], floor: [] };
  const rss = { nativeBackup: 0, koanBackup: 0, nativeRestore: 0, koanRestore: 0 };
  let sizes = {};
  for (let r = 0; r < repeat; r++) {
    console.error(`rows=${rows} run ${r + 1}/${repeat}`);
    rmSync(join(dir, 'backups'), { recursive: true, force: true });
    for (const f of ['native.db', 'koan.db', 'floor.db'])
      for (const x of ['', '-wal', '-shm']) rmSync(join(dir, f + x), { force: true });
    const nb = measure(`sqlite3 ${src} .dump | gzip -1 > ${join(dir, 'dump.sql.gz')}`);
    const kb = measure(`node ${job} backup ${dir} ${sqliteSource(src)}`);
    const nr = measure(`gunzip -c ${join(dir, 'dump.sql.gz')} | sqlite3 ${join(dir, 'native.db')}`);
    const kr = measure(`node ${job} restore ${dir} ${sqliteSource(join(dir, 'koan.db'))}`);
    const floor = JSON.parse(
      measure(`node ${floorJob} ${src} ${join(dir, 'floor.db')}`)
        .stdout.trim()
        .split('\n')
        .pop(),
    );
    runs.floor.push(floor.insertSeconds);
    const backupInfo = JSON.parse(kb.stdout.trim().split('\n').pop());
    const restoreInfo = JSON.parse(kr.stdout.trim().split('\n').pop());
    if (backupInfo.items !== rows || restoreInfo.items !== rows)
      throw new Error(`count mismatch: ${JSON.stringify({ backupInfo, restoreInfo })}`);
    sizes = {
      dumpGzBytes: statSync(join(dir, 'dump.sql.gz')).size,
      archiveBytes: backupInfo.archiveBytes,
      jsonlBytes: backupInfo.dataBytes,
    };
    runs.nativeBackup.push(nb.seconds);
    runs.koanBackup.push(kb.seconds);
    runs.nativeRestore.push(nr.seconds);
    runs.koanRestore.push(kr.seconds);
    for (const [k, m] of [
      ['nativeBackup', nb],
      ['koanBackup', kb],
      ['nativeRestore', nr],
      ['koanRestore', kr],
    ])
      rss[k] = Math.max(rss[k], m.peakRssMB ?? 0);
  }
  const m = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
  results.push({
    rows,
    'sqlite3 .dump|gzip -1 (s)': m.nativeBackup.toFixed(2),
    'koan backup (s)': m.koanBackup.toFixed(2),
    'backup ratio': (m.koanBackup / m.nativeBackup).toFixed(2),
    'sqlite3 replay (s)': m.nativeRestore.toFixed(2),
    'koan restore (s)': m.koanRestore.toFixed(2),
    'restore ratio': (m.koanRestore / m.nativeRestore).toFixed(2),
    'raw insert floor (s, ratio)': `${m.floor.toFixed(2)} (${(m.floor / m.nativeRestore).toFixed(2)})`,
    'koan backup peak RSS (MB)': rss.koanBackup.toFixed(0),
    'koan restore peak RSS (MB)': rss.koanRestore.toFixed(0),
    'native peak RSS b/r (MB)': `${rss.nativeBackup.toFixed(0)}/${rss.nativeRestore.toFixed(0)}`,
    'bytes jsonl/zip/dump.gz': `${(sizes.jsonlBytes / 1e6).toFixed(0)}M/${(sizes.archiveBytes / 1e6).toFixed(0)}M/${(sizes.dumpGzBytes / 1e6).toFixed(0)}M`,
  });
  if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true });
}
console.log(table(results));
console.log(JSON.stringify({ benchmark: 'sqlite', repeat, node: process.version, results }));

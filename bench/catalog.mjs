#!/usr/bin/env node
// Catalog benchmark: 1,000 backups on S3 (s3rver) and on Azure Blob (azurite), listed and queried through
// BackupDiscoveryService. A few real backups are made on each backend; their sidecars are then cloned (new id, name,
// date, keys) next to a copy of their archive, so each profile holds N sidecars + N archives as real backups would.
// Listing reads the N sidecars and never an archive. Each measurement runs in its own child process (its own peak
// RSS), against servers on 127.0.0.1 with temp directories that are removed afterwards. Prints a JSON summary.
//
//   npm run build && node bench/catalog.mjs
//   BENCH_CATALOG_BACKUPS=200 node bench/catalog.mjs     # smaller run
//
// Env: BENCH_CATALOG_BACKUPS (default 1000), BENCH_CATALOG_RUNS (timed repetitions after the first, default 3).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.BENCH_CATALOG_BACKUPS ?? 1000);
const RUNS = Number(process.env.BENCH_CATALOG_RUNS ?? 3);
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

// ---------- shared: a backup context on one profile ----------
async function contextFor(config) {
  const { DataRuntime } = await import('@koan/data');
  const { BackupContext } = await import('@koan/data-backup');
  const { StorageProfiles } = await import('@koan/storage');
  const storage = await StorageProfiles.load({ profiles: { [config.name]: config.profile } }, { cwd: config.cwd });
  const runtime = new DataRuntime({ sources: { bench: { provider: 'memory' } }, cwd: config.cwd });
  return new BackupContext({ runtime, storage });
}

function uuidv7(ms) {
  const b = randomBytes(16);
  b.writeUIntBE(ms, 0, 6);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const keysOf = (name, id, at) => {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const base = `${name}/${name}-${stamp}-${id.slice(-8)}`;
  return { archive: `${base}.zip`, sidecar: `${base}.manifest.json` };
};

// ---------- child phases ----------
async function seed(config) {
  const { defineEntity, t } = await import('@koan/data');
  const { backupEntity, readSidecar } = await import('@koan/data-backup');
  const context = await contextFor(config);
  const driver = context.storage.get(config.name);
  const Item = defineEntity({
    name: 'BenchItem',
    key: 'id',
    source: 'bench',
    fields: { id: t.integer(), label: t.string(), at: t.datetime() },
  }).withRuntime(context.runtime);
  await Item.upsertMany(
    Array.from({ length: 200 }, (_, i) => ({ id: i + 1, label: `item ${i}`, at: '2024-01-01T00:00:00Z' })),
  );
  const real = [];
  for (let i = 0; i < 3; i++)
    real.push(await backupEntity(context, Item, `real-${i}`, { tags: ['real'], description: `real backup ${i}` }));
  // Clone: each clone is a full sidecar (same entities, verification, options) with its own id/name/date/keys, next to
  // a copy of a real archive's bytes, so the listing pages through sidecars and archives as in a real bucket.
  const templates = [];
  for (const m of real) {
    const sidecar = await readSidecar(driver, m.archive.key.replace(/\.zip$/, '.manifest.json'));
    const chunks = [];
    for await (const c of await driver.get(m.archive.key)) chunks.push(c);
    templates.push({ sidecar, archive: Buffer.concat(chunks) });
  }
  const start = Date.parse('2024-01-01T02:00:00Z');
  let next = 0;
  const clones = N - real.length;
  const worker = async () => {
    while (next < clones) {
      const i = next++;
      const tpl = templates[i % templates.length];
      const at = new Date(start + i * 3_600_000);
      const name = `nightly-${i % 20}`;
      const id = uuidv7(at.getTime());
      const keys = keysOf(name, id, at);
      const sidecar = {
        ...tpl.sidecar,
        id,
        name,
        description: `clone ${i}`,
        tags: i % 7 === 0 ? ['weekly'] : ['daily'],
        createdAt: at.toISOString(),
        completedAt: new Date(at.getTime() + 1500).toISOString(),
        storageProfile: config.name,
        archive: { ...tpl.sidecar.archive, key: keys.archive },
      };
      await driver.put(keys.archive, [tpl.archive], { contentType: 'application/zip' });
      await driver.put(keys.sidecar, [Buffer.from(`${JSON.stringify(sidecar, null, 2)}\n`)], {
        contentType: 'application/json',
      });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const sidecarBytes = Buffer.byteLength(JSON.stringify(templates[0].sidecar, null, 2));
  await context.close();
  return { backups: N, realBackups: real.length, sidecarBytes, archiveBytes: templates[0].archive.length };
}

async function measureCatalog(config) {
  const { BackupDiscoveryService } = await import('@koan/data-backup');
  const context = await contextFor(config);
  const discovery = new BackupDiscoveryService(context);
  const time = async (fn) => {
    const t0 = process.hrtime.bigint();
    const value = await fn();
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
  };
  const discover = [];
  const query = [];
  let listed = 0;
  let matched = 0;
  let unreadable = 0;
  for (let run = 0; run <= RUNS; run++) {
    const d = await time(() => discovery.discoverAllBackups());
    listed = d.value.totalCount;
    unreadable = d.value.unreadable.length;
    discover.push(d.ms);
    const q = await time(() =>
      discovery.queryBackups({
        tags: ['weekly'],
        searchTerm: 'nightly-3',
        statuses: ['Completed'],
        sortBy: 'createdAt',
        sortDirection: 'desc',
        take: 20,
      }),
    );
    matched = q.value.totalCount;
    query.push(q.ms);
  }
  await context.close();
  return { listed, unreadable, matched, discover, query, peakRssMB: process.resourceUsage().maxRSS / 1024 };
}

function inChild(phase, config) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--phase', phase, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`${phase} exited ${code}`)),
    );
  });
}

// ---------- parent: servers ----------
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child) {
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    const ok = await new Promise((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server on ${port} did not start`);
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

async function startS3rver(dir) {
  // s3rver needs --openssl-legacy-provider for paged ListObjectsV2 (see /work/shared/DEPENDENCIES.md).
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', join(repo, 'packages/storage-s3/test/s3rver-child.cjs'), dir, 'catalog'],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (l) => resolve(JSON.parse(l).port));
    child.once('exit', (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  return {
    profile: {
      provider: 's3',
      settings: {
        bucket: 'catalog',
        endpoint: `http://127.0.0.1:${port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        accessKeyId: 'S3RVER',
        secretAccessKey: 'S3RVER',
        conditionalPut: false, // s3rver ignores If-None-Match
        multipartManagement: false, // s3rver lacks ListMultipartUploads / AbortMultipartUpload
      },
    },
    stop: () => {
      child.stdin.end();
      return stopChild(child);
    },
  };
}

async function startAzurite(dir) {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(repo, 'node_modules/azurite/dist/src/blob/main.js'),
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--location',
      dir,
      '--silent',
      '--disableTelemetry',
      '--skipApiVersionCheck',
    ],
    { stdio: 'ignore' },
  );
  await waitForPort(port, child);
  return {
    profile: {
      provider: 'azure-blob',
      settings: {
        connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
        containerName: 'catalog',
        createContainer: true,
      },
    },
    stop: () => stopChild(child),
  };
}

const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
function summarise(seeded, m) {
  const warm = m.discover.slice(1).sort((a, b) => a - b);
  const warmQ = m.query.slice(1).sort((a, b) => a - b);
  const med = (xs) => xs[Math.floor(xs.length / 2)] ?? Number.NaN;
  return {
    backups: m.listed,
    unreadable: m.unreadable,
    objectsInProfile: seeded.backups * 2,
    sidecarBytes: seeded.sidecarBytes,
    discoverAllBackups: {
      firstMs: round(m.discover[0]),
      medianMs: round(med(warm)),
      perSidecarMs: round(med(warm) / m.listed, 3),
    },
    queryBackups: {
      matched: m.matched,
      firstMs: round(m.query[0]),
      medianMs: round(med(warmQ)),
      perSidecarMs: round(med(warmQ) / m.listed, 3),
    },
    peakRssMB: round(m.peakRssMB),
  };
}

async function main() {
  const work = await mkdtemp(join(tmpdir(), 'koan-bench-catalog-'));
  const servers = [];
  const result = { backups: N, runs: RUNS, node: process.version, cpus: (await import('node:os')).cpus().length };
  try {
    for (const [name, start] of [
      ['s3', startS3rver],
      ['azure', startAzurite],
    ]) {
      const dir = await mkdtemp(join(work, `${name}-`));
      const server = await start(dir);
      servers.push(server);
      const config = { name, profile: server.profile, cwd: work };
      const t0 = process.hrtime.bigint();
      const seeded = await inChild('seed', config);
      const seedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const measured = await inChild('measure', config);
      result[name] = {
        server: name === 's3' ? 's3rver 3.7.1 (loopback)' : 'azurite 3.35 blob (loopback)',
        seedSeconds: round(seedSeconds, 2),
        ...summarise(seeded, measured),
      };
      await server.stop();
      servers.pop();
      await rm(dir, { recursive: true, force: true });
    }
    console.log(JSON.stringify(result, null, 2));
  } finally {
    for (const s of servers) await s.stop();
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--phase') {
  const [phase, config] = [process.argv[3], JSON.parse(process.argv[4])];
  (phase === 'seed' ? seed(config) : measureCatalog(config)).then(
    (r) => console.log(JSON.stringify(r)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

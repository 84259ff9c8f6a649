#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { phaseInChild, startAzurite, startS3rver } from './_servers.mjs';

const self = fileURLToPath(import.meta.url);
const N = Number(process.env.BENCH_CATALOG_BACKUPS ?? 1000);
const RUNS = Number(process.env.BENCH_CATALOG_RUNS ?? 3);

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
  const { backupEntity } = await import('@koan/data-backup');
  const { readSidecar } = await import('@koan/data-backup/catalog');
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
    for (const [name, provider, start] of [
      ['s3', 's3', startS3rver],
      ['azure', 'azure-blob', startAzurite],
    ]) {
      const dir = await mkdtemp(join(work, `${name}-`));
      const server = await start(dir, 'catalog');
      servers.push(server);
      const config = { name, profile: { provider, settings: server.settings }, cwd: work };
      const t0 = process.hrtime.bigint();
      const seeded = await phaseInChild(self, 'seed', config);
      const seedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const measured = await phaseInChild(self, 'measure', config);
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

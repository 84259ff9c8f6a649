#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { phaseInChild, startAzurite, startS3rver } from './_servers.mjs';

const self = fileURLToPath(import.meta.url);

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
// One directory per run, so two runs (or a run and a stale one) never share files.
const work = join(repo, 'bench', '.work', `storage-${process.pid}`);
const MiB = 1024 * 1024;
const BYTES = Number(process.env.BENCH_STORAGE_BYTES ?? 2 * 1024 * MiB);
const SMALL = Number(process.env.BENCH_STORAGE_SMALL ?? 1000);

// ---------- child: one measured phase ----------
async function runPhase(phase, config) {
  const started = process.hrtime.bigint();
  let bytes = 0;
  const extra = {};
  const driver = async () => {
    if (config.kind === 's3') {
      const { createS3Storage } = await import('@koan/storage-s3');
      return createS3Storage({ ...config.settings, profile: 'bench-s3' });
    }
    const { createAzureBlobStorage } = await import('@koan/storage-azure');
    return createAzureBlobStorage({ ...config.settings, profile: 'bench-azure' });
  };
  if (phase === 'fs-copyFile') {
    await copyFile(config.file, `${config.file}.copy`);
    bytes = (await stat(config.file)).size;
    await rm(`${config.file}.copy`, { force: true });
  } else if (phase === 'fs-stream') {
    await pipeline(createReadStream(config.file), createWriteStream(`${config.file}.copy`));
    bytes = (await stat(config.file)).size;
    await rm(`${config.file}.copy`, { force: true });
  } else if (phase === 'upload') {
    const d = await driver();
    const info = await d.put('bench/large.bin', createReadStream(config.file));
    bytes = info.size;
    await d.close?.();
  } else if (phase === 'download') {
    const d = await driver();
    const body = await d.get('bench/large.bin');
    body.on('data', (c) => {
      bytes += c.length;
    });
    await pipeline(body, createWriteStream('/dev/null'));
    await d.close?.();
  } else if (phase === 'put-small') {
    const d = await driver();
    const payload = randomBytes(2048);
    let next = 0;
    const worker = async () => {
      while (next < config.count) {
        const i = next++;
        await d.put(`sidecars/${String(i).padStart(6, '0')}.json`, [payload]);
        bytes += payload.length;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await d.close?.();
  } else if (phase === 'list-small') {
    const d = await driver();
    let n = 0;
    for await (const o of d.list('sidecars/')) {
      n++;
      bytes += o.size;
    }
    extra.objects = n;
    await d.close?.();
  } else throw new Error(`unknown phase ${phase}`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { phase, seconds, bytes, peakRssMB: process.resourceUsage().maxRSS / 1024, ...extra };
}

async function generate(file, bytes) {
  const block = randomBytes(4 * MiB);
  const out = createWriteStream(file);
  async function* chunks() {
    for (let left = bytes, i = 0; left > 0; left -= block.length, i++) {
      block.writeUInt32LE(i, 0); // vary each block a little; bounded memory either way
      yield left >= block.length ? block : block.subarray(0, left);
    }
  }
  await pipeline(chunks(), out);
}

const mbps = (r) => Math.round((r.bytes / MiB / r.seconds) * 10) / 10;
const summarise = (r) => ({
  seconds: Math.round(r.seconds * 100) / 100,
  MBps: mbps(r),
  peakRssMB: Math.round(r.peakRssMB),
  ...(r.objects !== undefined ? { objects: r.objects } : {}),
});

async function main() {
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const file = join(work, 'large.bin');
  const servers = [];
  try {
    const g0 = process.hrtime.bigint();
    await generate(file, BYTES);
    const generateSeconds = Number(process.hrtime.bigint() - g0) / 1e9;
    const result = {
      bytes: BYTES,
      smallObjects: SMALL,
      node: process.version,
      generateSeconds: Math.round(generateSeconds * 100) / 100,
      baseline: {
        copyFile: summarise(await phaseInChild(self, 'fs-copyFile', { file })),
        streamCopy: summarise(await phaseInChild(self, 'fs-stream', { file })),
      },
    };
    const s3 = await startS3rver(join(work, 's3rver'), 'bench');
    servers.push(s3);
    const s3cfg = { kind: 's3', settings: s3.settings, file, count: SMALL };
    result.s3 = {
      server: 's3rver 3.7.1 (child process, loopback)',
      upload: summarise(await phaseInChild(self, 'upload', s3cfg)),
      download: summarise(await phaseInChild(self, 'download', s3cfg)),
      putSmall: summarise(await phaseInChild(self, 'put-small', s3cfg)),
      list: summarise(await phaseInChild(self, 'list-small', s3cfg)),
    };
    await s3.stop();
    await rm(join(work, 's3rver'), { recursive: true, force: true });
    const az = await startAzurite(join(work, 'azurite'), 'bench');
    servers.push(az);
    const azcfg = { kind: 'azure', settings: az.settings, file, count: SMALL };
    result.azure = {
      server: 'azurite 3.35 blob (child process, loopback)',
      upload: summarise(await phaseInChild(self, 'upload', azcfg)),
      download: summarise(await phaseInChild(self, 'download', azcfg)),
      putSmall: summarise(await phaseInChild(self, 'put-small', azcfg)),
      list: summarise(await phaseInChild(self, 'list-small', azcfg)),
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    for (const s of servers) await s.stop();
    if (!process.env.BENCH_STORAGE_KEEP) await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--phase') {
  runPhase(process.argv[3], JSON.parse(process.argv[4])).then(
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

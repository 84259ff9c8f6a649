// Throughput of the archive layer: node bench/archive.mjs [MB=300] [levels=1,6]
// Needs a build (npx tsc -b packages/data-backup). Writes one temp archive under os.tmpdir().
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileSource, hashEntry, ZipReader, ZipWriter } from '../packages/data-backup/dist/archive/index.js';

const targetMB = Number(process.argv[2] ?? 300);
const levels = (process.argv[3] ?? '1,6').split(',').map(Number);
const targetBytes = targetMB * 1e6;

// A pool of distinct rows, larger than deflate's 32 KiB window, so compression sees JSON-like entropy.
const first = ['Ada', 'Grace', 'Linus', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances', 'Edsger', 'Radia'];
const pool = Array.from({ length: 20_000 }, (_, i) =>
  JSON.stringify({
    Id: randomBytes(16)
      .toString('hex')
      .replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'),
    Name: `${first[i % first.length]} ${randomBytes(4).toString('base64url')}`,
    Email: `user${i}@example.com`,
    Age: (i * 7919) % 90,
    Balance: Math.round(Math.random() * 1e8) / 100,
    Active: i % 3 === 0,
    CreatedAt: new Date(1.6e12 + i * 86_400_123).toISOString(),
    Tags: ['alpha', 'beta', 'gamma'].slice(0, i % 4),
  }),
);

async function* rows() {
  let bytes = 0;
  for (let i = 0; bytes < targetBytes; i++) {
    const line = pool[i % pool.length] + '\n';
    bytes += line.length;
    yield line;
  }
}

const nullSink = () =>
  new Writable({
    highWaterMark: 1024 * 1024,
    write(_c, _e, cb) {
      cb();
    },
  });

const mb = (n) => (n / 1e6).toFixed(1);
const rate = (bytes, ms) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
// CPU time (main thread + zlib pool) is steadier than wall time on a shared machine.
const cpuSince = (start) => {
  const u = process.cpuUsage(start);
  return `cpu ${((u.user + u.system) / 1e6).toFixed(2)} s`;
};

for (const level of levels) {
  const zip = new ZipWriter({ level });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const sink = pipeline(zip.output, nullSink());
  const s = await zip.addEntry('entities/Bench.jsonl', rows());
  const f = await zip.finish();
  await sink;
  const ms = performance.now() - t0;
  console.log(
    `write level ${level}: ${mb(s.uncompressedBytes)} MB -> ${mb(f.bytes)} MB (ratio ${(s.uncompressedBytes / s.compressedBytes).toFixed(2)}x) in ${ms.toFixed(0)} ms = ${rate(s.uncompressedBytes, ms)}, ${cpuSince(c0)}, ${s.lines} lines`,
  );
}

const file = join(tmpdir(), `koan-bench-${process.pid}.zip`);
try {
  const zip = new ZipWriter({ level: 1 });
  const sink = pipeline(zip.output, createWriteStream(file));
  let t0 = performance.now();
  const s = await zip.addEntry('entities/Bench.jsonl', rows());
  await zip.finish();
  await sink;
  console.log(
    `write level 1 to file: ${rate(s.uncompressedBytes, performance.now() - t0)} (${mb((await stat(file)).size)} MB)`,
  );

  const reader = await ZipReader.open(await fileSource(file));
  t0 = performance.now();
  let c0 = process.cpuUsage();
  const h = await hashEntry(reader, 'entities/Bench.jsonl');
  console.log(`hashEntry: ${rate(h.bytes, performance.now() - t0)}, ${cpuSince(c0)}`);

  t0 = performance.now();
  c0 = process.cpuUsage();
  let n = 0;
  let done;
  for await (const b of reader.lines('entities/Bench.jsonl', { onDone: (r) => (done = r) })) n += b.lines.length;
  const ms = performance.now() - t0;
  console.log(`lines(): ${n} lines, ${rate(done.bytes, ms)}, ${cpuSince(c0)}, sha ok: ${done.sha256 === s.sha256}`);

  t0 = performance.now();
  c0 = process.cpuUsage();
  let parsed = 0;
  for await (const b of reader.lines('entities/Bench.jsonl'))
    for (const l of b.lines) parsed += JSON.parse(l).Age >= 0 ? 1 : 0;
  console.log(`lines() + JSON.parse: ${rate(done.bytes, performance.now() - t0)} (${parsed} rows), ${cpuSince(c0)}`);
  await reader.close();
} finally {
  await rm(file, { force: true });
}

// Helpers shared by the object-storage benches (storage.mjs, catalog.mjs): a measured phase in a child process,
// and s3rver / azurite started on 127.0.0.1 from the repository's own node_modules.
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Runs `script --phase <phase> <config JSON>` in a child process; resolves with the last line it prints, as JSON. */
export function phaseInChild(script, phase, config) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--phase', phase, JSON.stringify(config)], {
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

/** s3rver with `bucket`, storing in `dir`; `settings` are the S3 driver's. */
export async function startS3rver(dir, bucket) {
  await mkdir(dir, { recursive: true });
  // s3rver needs --openssl-legacy-provider for paged ListObjectsV2 (see /work/shared/DEPENDENCIES.md).
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', join(repo, 'packages/storage-s3/test/s3rver-child.cjs'), dir, bucket],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' } },
  );
  const port = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (l) => resolve(JSON.parse(l).port));
    child.once('exit', (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  return {
    child,
    settings: {
      bucket,
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      // s3rver has neither ListMultipartUploads / AbortMultipartUpload nor If-None-Match.
      multipartManagement: false,
      conditionalPut: false,
    },
    stop: () => {
      child.stdin.end();
      return stopChild(child);
    },
  };
}

/** azurite's blob service storing in `dir`; `settings` are the Azure driver's, for `container`. */
export async function startAzurite(dir, container) {
  await mkdir(dir, { recursive: true });
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
    child,
    settings: {
      connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${AZURITE_KEY};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
      containerName: container,
      createContainer: true,
    },
    stop: () => stopChild(child),
  };
}

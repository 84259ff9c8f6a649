import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface S3rverHandle {
  readonly endpoint: string;
  readonly port: number;
  readonly bucket: string;
  /** Client settings s3rver needs (see /work/shared/DEPENDENCIES.md). */
  readonly settings: {
    bucket: string;
    endpoint: string;
    region: string;
    forcePathStyle: true;
    accessKeyId: string;
    secretAccessKey: string;
  };
  stop(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Starts s3rver 3.7.1 in a child node process on 127.0.0.1 with an ephemeral port, a temp
 * directory and `bucket` created. The child runs with `--openssl-legacy-provider`, without which
 * s3rver answers paged ListObjectsV2 with 500.
 */
export async function startS3rver(bucket = 'koan-test'): Promise<S3rverHandle> {
  const directory = await mkdtemp(join(tmpdir(), 'koan-s3rver-'));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--openssl-legacy-provider', join(here, 's3rver-child.cjs'), directory, bucket],
    { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } },
  );
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(directory, { recursive: true, force: true });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! });
      lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${stderr}`)));
      setTimeout(() => reject(new Error(`s3rver did not start in 30 s: ${stderr}`)), 30_000).unref();
    });
    const endpoint = `http://127.0.0.1:${port}`;
    return {
      endpoint,
      port,
      bucket,
      settings: {
        bucket,
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        accessKeyId: 'S3RVER',
        secretAccessKey: 'S3RVER',
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteHandle {
  readonly port: number;
  readonly blobEndpoint: string;
  connectionString(blobEndpoint?: string): string;
  stop(): Promise<void>;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1');
  });
}

/**
 * Starts azurite's blob service (3.35, root node_modules) on 127.0.0.1 with a free port and a temp
 * location. `--skipApiVersionCheck` because storage-blob 12.29 may speak a newer API version.
 */
export async function startAzurite(): Promise<AzuriteHandle> {
  const location = await mkdtemp(join(tmpdir(), 'koan-azurite-'));
  let child: ChildProcess | undefined;
  let output = '';
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(location, { recursive: true, force: true });
  };
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      child = spawn(
        process.execPath,
        [
          join(root, 'node_modules/azurite/dist/src/blob/main.js'),
          '--blobHost',
          '127.0.0.1',
          '--blobPort',
          String(port),
          '--location',
          location,
          '--silent',
          '--disableTelemetry',
          '--skipApiVersionCheck',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout?.on('data', (d) => {
        output += String(d);
      });
      child.stderr?.on('data', (d) => {
        output += String(d);
      });
      for (let i = 0; i < 300 && child.exitCode === null; i++) {
        if (await canConnect(port)) {
          const blobEndpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
          return {
            port,
            blobEndpoint,
            connectionString: (endpoint = blobEndpoint) =>
              `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
            stop,
          };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await stop();
    }
    throw new Error(`azurite did not start: ${output}`);
  } catch (e) {
    await stop();
    throw e;
  }
}

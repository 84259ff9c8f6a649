/** Storage profiles that cannot be reached, for tests of what callers do when a backend is down. */
import { createServer } from 'node:net';

/** A loopback port nothing listens on: bound, then released, so connecting is refused at once. */
export async function closedLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A loopback endpoint that accepts connections and never answers (a "black hole": a stuck proxy, say). */
export interface BlackHole {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: () => number;
  /** Closes the server and every connection it holds. */
  stop(): Promise<void>;
}

/**
 * A server on a loopback port that accepts every connection, reads what is sent and never sends a byte back: a
 * request to it waits until a timeout of the client gives up (without one, forever).
 */
export async function startBlackHole(): Promise<BlackHole> {
  const sockets = new Set<import('node:net').Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    connections: () => accepted,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** No retries and no waits: an unreachable profile fails at once instead of after the retry schedule. */
const FAST_FAIL = { maxRetries: 0, retryBaseDelayMs: 1, retryMaxDelayMs: 1 } as const;

/** Settings of an S3 profile whose endpoint is `port` on loopback (see {@link closedLoopbackPort}). */
export function unreachableS3Settings(port: number): Record<string, unknown> {
  return {
    bucket: 'backups',
    endpoint: `http://127.0.0.1:${port}`,
    forcePathStyle: true,
    region: 'us-east-1',
    accessKeyId: 'test',
    secretAccessKey: 'test',
    ...FAST_FAIL,
  };
}

/** Settings of an Azure Blob profile whose endpoint is `port` on loopback. */
export function unreachableAzureSettings(port: number): Record<string, unknown> {
  const key = Buffer.from('k'.repeat(64)).toString('base64');
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${key};BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
    containerName: 'backups',
    ...FAST_FAIL,
  };
}

/**
 * Each request is retried by one layer, never by two: reads and deletes by `withRetry` (on an SDK client that does
 * not retry), writes and upload cleanup by the SDK (which `withRetry` passes through). A proxy in front of s3rver and
 * azurite answers 503 to the requests a test picks and counts them: with MaxRetries 2, an operation that keeps
 * failing reaches the server exactly 3 times. (Before, aborting an upload was retried by both: 3 × 3 = 9 requests.)
 */
import type { StorageDriver } from '@koan/storage';
import { createAzureBlobStorage } from '@koan/storage-azure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite } from '../../storage-azure/test/azurite-harness.js';
import { createS3Storage } from '../src/index.js';
import { type FaultProxy, type ProxyRequest, startFaultProxy } from './fault-proxy.js';
import { startS3rver } from './s3rver-harness.js';

const MAX_RETRIES = 2;

interface Backend {
  readonly name: string;
  /** What each request is, for counting: `head`, `list`, `put`, `commit` (Azure block list), `abort-upload`. */
  readonly kind: (req: ProxyRequest) => string;
  start(target: (endpoint: string) => Promise<FaultProxy>): Promise<{ driver: StorageDriver; stop(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 's3 (s3rver)',
    kind: (req) =>
      req.method === 'HEAD'
        ? 'head'
        : req.method === 'GET' && req.url.includes('list-type')
          ? 'list'
          : req.method === 'DELETE' && req.url.includes('uploadId=')
            ? 'abort-upload'
            : req.method === 'PUT'
              ? 'put'
              : req.method,
    async start(proxyTo) {
      const server = await startS3rver('retry-once');
      const proxy = await proxyTo(server.endpoint);
      const driver = createS3Storage({
        ...server.settings,
        endpoint: proxy.url,
        profile: 'once-s3',
        conditionalPut: false,
        maxRetries: MAX_RETRIES,
        retryBaseDelayMs: 1,
        retryMaxDelayMs: 5,
      });
      return {
        driver,
        stop: async () => {
          await driver.close?.();
          await proxy.stop();
          await server.stop();
        },
      };
    },
  },
  {
    name: 'azure-blob (azurite)',
    kind: (req) =>
      req.method === 'HEAD'
        ? 'head'
        : req.method === 'GET' && req.url.includes('comp=list')
          ? 'list'
          : req.method === 'PUT' && req.url.includes('comp=blocklist')
            ? 'commit'
            : req.method,
    async start(proxyTo) {
      const server = await startAzurite();
      const proxy = await proxyTo(`http://127.0.0.1:${server.port}`);
      const setup = createAzureBlobStorage({
        connectionString: server.connectionString(),
        containerName: 'retry-once',
      });
      await setup.getInstance().createIfNotExists();
      const driver = createAzureBlobStorage({
        connectionString: server.connectionString(`${proxy.url}/devstoreaccount1`),
        containerName: 'retry-once',
        profile: 'once-azure',
        maxRetries: MAX_RETRIES,
        retryBaseDelayMs: 1,
        retryMaxDelayMs: 5,
      });
      return {
        driver,
        stop: async () => {
          await proxy.stop();
          await server.stop();
        },
      };
    },
  },
];

describe.each(backends)('one retry layer per request: $name', (backend) => {
  /** Requests of these kinds are answered 503 (`n` times, or always). */
  let failing: { kind: string; times: number } | undefined;
  const seen = new Map<string, number>();
  let env: Awaited<ReturnType<Backend['start']>>;

  beforeAll(async () => {
    env = await backend.start((target) =>
      startFaultProxy({
        target,
        schedule: (req) => {
          const kind = backend.kind(req);
          seen.set(kind, (seen.get(kind) ?? 0) + 1);
          if (failing?.kind !== kind || failing.times <= 0) return undefined;
          failing.times--;
          return '503';
        },
      }),
    );
  });
  afterAll(async () => env?.stop());

  /** Runs `fn` with requests of `kind` failing `times` times; returns how many requests of that kind were sent. */
  async function count(kind: string, times: number, fn: () => Promise<unknown>): Promise<number> {
    seen.clear();
    failing = { kind, times };
    try {
      await fn();
    } finally {
      failing = undefined;
    }
    return seen.get(kind) ?? 0;
  }
  const fails = (p: Promise<unknown>) => expect(p).rejects.toMatchObject({ code: 'TRANSIENT' });

  it('a read that fails once is retried once', async () => {
    expect(await count('head', 1, () => env.driver.head('nothing/here'))).toBe(2);
  });

  it('reads and listings that keep failing reach the server 1 + MaxRetries times', async () => {
    expect(await count('head', Number.POSITIVE_INFINITY, () => fails(env.driver.head('nothing/here')))).toBe(3);
    const listing = async () => {
      for await (const _ of env.driver.list('nothing/')) {
        /* nothing */
      }
    };
    expect(await count('list', Number.POSITIVE_INFINITY, () => fails(listing()))).toBe(3);
  });

  it('a put whose requests keep failing is retried by the SDK alone: 1 + MaxRetries requests', async () => {
    const kind = backend.name.startsWith('s3') ? 'put' : 'commit';
    const put = () => fails(env.driver.put('once/put.txt', [Buffer.from('x')]));
    expect(await count(kind, Number.POSITIVE_INFINITY, put)).toBe(3);
  });

  it('aborting an incomplete upload that keeps failing: 1 + MaxRetries requests, not (1 + MaxRetries)²', async () => {
    const kind = backend.name.startsWith('s3') ? 'abort-upload' : 'commit';
    const upload = {
      key: 'once/left.bin',
      startedAt: new Date(0),
      handle: backend.name.startsWith('s3') ? 'u-1' : 'x',
    };
    expect(await count(kind, Number.POSITIVE_INFINITY, () => fails(env.driver.abortIncomplete!(upload)))).toBe(3);
  });
});

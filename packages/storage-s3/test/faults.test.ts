/**
 * Fault injection: a proxy in front of s3rver and azurite answers 503, resets connections and cuts
 * response bodies on a deterministic schedule. Puts must succeed after retries or fail with a
 * StorageError, nothing partial may ever be listed or head-visible, and a cut download must error
 * (or resume to the exact bytes), never end short. The counts are printed for the notes.
 */
import type { StorageDriver } from '@koan/storage';
import { StorageError } from '@koan/storage';
import { digest, patternBody } from '@koan/storage/testing';
import { createAzureBlobStorage } from '@koan/storage-azure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite } from '../../storage-azure/test/azurite-harness.js';
import { createS3Storage } from '../src/index.js';
import { type Fault, type FaultProxy, type ProxyRequest, startFaultProxy } from './fault-proxy.js';
import { startS3rver } from './s3rver-harness.js';

const MiB = 1024 * 1024;
const KINDS: Fault[] = ['503', 'reset', 'truncate'];
type Mode = 'off' | 'flaky' | 'outage' | 'truncate-gets';

interface Backend {
  name: string;
  start(proxyTarget: (target: string) => Promise<FaultProxy>): Promise<{
    driver: (maxRetries?: number) => StorageDriver;
    stop: () => Promise<void>;
  }>;
}

const backends: Backend[] = [
  {
    name: 's3 (s3rver)',
    async start(proxyTo) {
      const server = await startS3rver('faults');
      const proxy = await proxyTo(server.endpoint);
      return {
        driver: (maxRetries = 3) =>
          createS3Storage({
            ...server.settings,
            endpoint: proxy.url,
            profile: 'faulty-s3',
            partSizeBytes: 5 * MiB,
            conditionalPut: false,
            multipartManagement: false,
            maxRetries,
            retryBaseDelayMs: 5,
          }),
        stop: async () => {
          await proxy.stop();
          await server.stop();
        },
      };
    },
  },
  {
    name: 'azure-blob (azurite)',
    async start(proxyTo) {
      const server = await startAzurite();
      const proxy = await proxyTo(`http://127.0.0.1:${server.port}`);
      const setup = createAzureBlobStorage({ connectionString: server.connectionString(), containerName: 'faults' });
      await setup.getInstance().createIfNotExists();
      return {
        driver: (maxRetries = 3) =>
          createAzureBlobStorage({
            connectionString: server.connectionString(`${proxy.url}/devstoreaccount1`),
            containerName: 'faults',
            profile: 'faulty-azure',
            blockSizeBytes: 4 * MiB,
            maxRetries,
            retryBaseDelayMs: 5,
            retryMaxDelayMs: 50,
          }),
        stop: async () => {
          await proxy.stop();
          await server.stop();
        },
      };
    },
  },
];

const totals = { faultsInjected: 0, retriedToSuccess: 0, failedCleanly: 0, failedUncleanly: 0, partialVisible: 0 };

describe.each(backends)('fault injection: $name', (backend) => {
  let mode: Mode = 'off';
  let faultNo = 0;
  const truncatedOnce = new Set<string>();
  const schedule = (req: ProxyRequest): Fault | undefined => {
    if (mode === 'flaky' && req.n % 3 === 1) return KINDS[faultNo++ % KINDS.length];
    if (mode === 'outage') return req.n % 2 ? '503' : 'reset';
    if (
      mode === 'truncate-gets' &&
      req.method === 'GET' &&
      !req.url.includes('comp=list') &&
      !req.url.includes('list-type')
    ) {
      // Cut the first GET of each URL; the resumed (ranged) request then goes through.
      const id = req.url;
      if (!truncatedOnce.has(id)) {
        truncatedOnce.add(id);
        return 'truncate';
      }
    }
    return undefined;
  };
  let proxy: FaultProxy;
  let env: Awaited<ReturnType<Backend['start']>>;
  const stats = { faultsInjected: 0, retriedToSuccess: 0, failedCleanly: 0, failedUncleanly: 0, partialVisible: 0 };
  const expected = new Map<string, string>();
  const failedKeys = new Set<string>();
  const injected = () => proxy.counts['503'] + proxy.counts.reset + proxy.counts.truncate;

  /** Runs one operation, attributing the faults injected meanwhile to it. */
  async function op(fn: () => Promise<void>, onFail?: () => void): Promise<boolean> {
    const before = injected();
    try {
      await fn();
      if (injected() > before) stats.retriedToSuccess++;
      return true;
    } catch (e) {
      if (e instanceof StorageError) stats.failedCleanly++;
      else {
        stats.failedUncleanly++;
        console.error('unclean failure', e);
      }
      onFail?.();
      return false;
    }
  }

  beforeAll(async () => {
    env = await backend.start(async (target) => {
      proxy = await startFaultProxy({ target, schedule });
      return proxy;
    });
  });
  afterAll(async () => {
    stats.faultsInjected = injected();
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += stats[k];
    console.log(`[fault injection] ${backend.name}: ${JSON.stringify(stats)}`);
    await env?.stop();
  });

  it('puts and gets through a flaky link: succeed after retries or fail with a StorageError', async () => {
    const driver = env.driver();
    mode = 'flaky';
    const sizes = [0, 1024, 3 * MiB, 6 * MiB + 1, 11 * MiB, 2048, 9 * MiB, 100];
    for (const [i, size] of sizes.entries()) {
      const key = `flaky/obj-${i}`;
      const ok = await op(
        async () => {
          await driver.put(key, patternBody(size));
        },
        () => failedKeys.add(key),
      );
      if (ok) expected.set(key, (await digest(patternBody(size))).sha256);
    }
    for (const [key, sha] of expected) {
      await op(async () => {
        const got = await digest(await driver.get(key));
        expect(got.sha256).toBe(sha);
      });
    }
    await op(async () => {
      for await (const _ of driver.list('flaky/', { pageSize: 3 }));
    });
    mode = 'off';
    expect(stats.failedUncleanly).toBe(0);
    expect(stats.retriedToSuccess).toBeGreaterThan(0);
  });

  it('fails cleanly during an outage and publishes nothing', async () => {
    const driver = env.driver(2);
    mode = 'outage';
    for (const [i, size] of [100, 7 * MiB].entries()) {
      const key = `outage/obj-${i}`;
      const ok = await op(
        async () => {
          await driver.put(key, patternBody(size));
        },
        () => failedKeys.add(key),
      );
      expect(ok).toBe(false);
    }
    expect(await op(async () => void (await driver.get('flaky/obj-1')))).toBe(false);
    mode = 'off';
    expect(stats.failedUncleanly).toBe(0);
  });

  it('never lets a cut download look complete', async () => {
    const key = 'truncate/big.bin';
    const size = 3 * MiB + 7;
    const sha = (await digest(patternBody(size))).sha256;
    await env.driver().put(key, patternBody(size));
    expected.set(key, sha);
    mode = 'truncate-gets';
    // No retries: the cut body must surface as an error, not as a short stream.
    truncatedOnce.clear();
    let detected = false;
    try {
      const got = await digest(await env.driver(0).get(key));
      expect(got.sha256).toBe(sha);
    } catch (e) {
      expect(e).toBeInstanceOf(StorageError);
      detected = true;
      stats.failedCleanly++;
    }
    expect(detected).toBe(true);
    // With retries: the driver (or SDK) resumes with a ranged request and the bytes are exact.
    truncatedOnce.clear();
    const before = injected();
    const resumed = await digest(await env.driver(3).get(key));
    expect(resumed).toEqual({ sha256: sha, size });
    expect(injected()).toBeGreaterThan(before);
    stats.retriedToSuccess++;
    truncatedOnce.clear();
    const ranged = await digest(await env.driver(3).get(key, { range: { start: MiB, end: 2 * MiB - 1 } }));
    expect(ranged.size).toBe(MiB);
    mode = 'off';
  });

  it('shows no partial object: every listed or head-visible key is a complete, successful put', async () => {
    mode = 'off';
    const driver = env.driver();
    const listed = new Set<string>();
    for await (const o of driver.list('')) {
      listed.add(o.key);
      const want = expected.get(o.key);
      if (!want || (await digest(await driver.get(o.key))).sha256 !== want) stats.partialVisible++;
    }
    for (const key of failedKeys) if (listed.has(key) || (await driver.head(key))) stats.partialVisible++;
    expect(stats.partialVisible).toBe(0);
  });
});

afterAll(() => {
  console.log(`[fault injection] total: ${JSON.stringify(totals)}`);
});

/**
 * Defect P6 for Azure: a Blob endpoint that accepts connections and never answers (a black hole) held list and head
 * forever (the SDK's own `tryTimeoutInMs` only asks the server to give up). With `RequestTimeoutMs` they fail with a
 * TRANSIENT error naming the profile and the setting. No timing is asserted: the operations finish (before the fix
 * they never did, and vitest's test timeout failed them).
 */
import { StorageError, StorageProfiles } from '@koan/storage';
import { type BlackHole, closedLoopbackPort, startBlackHole, unreachableAzureSettings } from '@koan/storage/testing';
import { createAzureBlobStorage } from '@koan/storage-azure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let hole: BlackHole;
let profiles: StorageProfiles;

beforeAll(async () => {
  hole = await startBlackHole();
  profiles = await StorageProfiles.load({
    profiles: {
      silent: { provider: 'azure-blob', settings: { ...unreachableAzureSettings(hole.port), requestTimeoutMs: 200 } },
      retried: {
        provider: 'azure-blob',
        settings: { ...unreachableAzureSettings(hole.port), requestTimeoutMs: 100, maxRetries: 2 },
      },
    },
    defaultProfile: 'silent',
  });
});
afterAll(async () => {
  await profiles?.close();
  await hole?.stop();
});

async function failure(p: Promise<unknown>): Promise<StorageError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(StorageError);
  return e as StorageError;
}

const timedOut = (profile: string) => ({
  code: 'TRANSIENT',
  profile,
  message: expect.stringMatching(
    new RegExp(
      `timed out: no answer for \\d+ ms .*Koan\\.Storage\\.Profiles\\.${profile}\\.Settings\\.RequestTimeoutMs`,
    ),
  ),
});

describe('azure-blob: an endpoint that accepts connections and never answers', () => {
  it('a listing fails with TRANSIENT naming the profile and RequestTimeoutMs', async () => {
    const listing = (async () => {
      for await (const _ of profiles.get('silent').list('')) {
        /* nothing arrives */
      }
    })();
    expect(await failure(listing)).toMatchObject(timedOut('silent'));
  });

  it('head, get, delete and put fail the same way', async () => {
    const driver = profiles.get('silent');
    expect(await failure(driver.head('a/b.zip'))).toMatchObject({ ...timedOut('silent'), key: 'a/b.zip' });
    expect(await failure(driver.get('a/b.zip'))).toMatchObject(timedOut('silent'));
    expect(await failure(driver.delete('a/b.zip'))).toMatchObject(timedOut('silent'));
    expect(await failure(driver.put('a/b.zip', [Buffer.from('x')]))).toMatchObject(timedOut('silent'));
  });

  it('a timeout is transient: each attempt waits its own timeout, then the error says so', async () => {
    const before = hole.connections();
    expect(await failure(profiles.get('retried').head('x'))).toMatchObject(timedOut('retried'));
    // 1 + MaxRetries attempts, each on a connection of its own (a timed-out connection is not reused).
    expect(hole.connections() - before).toBe(3);
  });
});

describe('azure-blob behind a proxy from the environment', () => {
  it('keeps the proxy (the SDK uses it only without an agent of ours) and warns that the timeouts do not apply', async () => {
    const before = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = `http://127.0.0.1:${hole.port}`;
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const dead = await closedLoopbackPort();
      const { connectionString } = unreachableAzureSettings(dead) as { connectionString: string };
      const driver = createAzureBlobStorage({ connectionString, containerName: 'c1x', profile: 'proxied' });
      // The request goes to the proxy (here the black hole), not to the closed endpoint.
      const connections = hole.connections();
      const controller = new AbortController();
      let settled = false;
      const head = driver.head('x', { signal: controller.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      void head.finally(() => {
        settled = true;
      });
      while (hole.connections() === connections && !settled) await new Promise((r) => setTimeout(r, 10));
      expect(hole.connections()).toBeGreaterThan(connections);
      controller.abort(new Error('done'));
      expect(await head).toMatchObject({ code: 'ABORTED' });
    } finally {
      process.off('warning', onWarning);
      if (before === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = before;
    }
    expect(warnings).toEqual([
      expect.objectContaining({
        code: 'KOAN_STORAGE_PROXY_TIMEOUTS',
        message: expect.stringMatching(
          /profile 'proxied' goes through the proxy in HTTPS_PROXY: its ConnectionTimeoutMs/,
        ),
      }),
    ]);
  });
});

/**
 * Defect P6: an S3 endpoint that accepts connections and never answers (a black hole) held list and head forever.
 * With `RequestTimeoutMs` they fail with a TRANSIENT error naming the profile and the setting. No timing is asserted:
 * the operations finish (before the fix they never did, and vitest's test timeout failed them).
 */
import { StorageError, StorageProfiles } from '@koan/storage';
import { type BlackHole, startBlackHole, unreachableS3Settings } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let hole: BlackHole;
let profiles: StorageProfiles;

beforeAll(async () => {
  hole = await startBlackHole();
  profiles = await StorageProfiles.load({
    profiles: {
      silent: { provider: 's3', settings: { ...unreachableS3Settings(hole.port), requestTimeoutMs: 200 } },
      retried: {
        provider: 's3',
        settings: { ...unreachableS3Settings(hole.port), requestTimeoutMs: 100, maxRetries: 2 },
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

describe('s3: an endpoint that accepts connections and never answers', () => {
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

import { StorageProfiles } from '@koan/storage';
import { describeStorageConformance, patternBody, readAll } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Storage, type S3Storage } from '../src/index.js';
import { type S3rverHandle, startS3rver } from './s3rver-harness.js';

const MiB = 1024 * 1024;
let server: S3rverHandle;

describeStorageConformance({
  name: 's3 (s3rver)',
  create: async () => {
    server = await startS3rver();
    // s3rver ignores If-None-Match and answers ListMultipartUploads/AbortMultipartUpload with
    // 501/405, so those two capabilities are off here; they are tested against a fake in
    // s3-multipart.test.ts. Real S3 has both (the defaults).
    return createS3Storage({
      ...server.settings,
      profile: 's3-test',
      prefix: 'pfx',
      partSizeBytes: 5 * MiB,
      conditionalPut: false,
      multipartManagement: false,
      retryBaseDelayMs: 10,
    });
  },
  destroy: async () => server?.stop(),
  largeBytes: 11 * MiB + 5,
  unorderedListing: "s3rver sorts 'a/b' before 'a-'; S3 lists in UTF-8 byte order",
  failAfterBytes: 6 * MiB,
  additionalTests: ({ driver, prefix }) => {
    it('stores keys under the configured prefix', async () => {
      const s3 = driver() as S3Storage;
      await s3.put(`${prefix}p.txt`, [Buffer.from('p')]);
      const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
      const r = await s3
        .getInstance()
        .send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: `pfx/${prefix}p.txt` }));
      expect(r.Contents?.map((c) => c.Key)).toEqual([`pfx/${prefix}p.txt`]);
    });

    it('falls back to a HEAD check for ifNoneMatch when the server cannot enforce it', async () => {
      await driver().put(`${prefix}cond.txt`, [Buffer.from('a')], { ifNoneMatch: true });
      await expect(driver().put(`${prefix}cond.txt`, [Buffer.from('b')], { ifNoneMatch: true })).rejects.toMatchObject({
        code: 'ALREADY_EXISTS',
      });
    });
  },
});

describe('s3 error mapping (s3rver)', () => {
  let s3rver: S3rverHandle;
  beforeAll(async () => {
    s3rver = await startS3rver('errors');
  });
  afterAll(async () => s3rver?.stop());

  it('maps a missing bucket to BUCKET_NOT_FOUND', async () => {
    const s3 = createS3Storage({ ...s3rver.settings, bucket: 'no-such-bucket', profile: 'p' });
    await expect(s3.put('k', patternBody(10))).rejects.toMatchObject({ code: 'BUCKET_NOT_FOUND', profile: 'p' });
    await s3.close?.();
  });

  it('maps bad credentials to ACCESS_DENIED without retrying', async () => {
    const s3 = createS3Storage({ ...s3rver.settings, accessKeyId: 'WRONG', profile: 'p', maxRetries: 5 });
    await expect(s3.head('k')).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    await expect(s3.put('k', patternBody(10))).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
    await s3.close?.();
  });

  it('is reachable through a storage profile', async () => {
    const profiles = await StorageProfiles.load({
      profiles: {
        'primary-backup': {
          provider: 's3',
          settings: {
            ...s3rver.settings,
            bucket: undefined,
            bucketName: s3rver.bucket,
            partSizeBytes: String(5 * MiB),
          },
        },
      },
    });
    const storage = profiles.get('primary-backup');
    await storage.put('via-profile.txt', [Buffer.from('ok')]);
    expect((await readAll(await storage.get('via-profile.txt'))).toString()).toBe('ok');
    await profiles.close();
  });

  it('rejects a part size below the S3 minimum with a CONFIG error naming the setting', async () => {
    await expect(
      StorageProfiles.load({
        profiles: { x: { provider: 's3', settings: { bucket: 'b', partSizeBytes: 1024 } } },
      }),
    ).rejects.toThrow(/Koan\.Storage\.Profiles\.x\.Settings\.PartSizeBytes/);
  });
});

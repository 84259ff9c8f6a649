/**
 * src/lib-storage.ts reads three private fields of lib-storage's `Upload` (there is no public way to learn them).
 * These tests run real uploads against s3rver and fail, naming the field, if an SDK bump renames or retypes one:
 * then fix src/lib-storage.ts before bumping the pin in package.json.
 */
import { Readable } from 'node:stream';
import { Upload } from '@aws-sdk/lib-storage';
import { patternBody } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Storage, type S3Storage } from '../src/index.js';
import { multipartUploadId, partUploads, singlePartResult } from '../src/lib-storage.js';
import { type S3rverHandle, startS3rver } from './s3rver-harness.js';

const MiB = 1024 * 1024;
let server: S3rverHandle;
let s3: S3Storage;

beforeAll(async () => {
  server = await startS3rver('lib-storage');
  s3 = createS3Storage({ ...server.settings, profile: 'lib-storage' });
});
afterAll(async () => {
  await s3?.close?.();
  await server?.stop();
});

const upload = (key: string, body: AsyncIterable<Uint8Array>) =>
  new Upload({
    client: s3.getInstance(),
    params: { Bucket: server.bucket, Key: key, Body: Readable.from(body, { objectMode: false }) },
    partSize: 5 * MiB,
    queueSize: 1,
  });

describe('the private fields of @aws-sdk/lib-storage Upload that src/lib-storage.ts reads', () => {
  it('singleUploadResult: a one-part upload keeps its PutObject answer there', async () => {
    const one = upload('one-part.bin', patternBody(1000));
    await one.done();
    expect(singlePartResult(one)?.ETag, 'Upload.singleUploadResult.ETag').toEqual(expect.any(String));
    expect(multipartUploadId(one), 'Upload.uploadId of a one-part upload').toBeUndefined();
  });

  it('uploadId and concurrentUploaders: a multipart upload in progress shows its id and its part uploads', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* body(): AsyncGenerator<Uint8Array> {
      yield* patternBody(5 * MiB + 1);
      await gate;
      yield* patternBody(MiB);
    }
    // The first UploadPart is sent once the multipart upload exists (and its id is kept).
    const client = s3.getInstance();
    const partSent = new Promise<string>((resolve) =>
      client.middlewareStack.add(
        (next, context) => (args) => {
          if (context.commandName === 'UploadPartCommand') resolve('part');
          return next(args);
        },
        { step: 'initialize', name: 'koanTestSeesUploadPart' },
      ),
    );
    const many = upload('multi-part.bin', body());
    const done = many.done();
    try {
      await Promise.race([partSent, done]);
      expect(multipartUploadId(many), 'Upload.uploadId (a string once the multipart upload exists)').toEqual(
        expect.any(String),
      );
      const uploads = partUploads(many);
      expect(uploads, 'Upload.concurrentUploaders (one per queueSize)').toHaveLength(1);
      expect(uploads[0], 'Upload.concurrentUploaders[0]').toBeInstanceOf(Promise);
      expect(singlePartResult(many), 'Upload.singleUploadResult of a multipart upload').toBeUndefined();
    } finally {
      release();
      await done;
      client.middlewareStack.remove('koanTestSeesUploadPart');
    }
  });
});

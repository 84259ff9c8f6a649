/**
 * Writes: `put` is a streaming multipart upload (lib-storage `Upload`) whose completion is the atomic publish, and the
 * uploads it leaves behind are listed and aborted here. Every request here goes through the client that retries
 * (the SDK's own retries, `MaxRetries`): `withRetry` does not retry these operations, so nothing is retried twice.
 */
import { addAbortSignal, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  abortError,
  type Body,
  type ErrorContext,
  type IncompleteUpload,
  type ListIncompleteOptions,
  type ObjectInfo,
  type PutOptions,
  StorageError,
  toReadable,
} from '@koan/storage';
import { isNoSuchKey, isNoSuchUpload } from './errors.js';
import { multipartUploadId, partUploads, singlePartResult } from './lib-storage.js';

const MiB = 1024 * 1024;

/** What the write path needs of the driver. */
export interface WriteContext {
  /** The client whose requests the SDK retries. */
  readonly client: S3Client;
  readonly bucket: string;
  readonly profile: string;
  readonly partSizeBytes?: number;
  readonly queueSize?: number;
  /** The server enforces `If-None-Match: *`; without it a HEAD check stands in (racy). */
  readonly conditionalPut: boolean;
  readonly map: (e: unknown, context: ErrorContext) => StorageError;
}

/**
 * Uploads `body` to `key`. If the body fails, the signal aborts or a request fails, the multipart upload is aborted
 * once its in-flight parts have settled; a cleanup that fails is named in the error (a lifecycle rule or
 * `listIncomplete` finds the upload).
 */
export async function putObject(ctx: WriteContext, key: string, body: Body, options: PutOptions): Promise<ObjectInfo> {
  const { signal } = options;
  const source = toReadable(body);
  if (options.ifNoneMatch && !ctx.conditionalPut && (await exists(ctx, key, signal))) {
    source.destroy();
    throw new StorageError('ALREADY_EXISTS', `[storage] [s3] ${JSON.stringify(key)} already exists`, {
      profile: ctx.profile,
      key,
    });
  }
  let size = 0;
  let bodyError: unknown;
  async function* counted(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of signal ? addAbortSignal(signal, source) : source) {
        size += (chunk as Uint8Array).byteLength;
        yield chunk as Uint8Array;
      }
    } catch (e) {
      bodyError = e;
      throw e;
    }
  }
  const abortController = new AbortController();
  const onAbort = () => abortController.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const upload = new Upload({
    client: ctx.client,
    params: {
      Bucket: ctx.bucket,
      Key: key,
      Body: Readable.from(counted(), { objectMode: false }),
      ContentType: options.contentType,
      IfNoneMatch: options.ifNoneMatch && ctx.conditionalPut ? '*' : undefined,
    },
    partSize: ctx.partSizeBytes ?? 8 * MiB,
    queueSize: ctx.queueSize ?? 1,
    leavePartsOnError: false,
    abortController,
  });
  try {
    const result = await upload.done();
    return { key, size, lastModified: new Date(), etag: result.ETag };
  } catch (e) {
    source.destroy();
    const cleanup = await abandon(ctx, upload, key);
    const single = singlePartResult(upload);
    if (single && bodyError === undefined) return { key, size, lastModified: new Date(), etag: single.ETag };
    if (signal?.aborted) throw abortError(signal, { profile: ctx.profile, key });
    const error =
      bodyError !== undefined
        ? new StorageError(
            'IO',
            `[storage] [s3] Reading the body for ${JSON.stringify(key)} failed: ${(bodyError as Error)?.message}`,
            { profile: ctx.profile, key, cause: bodyError },
          )
        : ctx.map(e, { key, action: 'Uploading' });
    if (cleanup) error.message += ` (${cleanup})`;
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

async function exists(ctx: WriteContext, key: string, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    await ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }), { abortSignal: signal });
    return true;
  } catch (e) {
    if (isNoSuchKey(e)) return false;
    throw e;
  }
}

/**
 * After a failed upload: let in-flight part requests settle (parts uploaded after an abort would linger), then make
 * sure AbortMultipartUpload was sent. Returns a note when that failed.
 */
async function abandon(ctx: WriteContext, upload: Upload, key: string): Promise<string | undefined> {
  await Promise.race([Promise.allSettled(partUploads(upload)), sleep(30_000, undefined, { ref: false })]);
  const UploadId = multipartUploadId(upload);
  if (!UploadId) return undefined;
  try {
    await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId }));
    return undefined;
  } catch (e) {
    if (isNoSuchUpload(e)) return undefined;
    return `aborting multipart upload ${UploadId} failed: ${(e as Error).message}; listIncomplete() reports it and a bucket lifecycle rule (AbortIncompleteMultipartUpload) expires it`;
  }
}

/** Open multipart uploads whose key starts with `options.prefix`, page by page. */
export async function* listUploads(
  ctx: WriteContext,
  options: ListIncompleteOptions = {},
): AsyncGenerator<IncompleteUpload> {
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const r = await ctx.client.send(
      new ListMultipartUploadsCommand({ Bucket: ctx.bucket, Prefix: options.prefix ?? '', KeyMarker, UploadIdMarker }),
      { abortSignal: options.signal },
    );
    for (const u of r.Uploads ?? [])
      if (u.Key && u.UploadId) yield { key: u.Key, startedAt: u.Initiated ?? new Date(0), handle: u.UploadId };
    if (!r.IsTruncated) return;
    if (r.NextKeyMarker === KeyMarker && r.NextUploadIdMarker === UploadIdMarker)
      throw new StorageError('IO', `[storage] [s3] Listing incomplete uploads: the server repeated its page markers`, {
        profile: ctx.profile,
      });
    KeyMarker = r.NextKeyMarker;
    UploadIdMarker = r.NextUploadIdMarker;
  }
}

/** Aborts one multipart upload; one that is already gone is fine. */
export async function abortUpload(ctx: WriteContext, upload: IncompleteUpload): Promise<void> {
  try {
    await ctx.client.send(
      new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: upload.key, UploadId: upload.handle }),
    );
  } catch (e) {
    if (!isNoSuchUpload(e)) throw e;
  }
}

/**
 * @koan/storage-s3: the S3 storage driver. `put` is a streaming multipart upload (lib-storage
 * `Upload`) whose completion is the atomic publish; `get` streams and resumes a cut body with a
 * ranged re-request pinned to the object's ETag.
 */

import { addAbortSignal, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  type ListMultipartUploadsCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  abortedError,
  assertKey,
  type Body,
  type BodyPart,
  type GetOptions,
  type IncompleteUpload,
  isTransientError,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  parseContentRange,
  parseSettings,
  resumableBody,
  type StorageDriver,
  StorageError,
  type StorageFlags,
  type StorageProvider,
  s3SettingsSchema,
  toReadable,
  withRetry,
} from '@koan/storage';

export const DRIVER_NAME = 's3';

const MiB = 1024 * 1024;

export interface S3StorageOptions {
  /** Bucket holding the objects (`bucketName` is accepted in settings, as in the .NET config). */
  readonly bucket: string;
  /** @default AWS_REGION, AWS_DEFAULT_REGION, then 'us-east-1' */
  readonly region?: string;
  /** S3-compatible endpoint (MinIO, s3rver, R2...). @default AWS */
  readonly endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`), needed by most S3-compatible servers. @default false */
  readonly forcePathStyle?: boolean;
  /** Static credentials; when absent the standard AWS chain (env, profile, SSO, IMDS...) is used. */
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  readonly sessionToken?: string;
  /** Key prefix inside the bucket, e.g. `backups/`. @default '' */
  readonly prefix?: string;
  /** Multipart part size; memory use per put is about `queueSize × partSizeBytes`. @default 8 MiB */
  readonly partSizeBytes?: number;
  /** Parts uploaded concurrently; raise it on high-latency links (memory ≈ (queueSize + 1) × partSizeBytes). @default 1 */
  readonly queueSize?: number;
  /** Retries after the first attempt, for SDK requests and for resuming a cut download. @default 3 */
  readonly maxRetries?: number;
  /** @default 100 */
  readonly retryBaseDelayMs?: number;
  /** @default 5000 */
  readonly retryMaxDelayMs?: number;
  /**
   * The server enforces `If-None-Match: *` on PutObject/CompleteMultipartUpload (AWS does since 2024).
   * When false, `ifNoneMatch` falls back to a HEAD check, which is racy. @default true
   */
  readonly conditionalPut?: boolean;
  /**
   * The server implements ListMultipartUploads/AbortMultipartUpload. s3rver does not. @default true
   */
  readonly multipartManagement?: boolean;
  /** Profile name used in errors. @default 's3' */
  readonly profile?: string;
  /** A ready client (tests, custom middleware); the connection settings above are then ignored. */
  readonly client?: S3Client;
}

/** An S3 driver, plus the SDK client for what the contract does not cover. */
export interface S3Storage extends StorageDriver {
  getInstance(): S3Client;
}

/** Settings of an `s3` profile (camelCase keys, strict); defined in @koan/storage for the config's JSON Schema. */
export { s3SettingsSchema };

export const provider: StorageProvider = {
  name: DRIVER_NAME,
  create(settings, { profile }) {
    const s = parseSettings(s3SettingsSchema, settings, { profile, provider: DRIVER_NAME });
    const { bucketName, ...rest } = s;
    return createS3Storage({ ...rest, bucket: (s.bucket ?? bucketName)!, profile });
  },
};

/**
 * @example
 * const storage = createS3Storage({ bucket: 'app-backups', region: 'us-west-2', prefix: 'prod/' });
 * await storage.put('daily/2024-12-17.zip', createReadStream('backup.zip'));
 */
export function createS3Storage(options: S3StorageOptions): S3Storage {
  if (!options.bucket) throw new StorageError('CONFIG', '[storage] [s3] Missing required option `bucket`.');
  return new S3ObjectStorage(options);
}

class S3ObjectStorage implements S3Storage {
  readonly provider = DRIVER_NAME;
  readonly flags: StorageFlags;
  readonly #o: S3StorageOptions;
  readonly #profile: string;
  readonly #base: string;
  readonly #retries: number;
  #client: S3Client | undefined;

  constructor(options: S3StorageOptions) {
    this.#o = options;
    this.#profile = options.profile ?? DRIVER_NAME;
    const p = options.prefix ?? '';
    this.#base = p && !p.endsWith('/') ? `${p}/` : p;
    this.#retries = options.maxRetries ?? 3;
    const mpu = options.multipartManagement ?? true;
    this.flags = Object.freeze({
      rangedReads: true,
      conditionalPut: options.conditionalPut ?? true,
      incompleteUploads: mpu,
    });
  }

  getInstance(): S3Client {
    if (this.#client) return this.#client;
    const o = this.#o;
    if (o.client) {
      this.#client = o.client;
      return o.client;
    }
    const config: S3ClientConfig = {
      region: o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      endpoint: o.endpoint,
      forcePathStyle: o.forcePathStyle ?? false,
      maxAttempts: this.#retries + 1,
      // Flexible checksums break S3-compatible servers (s3rver stored the aws-chunked framing).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
    };
    if (o.accessKeyId && o.secretAccessKey)
      config.credentials = {
        accessKeyId: o.accessKeyId,
        secretAccessKey: o.secretAccessKey,
        sessionToken: o.sessionToken,
      };
    this.#client = new S3Client(config);
    return this.#client;
  }

  async close(): Promise<void> {
    if (!this.#o.client) this.#client?.destroy();
    this.#client = undefined;
  }

  #key(key: string): string {
    assertKey(key, this.#profile);
    return this.#base + key;
  }

  #error(e: unknown, key: string | undefined, action: string, signal?: AbortSignal): StorageError {
    return mapS3Error(e, { profile: this.#profile, key, action, bucket: this.#o.bucket, signal });
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectInfo> {
    const Key = this.#key(key);
    const { signal } = options;
    const source = toReadable(body);
    if (signal?.aborted) {
      source.destroy();
      throw abortedError(signal, { profile: this.#profile, key });
    }
    if (options.ifNoneMatch && !this.flags.conditionalPut && (await this.head(key, { signal })))
      throw new StorageError('ALREADY_EXISTS', `[storage] [s3] ${JSON.stringify(key)} already exists`, {
        profile: this.#profile,
        key,
      });
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
      client: this.getInstance(),
      params: {
        Bucket: this.#o.bucket,
        Key,
        Body: Readable.from(counted(), { objectMode: false }),
        ContentType: options.contentType,
        IfNoneMatch: options.ifNoneMatch && this.flags.conditionalPut ? '*' : undefined,
      },
      partSize: this.#o.partSizeBytes ?? 8 * MiB,
      queueSize: this.#o.queueSize ?? 1,
      leavePartsOnError: false,
      abortController,
    });
    try {
      const result = await upload.done();
      return { key, size, lastModified: new Date(), etag: result.ETag };
    } catch (e) {
      source.destroy();
      const cleanup = await this.#abandon(upload);
      // lib-storage does not cancel a single-part PutObject in flight: if it landed, the object is
      // published and put has succeeded, late abort or not.
      const single = (upload as unknown as { singleUploadResult?: { ETag?: string } }).singleUploadResult;
      if (single && bodyError === undefined) return { key, size, lastModified: new Date(), etag: single.ETag };
      if (signal?.aborted) throw abortedError(signal, { profile: this.#profile, key });
      const cause = bodyError ?? e;
      const error =
        bodyError !== undefined
          ? new StorageError(
              'IO',
              `[storage] [s3] Reading the body for ${JSON.stringify(key)} failed: ${(cause as Error)?.message}`,
              {
                profile: this.#profile,
                key,
                cause,
              },
            )
          : this.#error(e, key, 'Uploading');
      if (cleanup) error.message += ` (${cleanup})`;
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * After a failed upload: let in-flight part requests settle (parts uploaded after an abort would
   * linger), then make sure AbortMultipartUpload was sent. Returns a note when cleanup failed.
   */
  async #abandon(upload: Upload): Promise<string | undefined> {
    const internals = upload as unknown as { concurrentUploaders?: Promise<unknown>[]; uploadId?: string };
    const uploaders = Promise.allSettled(internals.concurrentUploaders ?? []);
    await Promise.race([uploaders, sleep(30_000, undefined, { ref: false })]);
    const UploadId = internals.uploadId;
    if (!UploadId) return undefined;
    const Key = (upload as unknown as { params: { Key: string } }).params.Key;
    try {
      await withRetry(
        () => this.getInstance().send(new AbortMultipartUploadCommand({ Bucket: this.#o.bucket, Key, UploadId })),
        this.#retryOptions(),
      );
      return undefined;
    } catch (e) {
      if (isNoSuchUpload(e)) return undefined;
      return `aborting multipart upload ${UploadId} failed: ${(e as Error).message}; listIncomplete() reports it and a bucket lifecycle rule (AbortIncompleteMultipartUpload) expires it`;
    }
  }

  #retryOptions(signal?: AbortSignal) {
    return {
      retries: this.#retries,
      baseDelayMs: this.#o.retryBaseDelayMs ?? 100,
      maxDelayMs: this.#o.retryMaxDelayMs ?? 5000,
      signal,
      isTransient: isTransientS3Error,
    };
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const Key = this.#key(key);
    const { signal, range } = options;
    if (
      range &&
      (!Number.isSafeInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start))
    )
      throw new StorageError('INVALID_RANGE', `[storage] [s3] Invalid range ${range.start}-${range.end ?? ''}`, {
        profile: this.#profile,
        key,
      });
    const request = async (start: number | undefined, end: number | undefined, etag: string | undefined) => {
      try {
        return await this.getInstance().send(
          new GetObjectCommand({
            Bucket: this.#o.bucket,
            Key,
            Range: start === undefined ? undefined : `bytes=${start}-${end ?? ''}`,
            IfMatch: etag,
          }),
          { abortSignal: signal },
        );
      } catch (e) {
        throw this.#error(e, key, 'Reading', signal);
      }
    };
    const first = await request(range?.start, range?.end, undefined);
    const firstRange = parseContentRange(first.ContentRange);
    // A server may ignore Range or widen it (s3rver answers `bytes=0-0` with the whole object); then
    // the window is cut out here. Either way `end` is the last absolute byte to deliver.
    const size = firstRange?.size ?? first.ContentLength;
    if (size === undefined) return toNodeReadable(first.Body);
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? size - 1, firstRange ? firstRange.end : size - 1);
    if (range && start >= size) {
      toNodeReadable(first.Body).destroy();
      throw new StorageError(
        'INVALID_RANGE',
        `[storage] [s3] Range ${start}- is outside ${JSON.stringify(key)} (${size} bytes)`,
        {
          profile: this.#profile,
          key,
        },
      );
    }
    const etag = first.ETag;
    const retry = this.#retryOptions(signal);
    const part = (r: GetObjectCommandOutput): BodyPart => ({
      body: toNodeReadable(r.Body),
      start: parseContentRange(r.ContentRange)?.start ?? 0,
      length: r.ContentLength,
    });
    // Re-requests pin the ETag (If-Match) so a replaced object is never stitched onto the old one.
    return resumableBody(part(first), {
      ...retry,
      start,
      end,
      key,
      profile: this.#profile,
      reopen: async (pos) => part(await request(pos, end, etag)),
    });
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectInfo | undefined> {
    const Key = this.#key(key);
    try {
      const r = await this.getInstance().send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key }), {
        abortSignal: options.signal,
      });
      return { key, size: r.ContentLength ?? 0, lastModified: r.LastModified ?? new Date(0), etag: r.ETag };
    } catch (e) {
      const error = this.#error(e, key, 'Reading', options.signal);
      if (error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    const { signal } = options;
    let ContinuationToken: string | undefined;
    for (let page = 0; page < 10_000_000; page++) {
      let r: ListObjectsV2CommandOutput;
      try {
        r = await this.getInstance().send(
          new ListObjectsV2Command({
            Bucket: this.#o.bucket,
            Prefix: this.#base + prefix,
            MaxKeys: options.pageSize ?? 1000,
            ContinuationToken,
          }),
          { abortSignal: signal },
        );
      } catch (e) {
        throw this.#error(e, prefix, 'Listing', signal);
      }
      for (const o of r.Contents ?? []) {
        if (!o.Key) continue;
        yield {
          key: o.Key.slice(this.#base.length),
          size: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
          etag: o.ETag,
        };
      }
      if (!r.IsTruncated || !r.NextContinuationToken) return;
      ContinuationToken = r.NextContinuationToken;
    }
  }

  async delete(key: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const Key = this.#key(key);
    // S3 answers DeleteObject with 204 whether or not the key existed, so ask first.
    const existed = (await this.head(key, options)) !== undefined;
    if (!existed) return false;
    try {
      await this.getInstance().send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key }), {
        abortSignal: options.signal,
      });
    } catch (e) {
      throw this.#error(e, key, 'Deleting', options.signal);
    }
    return true;
  }

  /** Open multipart uploads under the prefix (needs `multipartManagement`). */
  async *listIncomplete(options: { signal?: AbortSignal } = {}): AsyncIterable<IncompleteUpload> {
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      let r: ListMultipartUploadsCommandOutput;
      try {
        r = await this.getInstance().send(
          new ListMultipartUploadsCommand({ Bucket: this.#o.bucket, Prefix: this.#base, KeyMarker, UploadIdMarker }),
          { abortSignal: options.signal },
        );
      } catch (e) {
        throw this.#error(e, undefined, 'Listing incomplete uploads in', options.signal);
      }
      for (const u of r.Uploads ?? [])
        if (u.Key && u.UploadId)
          yield { key: u.Key.slice(this.#base.length), startedAt: u.Initiated ?? new Date(0), handle: u.UploadId };
      if (!r.IsTruncated) return;
      KeyMarker = r.NextKeyMarker;
      UploadIdMarker = r.NextUploadIdMarker;
    }
  }

  async abortIncomplete(upload: IncompleteUpload): Promise<void> {
    const Key = this.#key(upload.key);
    try {
      await withRetry(
        () =>
          this.getInstance().send(
            new AbortMultipartUploadCommand({ Bucket: this.#o.bucket, Key, UploadId: upload.handle }),
          ),
        this.#retryOptions(),
      );
    } catch (e) {
      if (!isNoSuchUpload(e)) throw this.#error(e, upload.key, 'Aborting the upload of');
    }
  }
}

function toNodeReadable(body: unknown): Readable {
  if (body instanceof Readable) return body;
  if (body && typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function')
    return Readable.from(body as AsyncIterable<Uint8Array>, { objectMode: false });
  return Readable.from([], { objectMode: false });
}

type SdkError = {
  name?: string;
  message?: string;
  Code?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
};

function isNoSuchUpload(e: unknown): boolean {
  const err = e as SdkError;
  return err?.name === 'NoSuchUpload' || err?.Code === 'NoSuchUpload' || err?.$metadata?.httpStatusCode === 404;
}

const THROTTLING = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'TooManyRequestsException',
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** 5xx, throttling, timeouts and connection resets: worth another attempt. */
export function isTransientS3Error(e: unknown): boolean {
  const err = e as SdkError;
  if (!err || typeof err !== 'object') return false;
  if (err.name && THROTTLING.has(err.name)) return true;
  if (err.$retryable) return true;
  return isTransientError(e) || err.message === 'aborted';
}

/** Maps an SDK failure to a `StorageError` with a stable code. */
export function mapS3Error(
  e: unknown,
  ctx: { profile: string; key?: string; action: string; bucket: string; signal?: AbortSignal },
): StorageError {
  if (e instanceof StorageError) return e;
  const err = e as SdkError & Error;
  const name = err?.name ?? '';
  const status = err?.$metadata?.httpStatusCode;
  const where = ctx.key === undefined ? `bucket ${ctx.bucket}` : `${JSON.stringify(ctx.key)} in bucket ${ctx.bucket}`;
  const opts = { profile: ctx.profile, key: ctx.key, cause: e };
  if (ctx.signal?.aborted || name === 'AbortError')
    return abortedError(ctx.signal, { profile: ctx.profile, key: ctx.key });
  if (name === 'NoSuchBucket')
    return new StorageError(
      'BUCKET_NOT_FOUND',
      `[storage] [s3] Bucket ${ctx.bucket} does not exist: create it or fix Settings.Bucket of profile '${ctx.profile}'`,
      opts,
    );
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404)
    return new StorageError('NOT_FOUND', `[storage] [s3] ${where} does not exist`, opts);
  if (name === 'PreconditionFailed' || status === 412)
    return new StorageError('ALREADY_EXISTS', `[storage] [s3] ${where} already exists`, opts);
  if (name === 'InvalidRange' || status === 416)
    return new StorageError('INVALID_RANGE', `[storage] [s3] The range is outside ${where}`, opts);
  if (
    status === 401 ||
    status === 403 ||
    [
      'AccessDenied',
      'InvalidAccessKeyId',
      'SignatureDoesNotMatch',
      'ExpiredToken',
      'CredentialsProviderError',
    ].includes(name)
  )
    return new StorageError(
      'ACCESS_DENIED',
      `[storage] [s3] ${ctx.action} ${where} was denied (${name || status}): check the credentials of profile '${ctx.profile}' and the bucket policy`,
      opts,
    );
  if (isTransientS3Error(e))
    return new StorageError(
      'TRANSIENT',
      `[storage] [s3] ${ctx.action} ${where} kept failing after retries: ${err?.message ?? name}`,
      opts,
    );
  return new StorageError('IO', `[storage] [s3] ${ctx.action} ${where} failed: ${err?.message ?? name}`, opts);
}

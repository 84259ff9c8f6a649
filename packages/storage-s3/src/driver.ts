/**
 * The S3 driver: the SDK calls of each operation (`S3Backend`), wrapped in the layers of the driver kit of
 * @koan/storage (key validation, error mapping, the key prefix, retries). `get` streams and resumes a cut body with a
 * ranged re-request pinned to the object's ETag; writes are in multipart.ts.
 */
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import {
  type Body,
  type BodyPart,
  type ErrorMap,
  type GetOptions,
  type IncompleteUpload,
  type ListIncompleteOptions,
  type ListOptions,
  type ListPage,
  type ListPageOptions,
  mapErrors,
  type ObjectInfo,
  type PutOptions,
  pagedList,
  parseContentRange,
  parseSettings,
  prefixed,
  type RetryPolicy,
  resumableBody,
  type StorageDriver,
  StorageError,
  type StorageFlags,
  type StorageProvider,
  type Timeouts,
  timeoutsOf,
  validated,
  withRetry,
} from '@koan/storage';
import { DRIVER_NAME, isNoSuchKey, isTransientS3Error, mapS3Error } from './errors.js';
import { abortUpload, listUploads, putObject, type WriteContext } from './multipart.js';
import { settingsSchema } from './settings.js';

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
  /** Retries after the first attempt, of each request and of resuming a cut download. @default 3 */
  readonly maxRetries?: number;
  /** @default 100 */
  readonly retryBaseDelayMs?: number;
  /** @default 5000 */
  readonly retryMaxDelayMs?: number;
  /** How long connecting may take. @default 10000 */
  readonly connectionTimeoutMs?: number;
  /** How long a request may go without sending or receiving a byte (idle, not total). @default 60000 */
  readonly requestTimeoutMs?: number;
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
  /**
   * A ready client (tests, custom middleware); the connection settings above are then ignored, and the client's own
   * retry strategy is the only one (no request is retried by the driver as well).
   */
  readonly client?: S3Client;
}

/** An S3 driver, plus the SDK client for what the contract does not cover. */
export interface S3Storage extends StorageDriver {
  getInstance(): S3Client;
}

export const provider: StorageProvider = {
  name: DRIVER_NAME,
  create(settings, { profile }) {
    const s = parseSettings(settingsSchema, settings, { profile, provider: DRIVER_NAME });
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
  const profile = options.profile ?? DRIVER_NAME;
  const timeouts = timeoutsOf(options);
  const map: ErrorMap = (e, context) => mapS3Error(e, { ...context, profile, bucket: options.bucket, timeouts });
  const backend = new S3Backend(options, profile, timeouts, map);
  // Reads and deletes are retried here, on a client that does not retry; writes by the SDK (see multipart.ts).
  const retried = options.client ? backend : withRetry(backend, isTransientS3Error, backend.retryPolicy);
  const driver = validated(mapErrors(prefixed(retried, options.prefix ?? '', { profile }), map), { profile });
  return Object.assign(driver, { getInstance: () => backend.getInstance() });
}

/** The SDK calls, on keys as they are in the bucket; failures are the SDK's own (mapped by the `mapErrors` layer). */
class S3Backend implements StorageDriver {
  readonly provider = DRIVER_NAME;
  readonly flags: StorageFlags;
  readonly retryPolicy: Required<Omit<RetryPolicy, 'onRetry'>>;
  readonly #o: S3StorageOptions;
  readonly #profile: string;
  readonly #timeouts: Timeouts;
  readonly #map: ErrorMap;
  /** Retries each request itself (`MaxRetries`): for the writes, which no layer above retries. */
  #retrying: S3Client | undefined;
  /** Sends each request once: for what `withRetry` retries. Shares the connections and credentials of `#retrying`. */
  #direct: S3Client | undefined;

  constructor(options: S3StorageOptions, profile: string, timeouts: Timeouts, map: ErrorMap) {
    this.#o = options;
    this.#profile = profile;
    this.#timeouts = timeouts;
    this.#map = map;
    this.retryPolicy = {
      retries: options.maxRetries ?? 3,
      baseDelayMs: options.retryBaseDelayMs ?? 100,
      maxDelayMs: options.retryMaxDelayMs ?? 5000,
    };
    this.flags = Object.freeze({
      rangedReads: true,
      conditionalPut: options.conditionalPut ?? true,
      incompleteUploads: options.multipartManagement ?? true,
    });
  }

  /** The client that retries (or the one given): what callers use for what the contract does not cover. */
  getInstance(): S3Client {
    this.#retrying ??= this.#o.client ?? new S3Client(this.#config(this.retryPolicy.retries + 1));
    return this.#retrying;
  }

  #directClient(): S3Client {
    if (this.#o.client) return this.#o.client;
    if (!this.#direct) {
      const shared = this.getInstance().config;
      this.#direct = new S3Client({
        ...this.#config(1),
        requestHandler: shared.requestHandler,
        credentials: shared.credentials,
      });
    }
    return this.#direct;
  }

  #config(maxAttempts: number): S3ClientConfig {
    const o = this.#o;
    const config: S3ClientConfig = {
      region: o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      endpoint: o.endpoint,
      forcePathStyle: o.forcePathStyle ?? false,
      maxAttempts,
      // Flexible checksums break S3-compatible servers (s3rver stored the aws-chunked framing).
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // socketTimeout is an idle time: an endpoint that accepts the connection and never answers fails after it,
      // while a long transfer that keeps moving is never cut.
      requestHandler: {
        connectionTimeout: this.#timeouts.connectionTimeoutMs,
        socketTimeout: this.#timeouts.requestTimeoutMs,
      },
    };
    if (o.accessKeyId && o.secretAccessKey)
      config.credentials = {
        accessKeyId: o.accessKeyId,
        secretAccessKey: o.secretAccessKey,
        sessionToken: o.sessionToken,
      };
    return config;
  }

  async close(): Promise<void> {
    if (!this.#o.client) {
      this.#direct?.destroy();
      this.#retrying?.destroy();
    }
    this.#direct = undefined;
    this.#retrying = undefined;
  }

  #write(): WriteContext {
    return {
      client: this.getInstance(),
      bucket: this.#o.bucket,
      profile: this.#profile,
      partSizeBytes: this.#o.partSizeBytes,
      queueSize: this.#o.queueSize,
      conditionalPut: this.flags.conditionalPut,
      map: this.#map,
    };
  }

  put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectInfo> {
    return putObject(this.#write(), key, body, options);
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const { signal, range } = options;
    const request = (start: number | undefined, end: number | undefined, etag: string | undefined) =>
      this.#directClient().send(
        new GetObjectCommand({
          Bucket: this.#o.bucket,
          Key: key,
          Range: start === undefined ? undefined : `bytes=${start}-${end ?? ''}`,
          IfMatch: etag,
        }),
        { abortSignal: signal },
      );
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
        { profile: this.#profile, key },
      );
    }
    const etag = first.ETag;
    const part = (r: GetObjectCommandOutput): BodyPart => ({
      body: toNodeReadable(r.Body),
      start: parseContentRange(r.ContentRange)?.start ?? 0,
      length: r.ContentLength,
    });
    // Re-requests pin the ETag (If-Match) so a replaced object is never stitched onto the old one.
    return resumableBody(part(first), {
      ...this.retryPolicy,
      isTransient: isTransientS3Error,
      signal,
      start,
      end,
      key,
      profile: this.#profile,
      reopen: async (pos) => {
        try {
          return part(await request(pos, end, etag));
        } catch (e) {
          throw this.#map(e, { key, action: 'Reading', signal });
        }
      },
    });
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectInfo | undefined> {
    try {
      const r = await this.#directClient().send(new HeadObjectCommand({ Bucket: this.#o.bucket, Key: key }), {
        abortSignal: options.signal,
      });
      return { key, size: r.ContentLength ?? 0, lastModified: r.LastModified ?? new Date(0), etag: r.ETag };
    } catch (e) {
      if (isNoSuchKey(e)) return undefined;
      throw e;
    }
  }

  async listPage(prefix: string, options: ListPageOptions = {}): Promise<ListPage> {
    const r = await this.#directClient().send(
      new ListObjectsV2Command({
        Bucket: this.#o.bucket,
        Prefix: prefix,
        MaxKeys: options.pageSize ?? 1000,
        ContinuationToken: options.token,
      }),
      { abortSignal: options.signal },
    );
    const objects = (r.Contents ?? []).flatMap((o) =>
      o.Key ? [{ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), etag: o.ETag }] : [],
    );
    return { objects, next: r.IsTruncated ? r.NextContinuationToken : undefined };
  }

  list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    return pagedList((p, o) => this.listPage(p, o), prefix, options);
  }

  async delete(key: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    // S3 answers DeleteObject with 204 whether or not the key existed, so ask first.
    if (!(await this.head(key, options))) return false;
    await this.#directClient().send(new DeleteObjectCommand({ Bucket: this.#o.bucket, Key: key }), {
      abortSignal: options.signal,
    });
    return true;
  }

  /** Open multipart uploads (needs `multipartManagement`). */
  listIncomplete(options: ListIncompleteOptions = {}): AsyncIterable<IncompleteUpload> {
    return listUploads(this.#write(), options);
  }

  abortIncomplete(upload: IncompleteUpload): Promise<void> {
    return abortUpload(this.#write(), upload);
  }
}

function toNodeReadable(body: unknown): Readable {
  if (body instanceof Readable) return body;
  if (body && typeof (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function')
    return Readable.from(body as AsyncIterable<Uint8Array>, { objectMode: false });
  return Readable.from([], { objectMode: false });
}

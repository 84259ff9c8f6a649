/**
 * The Azure Blob driver: the SDK calls of each operation (`AzureBlobBackend`), wrapped in the layers of the driver kit
 * of @koan/storage (key validation, error mapping, the blob name prefix, retries). `get` streams and resumes a cut
 * body with a ranged re-request pinned to the blob's ETag; writes are in multipart.ts.
 */
import { Readable } from 'node:stream';
import {
  AnonymousCredential,
  BlobServiceClient,
  type ContainerClient,
  type StoragePipelineOptions,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
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
import { DRIVER_NAME, isBlobNotFound, isTransientAzureError, mapAzureError } from './errors.js';
import { proxyVariable, timeoutAgent } from './http.js';
import { discardUncommitted, listBlobPage, listUncommitted, putBlocks, type WriteContext } from './multipart.js';
import { settingsSchema } from './settings.js';

export interface AzureBlobStorageOptions {
  /** Account connection string (`DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...`). */
  readonly connectionString?: string;
  /** Shared-key auth when there is no connection string. */
  readonly accountName?: string;
  readonly accountKey?: string;
  /** Service URL; may carry a SAS token. @default https://<accountName>.blob.core.windows.net */
  readonly url?: string;
  readonly containerName: string;
  /** Blob name prefix inside the container, e.g. `backups/`. @default '' */
  readonly prefix?: string;
  /** Block size; memory use per put is about `(concurrency + 1) × blockSizeBytes`. @default 4 MiB (50,000 blocks: blobs up to 195 GiB) */
  readonly blockSizeBytes?: number;
  /** Blocks staged concurrently. @default 2 */
  readonly concurrency?: number;
  /** Create the container on first use when it does not exist. @default false */
  readonly createContainer?: boolean;
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
  /** Profile name used in errors. @default 'azure-blob' */
  readonly profile?: string;
}

/** An Azure Blob driver, plus the SDK container client for what the contract does not cover. */
export interface AzureBlobStorage extends StorageDriver {
  getInstance(): ContainerClient;
}

export const provider: StorageProvider = {
  name: DRIVER_NAME,
  create(settings, { profile }) {
    return createAzureBlobStorage({
      ...parseSettings(settingsSchema, settings, { profile, provider: DRIVER_NAME }),
      profile,
    });
  },
};

/**
 * @example
 * const storage = createAzureBlobStorage({ connectionString, containerName: 'disaster-recovery' });
 * await storage.put('weekly/all.zip', createReadStream('all.zip'));
 */
export function createAzureBlobStorage(options: AzureBlobStorageOptions): AzureBlobStorage {
  if (!options.containerName)
    throw new StorageError('CONFIG', '[storage] [azure-blob] Missing required option `containerName`.');
  if (!options.connectionString && !options.url && !(options.accountName && options.accountKey))
    throw new StorageError(
      'CONFIG',
      '[storage] [azure-blob] Missing credentials: set `connectionString`, `accountName` + `accountKey`, or a SAS `url`.',
    );
  const profile = options.profile ?? DRIVER_NAME;
  const timeouts = timeoutsOf(options);
  const container = options.containerName;
  const map: ErrorMap = (e, context) => mapAzureError(e, { ...context, profile, container, timeouts });
  const backend = new AzureBlobBackend(options, profile, timeouts, map);
  // Reads and deletes are retried here, on a client that does not retry; writes by the SDK (see multipart.ts).
  const retried = withRetry(backend, isTransientAzureError, backend.retryPolicy);
  const driver = validated(mapErrors(prefixed(retried, options.prefix ?? '', { profile }), map), { profile });
  return Object.assign(driver, { getInstance: () => backend.getInstance() });
}

const FLAGS: StorageFlags = Object.freeze({ rangedReads: true, conditionalPut: true, incompleteUploads: true });

/** The SDK calls, on blob names as they are in the container; failures are the SDK's own (mapped by `mapErrors`). */
class AzureBlobBackend implements StorageDriver {
  readonly provider = DRIVER_NAME;
  readonly flags = FLAGS;
  readonly retryPolicy: Required<Omit<RetryPolicy, 'onRetry'>>;
  readonly #o: AzureBlobStorageOptions;
  readonly #profile: string;
  readonly #timeouts: Timeouts;
  readonly #map: ErrorMap;
  /** Retries each request itself (`MaxRetries`): for the writes, which no layer above retries. */
  #retrying: ContainerClient | undefined;
  /** Sends each request once: for what `withRetry` retries. */
  #direct: ContainerClient | undefined;
  #ensured: Promise<void> | undefined;

  constructor(options: AzureBlobStorageOptions, profile: string, timeouts: Timeouts, map: ErrorMap) {
    this.#o = options;
    this.#profile = profile;
    this.#timeouts = timeouts;
    this.#map = map;
    this.retryPolicy = {
      retries: options.maxRetries ?? 3,
      baseDelayMs: options.retryBaseDelayMs ?? 100,
      maxDelayMs: options.retryMaxDelayMs ?? 5000,
    };
    const proxy = proxyVariable();
    if (proxy)
      process.emitWarning(
        `Azure Blob profile '${profile}' goes through the proxy in ${proxy}: its ConnectionTimeoutMs and RequestTimeoutMs do not apply (the SDK's proxy agent has no timeouts), so an endpoint that never answers holds a request until the proxy gives up.`,
        { code: 'KOAN_STORAGE_PROXY_TIMEOUTS' },
      );
  }

  /** The container through the client that retries: what callers use for what the contract does not cover. */
  getInstance(): ContainerClient {
    this.#retrying ??= this.#container(this.retryPolicy.retries + 1);
    return this.#retrying;
  }

  #directContainer(): ContainerClient {
    this.#direct ??= this.#container(1);
    return this.#direct;
  }

  #container(maxTries: number): ContainerClient {
    const o = this.#o;
    const proxy = proxyVariable();
    const pipeline = (url: string) =>
      ({
        retryOptions: {
          maxTries,
          retryDelayInMs: this.retryPolicy.baseDelayMs,
          maxRetryDelayInMs: this.retryPolicy.maxDelayMs,
        },
        // Read by the SDK's pipeline (core-rest-pipeline's `agent` option): test/timeouts.test.ts fails if it is not.
        // With a proxy in the environment there is none: the SDK uses a proxy agent only when none is given.
        ...(proxy ? {} : { agent: timeoutAgent(url, this.#timeouts) }),
      }) as StoragePipelineOptions;
    let service: BlobServiceClient;
    if (o.connectionString) {
      // The service URL (http for an emulator, https for Azure) decides the agent; parsing it makes no request.
      const url = BlobServiceClient.fromConnectionString(o.connectionString).url;
      service = BlobServiceClient.fromConnectionString(o.connectionString, pipeline(url));
    } else if (o.accountName && o.accountKey) {
      const url = o.url ?? `https://${o.accountName}.blob.core.windows.net`;
      service = new BlobServiceClient(url, new StorageSharedKeyCredential(o.accountName, o.accountKey), pipeline(url));
    } else service = new BlobServiceClient(o.url!, new AnonymousCredential(), pipeline(o.url!));
    return service.getContainerClient(o.containerName);
  }

  /** The retrying container, created first when `createContainer` is set (once; a failure is tried again later). */
  async #ready(): Promise<ContainerClient> {
    const container = this.getInstance();
    if (this.#o.createContainer) {
      this.#ensured ??= container.createIfNotExists().then(
        () => undefined,
        (e) => {
          this.#ensured = undefined;
          throw this.#map(e, { action: 'Creating' });
        },
      );
      await this.#ensured;
    }
    return container;
  }

  async close(): Promise<void> {
    this.#retrying = undefined;
    this.#direct = undefined;
    this.#ensured = undefined;
  }

  #write(): WriteContext {
    return {
      ready: () => this.#ready(),
      profile: this.#profile,
      blockSizeBytes: this.#o.blockSizeBytes,
      concurrency: this.#o.concurrency,
      map: this.#map,
    };
  }

  put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectInfo> {
    return putBlocks(this.#write(), key, body, options);
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const { signal, range } = options;
    const blob = this.#directContainer().getBlobClient(key);
    // The SDK's own resume (maxRetryRequests) gives up on a reset connection; resumableBody does not.
    const download = (offset: number, count: number | undefined, ifMatch: string | undefined) =>
      blob.download(offset, count, {
        abortSignal: signal,
        maxRetryRequests: 0,
        conditions: ifMatch ? { ifMatch } : undefined,
      });
    const start = range?.start ?? 0;
    const first = await download(start, range?.end === undefined ? undefined : range.end - start + 1, undefined);
    const part = (r: typeof first): BodyPart => ({
      body: (r.readableStreamBody as Readable | undefined) ?? Readable.from([], { objectMode: false }),
      start: parseContentRange(r.contentRange)?.start ?? 0,
      length: r.contentLength,
    });
    const size = parseContentRange(first.contentRange)?.size ?? first.contentLength ?? 0;
    // Azure answers a start past the end with 416; azurite with 206 `bytes 10-9/10`.
    if (range && !(start < size)) {
      (first.readableStreamBody as Readable | undefined)?.destroy();
      throw new StorageError(
        'INVALID_RANGE',
        `[storage] [azure-blob] Range ${start}- is outside ${JSON.stringify(key)} (${size} bytes)`,
        { profile: this.#profile, key },
      );
    }
    const end = Math.min(range?.end ?? size - 1, size - 1);
    return resumableBody(part(first), {
      ...this.retryPolicy,
      start,
      end,
      key,
      profile: this.#profile,
      signal,
      // A reset connection surfaces from the SDK's body stream as AbortError when we did not abort.
      isTransient: (e) => isTransientAzureError(e) || (e as Error)?.name === 'AbortError',
      reopen: async (pos) => {
        try {
          return part(await download(pos, end - pos + 1, first.etag));
        } catch (e) {
          throw this.#map(e, { key, action: 'Reading', signal });
        }
      },
    });
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectInfo | undefined> {
    try {
      const p = await this.#directContainer().getBlobClient(key).getProperties({ abortSignal: options.signal });
      return { key, size: p.contentLength ?? 0, lastModified: p.lastModified ?? new Date(0), etag: p.etag };
    } catch (e) {
      if (isBlobNotFound(e)) return undefined;
      throw e;
    }
  }

  listPage(prefix: string, options: ListPageOptions = {}): Promise<ListPage> {
    return listBlobPage(this.#directContainer(), prefix, options);
  }

  list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    return pagedList((p, o) => this.listPage(p, o), prefix, options);
  }

  async delete(key: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const r = await this.#directContainer().getBlobClient(key).deleteIfExists({ abortSignal: options.signal });
    return r.succeeded;
  }

  listIncomplete(options: ListIncompleteOptions = {}): AsyncIterable<IncompleteUpload> {
    return listUncommitted(this.#write(), options);
  }

  abortIncomplete(upload: IncompleteUpload): Promise<void> {
    return discardUncommitted(this.#write(), upload);
  }
}

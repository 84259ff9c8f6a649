/**
 * @koan/storage-azure: the Azure Blob storage driver. `put` stages blocks from the stream with
 * bounded memory and commits the block list last: uncommitted blocks are invisible, so the
 * commit is the atomic publish.
 */
import { randomBytes } from 'node:crypto';
import { addAbortSignal, Readable } from 'node:stream';
import {
  AnonymousCredential,
  type BlobItem,
  BlobServiceClient,
  type ContainerClient,
  type StoragePipelineOptions,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import {
  abortedError,
  assertKey,
  azureBlobSettingsSchema,
  type Body,
  type BodyPart,
  compareKeys,
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
  toReadable,
  withRetry,
} from '@koan/storage';

export const DRIVER_NAME = 'azure-blob';

const MiB = 1024 * 1024;

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
  /** Retries after the first attempt (SDK requests and resumed downloads). @default 3 */
  readonly maxRetries?: number;
  /** @default 100 */
  readonly retryBaseDelayMs?: number;
  /** @default 5000 */
  readonly retryMaxDelayMs?: number;
  /** Profile name used in errors. @default 'azure-blob' */
  readonly profile?: string;
}

/** An Azure Blob driver, plus the SDK container client for what the contract does not cover. */
export interface AzureBlobStorage extends StorageDriver {
  getInstance(): ContainerClient;
}

/** Settings of an `azure-blob` profile (camelCase keys, strict); defined in @koan/storage for the config's JSON Schema. */
export { azureBlobSettingsSchema };

export const provider: StorageProvider = {
  name: DRIVER_NAME,
  create(settings, { profile }) {
    return createAzureBlobStorage({
      ...parseSettings(azureBlobSettingsSchema, settings, { profile, provider: DRIVER_NAME }),
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
  return new AzureBlobObjectStorage(options);
}

const FLAGS: StorageFlags = Object.freeze({ rangedReads: true, conditionalPut: true, incompleteUploads: true });

class AzureBlobObjectStorage implements AzureBlobStorage {
  readonly provider = DRIVER_NAME;
  readonly flags = FLAGS;
  readonly #o: AzureBlobStorageOptions;
  readonly #profile: string;
  readonly #base: string;
  readonly #retries: number;
  #container: ContainerClient | undefined;
  #ensured: Promise<void> | undefined;

  constructor(options: AzureBlobStorageOptions) {
    this.#o = options;
    this.#profile = options.profile ?? DRIVER_NAME;
    const p = options.prefix ?? '';
    this.#base = p && !p.endsWith('/') ? `${p}/` : p;
    this.#retries = options.maxRetries ?? 3;
  }

  getInstance(): ContainerClient {
    if (this.#container) return this.#container;
    const o = this.#o;
    const pipeline: StoragePipelineOptions = {
      retryOptions: {
        maxTries: this.#retries + 1,
        retryDelayInMs: o.retryBaseDelayMs ?? 100,
        maxRetryDelayInMs: o.retryMaxDelayMs ?? 5000,
      },
    };
    let service: BlobServiceClient;
    if (o.connectionString) service = BlobServiceClient.fromConnectionString(o.connectionString, pipeline);
    else if (o.accountName && o.accountKey)
      service = new BlobServiceClient(
        o.url ?? `https://${o.accountName}.blob.core.windows.net`,
        new StorageSharedKeyCredential(o.accountName, o.accountKey),
        pipeline,
      );
    else service = new BlobServiceClient(o.url!, new AnonymousCredential(), pipeline);
    this.#container = service.getContainerClient(o.containerName);
    return this.#container;
  }

  async #ready(): Promise<ContainerClient> {
    const container = this.getInstance();
    if (this.#o.createContainer) {
      this.#ensured ??= container.createIfNotExists().then(
        () => undefined,
        (e) => {
          this.#ensured = undefined;
          throw this.#error(e, undefined, 'Creating container');
        },
      );
      await this.#ensured;
    }
    return container;
  }

  async close(): Promise<void> {
    this.#container = undefined;
    this.#ensured = undefined;
  }

  #name(key: string): string {
    assertKey(key, this.#profile);
    return this.#base + key;
  }

  #error(e: unknown, key: string | undefined, action: string, signal?: AbortSignal): StorageError {
    return mapAzureError(e, { profile: this.#profile, key, action, container: this.#o.containerName, signal });
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectInfo> {
    const name = this.#name(key);
    const { signal } = options;
    const source = toReadable(body);
    if (signal?.aborted) {
      source.destroy();
      throw abortedError(signal, { profile: this.#profile, key });
    }
    const blob = (await this.#ready()).getBlockBlobClient(name);
    const blockSize = this.#o.blockSizeBytes ?? 4 * MiB;
    const concurrency = this.#o.concurrency ?? 2;
    // Every block id of every upload has the same length (Azure requires it per blob); the random
    // tag keeps concurrent or abandoned uploads of the same blob apart.
    const tag = randomBytes(12);
    const blockId = (i: number) => {
      const b = Buffer.alloc(16);
      tag.copy(b);
      b.writeUInt32BE(i, 12);
      return b.toString('base64');
    };
    // In-flight stageBlock calls are never cancelled, only awaited: a cancelled request can still
    // land on the server later, after listIncomplete/abortIncomplete ran. So when put returns,
    // none of its requests is still in flight; an abort takes effect at the next block boundary.
    const ids: string[] = [];
    const inFlight = new Set<Promise<void>>();
    let failure: unknown;
    let size = 0;
    const stage = (data: Buffer): Promise<void> => {
      const id = blockId(ids.length);
      ids.push(id);
      const p = blob
        .stageBlock(id, data, data.length)
        .then(
          () => undefined,
          (e) => {
            failure ??= e;
          },
        )
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      return p;
    };
    try {
      // Blocks are filled in place in a small pool of buffers (one per block in flight, plus the one being
      // filled) and a buffer is reused only once its stageBlock has settled: no per-block allocation.
      const pool: Buffer[] = [];
      let current: Buffer = Buffer.allocUnsafe(blockSize);
      let pendingBytes = 0;
      const flush = async () => {
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        if (failure) return;
        const filled = current;
        void stage(filled.subarray(0, pendingBytes)).then(() => pool.push(filled));
        current = pool.pop() ?? Buffer.allocUnsafe(blockSize);
        pendingBytes = 0;
      };
      const input = signal ? addAbortSignal(signal, source) : source;
      for await (const chunk of input) {
        if (failure) break;
        const c = chunk as Uint8Array;
        size += c.length;
        let offset = 0;
        while (offset < c.length) {
          const n = Math.min(blockSize - pendingBytes, c.length - offset);
          current.set(c.subarray(offset, offset + n), pendingBytes);
          pendingBytes += n;
          offset += n;
          if (pendingBytes === blockSize) await flush();
          if (failure) break;
        }
      }
      if (!failure && pendingBytes > 0) await flush();
      await Promise.all(inFlight);
      if (failure) throw failure;
      if (signal?.aborted) throw abortedError(signal, { profile: this.#profile, key });
      // Not cancellable: a cancelled commit could still publish after put rejected.
      const result = await blob.commitBlockList(ids, {
        blobHTTPHeaders: options.contentType ? { blobContentType: options.contentType } : undefined,
        conditions: options.ifNoneMatch ? { ifNoneMatch: '*' } : undefined,
      });
      return { key, size, lastModified: result.lastModified ?? new Date(), etag: result.etag };
    } catch (e) {
      source.destroy();
      await Promise.allSettled(inFlight);
      // Staged blocks stay uncommitted: invisible, dropped by the next commit to this blob or by
      // Azure after a week. listIncomplete() shows blobs that have nothing but such blocks.
      if (signal?.aborted) throw abortedError(signal, { profile: this.#profile, key });
      if (failure === undefined && !(e as { statusCode?: number }).statusCode && !(e instanceof StorageError))
        throw new StorageError(
          'IO',
          `[storage] [azure-blob] Reading the body for ${JSON.stringify(key)} failed: ${(e as Error)?.message}`,
          { profile: this.#profile, key, cause: e },
        );
      throw this.#error(e, key, 'Uploading', signal);
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const name = this.#name(key);
    const { signal, range } = options;
    if (
      range &&
      (!Number.isSafeInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start))
    )
      throw new StorageError(
        'INVALID_RANGE',
        `[storage] [azure-blob] Invalid range ${range.start}-${range.end ?? ''}`,
        {
          profile: this.#profile,
          key,
        },
      );
    const blob = this.getInstance().getBlobClient(name);
    const download = async (offset: number, count: number | undefined, ifMatch: string | undefined) => {
      try {
        // The SDK's own resume (maxRetryRequests) gives up on a reset connection; resumableBody does not.
        return await blob.download(offset, count, {
          abortSignal: signal,
          maxRetryRequests: 0,
          conditions: ifMatch ? { ifMatch } : undefined,
        });
      } catch (e) {
        throw this.#error(e, key, 'Reading', signal);
      }
    };
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
      start,
      end,
      key,
      profile: this.#profile,
      signal,
      retries: this.#retries,
      baseDelayMs: this.#o.retryBaseDelayMs ?? 100,
      maxDelayMs: this.#o.retryMaxDelayMs ?? 5000,
      // A reset connection surfaces from the SDK's body stream as AbortError when we did not abort.
      isTransient: (e) => isTransientAzureError(e) || (e as Error)?.name === 'AbortError',
      reopen: async (pos) => part(await download(pos, end - pos + 1, first.etag)),
    });
  }

  async head(key: string, options: { signal?: AbortSignal } = {}): Promise<ObjectInfo | undefined> {
    const name = this.#name(key);
    try {
      const p = await this.getInstance().getBlobClient(name).getProperties({ abortSignal: options.signal });
      return { key, size: p.contentLength ?? 0, lastModified: p.lastModified ?? new Date(0), etag: p.etag };
    } catch (e) {
      const error = this.#error(e, key, 'Reading', options.signal);
      if (error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    yield* this.#listItems(prefix, false, options);
  }

  async *#listItems(prefix: string, uncommitted: boolean, options: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    const pages = this.getInstance()
      .listBlobsFlat({ prefix: this.#base + prefix, includeUncommitedBlobs: uncommitted })
      .byPage({ maxPageSize: options.pageSize ?? 1000 });
    const it = pages[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (options.signal?.aborted) throw abortedError(options.signal, { profile: this.#profile, key: prefix });
        let page: IteratorResult<{ segment: { blobItems: BlobItem[] } }>;
        try {
          page = await it.next();
        } catch (e) {
          throw this.#error(e, prefix, 'Listing', options.signal);
        }
        if (page.done) return;
        for (const b of page.value.segment.blobItems)
          yield {
            key: b.name.slice(this.#base.length),
            size: b.properties.contentLength ?? 0,
            lastModified: b.properties.lastModified,
            etag: b.properties.etag,
          };
      }
    } finally {
      await it.return?.();
    }
  }

  async delete(key: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const name = this.#name(key);
    try {
      const r = await this.getInstance().getBlobClient(name).deleteIfExists({ abortSignal: options.signal });
      return r.succeeded;
    } catch (e) {
      throw this.#error(e, key, 'Deleting', options.signal);
    }
  }

  /**
   * Blobs that exist only as uncommitted blocks (an upload that never committed), found by merging
   * a listing with uncommitted blobs against one without. Abandoned blocks on a blob that also has a
   * committed version cannot be listed by Azure; the next commit or Azure's 7-day expiry drops them.
   * A put still running shows up too: filter on `startedAt`.
   */
  async *listIncomplete(options: { signal?: AbortSignal } = {}): AsyncIterable<IncompleteUpload> {
    const committed = this.#listItems('', false, options)[Symbol.asyncIterator]();
    let next = await committed.next();
    try {
      for await (const item of this.#listItems('', true, options)) {
        while (!next.done && compareKeys(next.value.key, item.key) < 0) next = await committed.next();
        if (!next.done && next.value.key === item.key) continue;
        yield { key: item.key, startedAt: item.lastModified, handle: this.#base + item.key };
      }
    } finally {
      await committed.return?.(undefined);
    }
  }

  /**
   * Azure has no call that drops uncommitted blocks. Committing an empty block list (only if no
   * blob exists) discards them, and the empty blob is then deleted (only if unchanged): for that
   * moment an empty object with this key is visible.
   */
  async abortIncomplete(upload: IncompleteUpload): Promise<void> {
    const blob = this.getInstance().getBlockBlobClient(this.#name(upload.key));
    const retry = {
      retries: this.#retries,
      baseDelayMs: this.#o.retryBaseDelayMs ?? 100,
      maxDelayMs: this.#o.retryMaxDelayMs ?? 5000,
      isTransient: isTransientAzureError,
    };
    try {
      const committed = await withRetry(() => blob.commitBlockList([], { conditions: { ifNoneMatch: '*' } }), retry);
      await blob.deleteIfExists({ conditions: { ifMatch: committed.etag } });
    } catch (e) {
      const error = this.#error(e, upload.key, 'Discarding the upload of');
      // Something committed meanwhile: the uncommitted blocks are gone with that commit.
      if (error.code === 'ALREADY_EXISTS' || (e as { statusCode?: number }).statusCode === 412) return;
      throw error;
    }
  }
}

type RestErrorLike = {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  details?: { errorCode?: string };
};

/** 5xx, throttling, timeouts and connection resets: worth another attempt. */
export function isTransientAzureError(e: unknown): boolean {
  const err = e as RestErrorLike;
  if (!err || typeof err !== 'object') return false;
  if (err.code === 'REQUEST_SEND_ERROR' || err.code === 'ServerBusy' || err.code === 'OperationTimedOut') return true;
  return isTransientError(e);
}

/** Maps an SDK failure to a `StorageError` with a stable code. */
export function mapAzureError(
  e: unknown,
  ctx: { profile: string; key?: string; action: string; container: string; signal?: AbortSignal },
): StorageError {
  if (e instanceof StorageError) return e;
  const err = e as RestErrorLike;
  const code = err?.details?.errorCode ?? err?.code ?? '';
  const status = err?.statusCode;
  const where =
    ctx.key === undefined ? `container ${ctx.container}` : `${JSON.stringify(ctx.key)} in container ${ctx.container}`;
  const opts = { profile: ctx.profile, key: ctx.key, cause: e };
  if (ctx.signal?.aborted || err?.name === 'AbortError')
    return abortedError(ctx.signal, { profile: ctx.profile, key: ctx.key });
  if (code === 'ContainerNotFound')
    return new StorageError(
      'BUCKET_NOT_FOUND',
      `[storage] [azure-blob] Container ${ctx.container} does not exist: create it, set Settings.CreateContainer, or fix Settings.ContainerName of profile '${ctx.profile}'`,
      opts,
    );
  if (code === 'BlobNotFound' || status === 404)
    return new StorageError('NOT_FOUND', `[storage] [azure-blob] ${where} does not exist`, opts);
  if (code === 'BlobAlreadyExists' || status === 409 || (status === 412 && code === 'ConditionNotMet'))
    return new StorageError('ALREADY_EXISTS', `[storage] [azure-blob] ${where} already exists`, opts);
  if (code === 'InvalidRange' || status === 416)
    return new StorageError('INVALID_RANGE', `[storage] [azure-blob] The range is outside ${where}`, opts);
  if (status === 401 || status === 403 || code.startsWith('Authentication') || code.startsWith('Authorization'))
    return new StorageError(
      'ACCESS_DENIED',
      `[storage] [azure-blob] ${ctx.action} ${where} was denied (${code || status}): check the credentials of profile '${ctx.profile}'`,
      opts,
    );
  if (isTransientAzureError(e))
    return new StorageError(
      'TRANSIENT',
      `[storage] [azure-blob] ${ctx.action} ${where} kept failing after retries: ${err?.message ?? code}`,
      opts,
    );
  return new StorageError('IO', `[storage] [azure-blob] ${ctx.action} ${where} failed: ${err?.message ?? code}`, opts);
}

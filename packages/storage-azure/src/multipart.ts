/**
 * Writes: `put` stages blocks from the stream with bounded memory and commits the block list last (uncommitted
 * blocks are invisible, so the commit is the atomic publish), and the uploads that never committed are listed and
 * discarded here. Every request here goes through the container client that retries (the SDK's own retries,
 * `MaxRetries`): `withRetry` does not retry these operations, so nothing is retried twice.
 */
import { randomBytes } from 'node:crypto';
import { addAbortSignal } from 'node:stream';
import type { BlobItem, ContainerClient } from '@azure/storage-blob';
import {
  abortError,
  type Body,
  compareKeys,
  type ErrorContext,
  type IncompleteUpload,
  type ListIncompleteOptions,
  type ListPage,
  type ObjectInfo,
  type PutOptions,
  pagedList,
  StorageError,
  toReadable,
} from '@koan/storage';

const MiB = 1024 * 1024;

/** What the write path needs of the driver. */
export interface WriteContext {
  /** The container, through the client whose requests the SDK retries; created first when it is configured so. */
  readonly ready: () => Promise<ContainerClient>;
  readonly profile: string;
  readonly blockSizeBytes?: number;
  readonly concurrency?: number;
  readonly map: (e: unknown, context: ErrorContext) => StorageError;
}

/** Stages `body` as blocks of `key` and commits them; on any failure nothing is committed. */
export async function putBlocks(ctx: WriteContext, key: string, body: Body, options: PutOptions): Promise<ObjectInfo> {
  const { signal } = options;
  const source = toReadable(body);
  const blob = (await ctx.ready()).getBlockBlobClient(key);
  const blockSize = ctx.blockSizeBytes ?? 4 * MiB;
  const concurrency = ctx.concurrency ?? 2;
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
    if (signal?.aborted) throw abortError(signal, { profile: ctx.profile, key });
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
    if (signal?.aborted) throw abortError(signal, { profile: ctx.profile, key });
    if (failure === undefined && !(e as { statusCode?: number }).statusCode && !(e instanceof StorageError))
      throw new StorageError(
        'IO',
        `[storage] [azure-blob] Reading the body for ${JSON.stringify(key)} failed: ${(e as Error)?.message}`,
        { profile: ctx.profile, key, cause: e },
      );
    throw ctx.map(e, { key, action: 'Uploading', signal });
  }
}

/** One page of blobs under `prefix`, with the uncommitted ones (blocks staged, never committed) if asked. */
async function blobPage(
  container: ContainerClient,
  prefix: string,
  uncommitted: boolean,
  options: { token?: string; pageSize?: number; signal?: AbortSignal },
): Promise<ListPage> {
  const pages = container
    .listBlobsFlat({ prefix, includeUncommitedBlobs: uncommitted, abortSignal: options.signal })
    .byPage({ continuationToken: options.token, maxPageSize: options.pageSize ?? 1000 });
  const page = (await pages.next()) as IteratorResult<{
    segment: { blobItems: BlobItem[] };
    continuationToken?: string;
  }>;
  if (page.done) return { objects: [] };
  return {
    objects: page.value.segment.blobItems.map((b) => ({
      key: b.name,
      size: b.properties.contentLength ?? 0,
      lastModified: b.properties.lastModified,
      etag: b.properties.etag,
    })),
    next: page.value.continuationToken || undefined,
  };
}

/** One page of committed blobs (`list`), through `container`. */
export function listBlobPage(
  container: ContainerClient,
  prefix: string,
  options: { token?: string; pageSize?: number; signal?: AbortSignal },
): Promise<ListPage> {
  return blobPage(container, prefix, false, options);
}

/**
 * Blobs that exist only as uncommitted blocks (an upload that never committed), found by merging
 * a listing with uncommitted blobs against one without. Abandoned blocks on a blob that also has a
 * committed version cannot be listed by Azure; the next commit or Azure's 7-day expiry drops them.
 * A put still running shows up too: filter on `startedAt`.
 */
export async function* listUncommitted(
  ctx: WriteContext,
  options: ListIncompleteOptions = {},
): AsyncGenerator<IncompleteUpload> {
  const container = await ctx.ready();
  const prefix = options.prefix ?? '';
  const listing = (uncommitted: boolean) =>
    pagedList((p, o) => blobPage(container, p, uncommitted, o), prefix, { signal: options.signal });
  const committed = listing(false);
  let next = await committed.next();
  try {
    for await (const item of listing(true)) {
      while (!next.done && compareKeys(next.value.key, item.key) < 0) next = await committed.next();
      if (!next.done && next.value.key === item.key) continue;
      yield { key: item.key, startedAt: item.lastModified, handle: item.key };
    }
  } finally {
    await committed.return(undefined);
  }
}

/**
 * Azure has no call that drops uncommitted blocks. Committing an empty block list (only if no
 * blob exists) discards them, and the empty blob is then deleted (only if unchanged): for that
 * moment an empty object with this key is visible.
 */
export async function discardUncommitted(ctx: WriteContext, upload: IncompleteUpload): Promise<void> {
  const blob = (await ctx.ready()).getBlockBlobClient(upload.key);
  try {
    const committed = await blob.commitBlockList([], { conditions: { ifNoneMatch: '*' } });
    await blob.deleteIfExists({ conditions: { ifMatch: committed.etag } });
  } catch (e) {
    // Something committed meanwhile: the uncommitted blocks are gone with that commit.
    const status = (e as { statusCode?: number }).statusCode;
    if (status === 409 || status === 412) return;
    throw e;
  }
}

import type { Readable } from 'node:stream';
import { KoanError } from '@koan/core';

/** Facts about one stored object. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
  readonly etag?: string;
}

/** A body to store: a Node readable, or any (async) iterable of byte chunks. It is consumed once. */
export type Body = Readable | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface PutOptions {
  readonly signal?: AbortSignal;
  readonly contentType?: string;
  /** Fail with `ALREADY_EXISTS` instead of overwriting an existing key. */
  readonly ifNoneMatch?: boolean;
}

export interface GetOptions {
  readonly signal?: AbortSignal;
  /**
   * Byte range, both ends inclusive (as HTTP). `end` defaults to, and is clamped to, the last byte;
   * a `start` at or past the end is `INVALID_RANGE`.
   */
  readonly range?: { readonly start: number; readonly end?: number };
}

export interface ListOptions {
  readonly signal?: AbortSignal;
  /** Objects fetched per page from the backend. Default 1000. */
  readonly pageSize?: number;
}

export interface ListPageOptions extends ListOptions {
  /** Where the page starts: the `next` of the previous page; none for the first page. */
  readonly token?: string;
}

/** One page of a listing. */
export interface ListPage {
  readonly objects: readonly ObjectInfo[];
  /** The token of the next page; none when this page is the last. */
  readonly next?: string;
}

export interface ListIncompleteOptions {
  readonly signal?: AbortSignal;
  /** Only uploads whose key starts with this. @default '' */
  readonly prefix?: string;
}

/** An upload the backend started but never completed (temp files, open multipart uploads). */
export interface IncompleteUpload {
  readonly key: string;
  readonly startedAt: Date;
  /** Backend handle (multipart upload id, temp file path). */
  readonly handle: string;
}

/** What a driver can do; the core branches on these, never on the provider name. */
export interface StorageFlags {
  /** Ranged reads are served natively (not by reading and discarding). */
  readonly rangedReads: boolean;
  /** `ifNoneMatch` is enforced by the backend atomically. */
  readonly conditionalPut: boolean;
  /** The driver can list and remove incomplete uploads. */
  readonly incompleteUploads: boolean;
}

/**
 * The storage-profile contract. Everything streams: `put` consumes a stream, `get` returns one,
 * `list` pages lazily. Keys are `/`-separated paths without a leading slash.
 *
 * `put` is atomic: until it resolves, readers see the previous object (or none); if it fails or is
 * aborted, nothing of it is visible. Backends get there differently (temp file + fsync + rename,
 * multipart upload completed last, staged blocks committed last).
 *
 * @example
 * const storage = createLocalStorage({ root: './backups' });
 * await storage.put('a/b.txt', Readable.from([Buffer.from('hi')]));
 * for await (const o of storage.list('a/')) console.log(o.key, o.size);
 */
export interface StorageDriver {
  /** Provider kind: `local`, `memory`, `s3`, `azure-blob`. */
  readonly provider: string;
  readonly flags: StorageFlags;
  put(key: string, body: Body, options?: PutOptions): Promise<ObjectInfo>;
  /** A readable of the object's bytes (or of the range). Throws `StorageError` `NOT_FOUND` if absent. */
  get(key: string, options?: GetOptions): Promise<Readable>;
  head(key: string, options?: { signal?: AbortSignal }): Promise<ObjectInfo | undefined>;
  /** Objects whose key starts with `prefix`, in lexicographic key order, page by page. */
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo>;
  /**
   * Optional: one page of `list`, from the `token` the previous page returned (backends that page: S3, Azure). With
   * it, `withRetry` retries a failed page instead of giving up on a listing that is under way.
   */
  listPage?(prefix: string, options?: ListPageOptions): Promise<ListPage>;
  /** Returns whether an object was removed. */
  delete(key: string, options?: { signal?: AbortSignal }): Promise<boolean>;
  /**
   * Uploads started and never completed (only with `flags.incompleteUploads`). A put still running
   * is listed too: filter on `startedAt` before aborting.
   */
  listIncomplete?(options?: ListIncompleteOptions): AsyncIterable<IncompleteUpload>;
  /** Removes one incomplete upload. */
  abortIncomplete?(upload: IncompleteUpload): Promise<void>;
  /**
   * Optional: the SHA-256 of the object's bytes, computed where that is cheaper than hashing `get()`'s stream
   * (local disk reads into one reused buffer: no fresh buffer per chunk). Callers fall back to `get()` without it.
   * Throws `StorageError` `NOT_FOUND` if absent.
   */
  sha256?(key: string, options?: { signal?: AbortSignal }): Promise<{ sha256: string; bytes: number }>;
  close?(): Promise<void>;
}

/** A storage provider: builds a driver for a profile from its settings. */
export interface StorageProvider<Settings = Record<string, unknown>> {
  readonly name: string;
  create(settings: Settings, context: { readonly profile: string; readonly cwd: string }): StorageDriver;
}

/**
 * Storage failures. `code` is stable: `NOT_FOUND`, `ALREADY_EXISTS`, `ACCESS_DENIED`, `BUCKET_NOT_FOUND`,
 * `TRANSIENT` (retries exhausted), `ABORTED`, `INVALID_KEY`, `INVALID_RANGE` (range starts at or past
 * the end), `CONFIG`, `IO` (including a body cut short).
 */
export class StorageError extends KoanError {
  readonly profile: string | undefined;
  readonly key: string | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; profile?: string; key?: string } = {}) {
    super(code, message, { cause: options.cause, details: { profile: options.profile, key: options.key } });
    this.profile = options.profile;
    this.key = options.key;
  }
}

const BAD_KEY = /(^\/)|(\/\/)|(\/$)|(^|\/)\.\.?(\/|$)|[\0\\]/;

/** Rejects keys that could escape a root or mean different things on different backends. */
export function assertKey(key: string, profile?: string): void {
  if (!key || key.length > 1024 || BAD_KEY.test(key))
    throw new StorageError(
      'INVALID_KEY',
      `Invalid storage key ${JSON.stringify(key)}: use a relative /-separated path without '.', '..', '//', a trailing '/' or backslashes.`,
      {
        profile,
        key,
      },
    );
}

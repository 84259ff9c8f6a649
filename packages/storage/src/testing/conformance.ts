import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageDriver } from '../driver.js';
import { StorageError } from '../driver.js';

export interface StorageConformanceOptions {
  /** Suite title, e.g. `local` or `s3 (s3rver)`. */
  readonly name: string;
  /** Builds the driver under test once for the suite. */
  readonly create: () => Promise<StorageDriver>;
  /** Tears down what `create` started (servers, temp dirs). */
  readonly destroy?: (driver: StorageDriver) => Promise<void>;
  /** Skip the suite: `true` or the reason. */
  readonly skip?: boolean | string;
  /** Size of the multi-chunk body. Keep above the driver's part/block size. @default 6 MiB + 123 */
  readonly largeBytes?: number;
  /** Where a failing body fails. Put it past the first part so multipart cleanup is exercised. @default 6 MiB */
  readonly failAfterBytes?: number;
  /**
   * Why the backend does not list in byte order, when it does not (s3rver). The listing test then
   * checks completeness and uniqueness only. Real S3, Azure and the local driver list in byte order.
   */
  readonly unorderedListing?: string;
  /** Extra tests run with the same driver. */
  readonly additionalTests?: (ctx: { driver: () => StorageDriver; prefix: string }) => void;
}

const MiB = 1024 * 1024;

/** Deterministic bytes: chunk `i` of `size`, reproducible without keeping anything in memory. */
export function patternChunk(i: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (i + 1) * 2654435761;
  for (let j = 0; j < size; j++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[j] = x >>> 24;
  }
  return b;
}

/** An async generator of `total` pattern bytes in `chunk`-sized pieces. */
export async function* patternBody(total: number, chunk = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0, left = total; left > 0; i++, left -= chunk) yield patternChunk(i, Math.min(chunk, left));
}

/** SHA-256 and length of a stream, read to the end. */
export async function digest(stream: Readable | AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Uint8Array);
    size += (chunk as Uint8Array).byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

async function* bytes(...parts: (string | Uint8Array)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield typeof p === 'string' ? Buffer.from(p) : p;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    return e as StorageError;
  }
  throw new Error('expected the operation to fail');
}

/** What every group of the suite works with. */
interface Suite {
  /** The driver under test (created in `beforeAll`). */
  readonly d: () => StorageDriver;
  /** A key under this run's prefix. */
  readonly k: (name: string) => string;
  readonly options: StorageConformanceOptions;
  readonly largeBytes: number;
  readonly failAfter: number;
}

/**
 * The storage contract as tests. Every driver runs this same suite against a real backend.
 *
 * @example
 * describeStorageConformance({ name: 'local', create: async () => createLocalStorage({ root: dir }) });
 */
export function describeStorageConformance(options: StorageConformanceOptions): void {
  const run = randomUUID().slice(0, 8);
  const prefix = `conformance-${run}/`;
  let driver: StorageDriver | undefined;
  const suite: Suite = {
    d: () => {
      if (!driver) throw new Error('driver not created');
      return driver;
    },
    k: (name: string) => prefix + name,
    options,
    largeBytes: options.largeBytes ?? 6 * MiB + 123,
    failAfter: options.failAfterBytes ?? 6 * MiB,
  };

  describe.skipIf(Boolean(options.skip))(`storage conformance: ${options.name}`, () => {
    beforeAll(async () => {
      driver = await options.create();
    });
    afterAll(async () => {
      if (!driver) return;
      await driver.close?.();
      await options.destroy?.(driver);
    });
    roundTrips(suite);
    atomicPuts(suite);
    rangedReads(suite);
    listings(suite);
    lookupsAndDeletes(suite);
    errorsAndCancellation(suite);
    options.additionalTests?.({ driver: suite.d, prefix });
  });
}

/** Bytes in, the same bytes out: small, empty, multi-chunk, overwritten. */
function roundTrips({ d, k, largeBytes }: Suite): void {
  it('round-trips bytes and reports them in put, head and get', async () => {
    const info = await d().put(k('hello.txt'), bytes('hello ', 'world'), { contentType: 'text/plain' });
    expect(info).toMatchObject({ key: k('hello.txt'), size: 11 });
    expect((await readAll(await d().get(k('hello.txt')))).toString()).toBe('hello world');
    const head = await d().head(k('hello.txt'));
    expect(head).toMatchObject({ key: k('hello.txt'), size: 11 });
    expect(head?.lastModified).toBeInstanceOf(Date);
  });

  it('stores an empty object', async () => {
    expect((await d().put(k('empty'), bytes())).size).toBe(0);
    expect(await readAll(await d().get(k('empty')))).toHaveLength(0);
    expect((await d().head(k('empty')))?.size).toBe(0);
  });

  it('streams a multi-chunk body from an async generator', async () => {
    const expected = await digest(patternBody(largeBytes));
    const info = await d().put(k('large.bin'), patternBody(largeBytes));
    expect(info.size).toBe(largeBytes);
    expect(await digest(await d().get(k('large.bin')))).toEqual(expected);
  });

  it('overwrites an existing key', async () => {
    await d().put(k('over.txt'), bytes('first version'));
    const info = await d().put(k('over.txt'), bytes('v2'));
    expect(info.size).toBe(2);
    expect((await readAll(await d().get(k('over.txt')))).toString()).toBe('v2');
    expect((await d().head(k('over.txt')))?.size).toBe(2);
  });
}

/** A put that fails, is aborted or is refused (`ifNoneMatch`) publishes nothing. */
function atomicPuts({ d, k, failAfter }: Suite): void {
  it('publishes nothing when the body fails midway (put atomicity)', async () => {
    const key = k('atomic/failing.bin');
    async function* failing() {
      yield* patternBody(failAfter);
      throw new Error('source broke');
    }
    await rejection(d().put(key, failing()));
    await expectNothingLeft(d(), key, k('atomic/'));
  });

  it('publishes nothing when the AbortSignal fires midway', async () => {
    const key = k('atomic/aborted.bin');
    const controller = new AbortController();
    async function* slow() {
      let sent = 0;
      for (let i = 0; ; i++) {
        const chunk = patternChunk(i, 256 * 1024);
        sent += chunk.length;
        if (sent > failAfter) controller.abort(new Error('user cancelled'));
        yield chunk;
        if (i > 10_000) throw new Error('abort was ignored');
      }
    }
    const err = await rejection(d().put(key, slow(), { signal: controller.signal }));
    expect(err.code).toBe('ABORTED');
    await expectNothingLeft(d(), key, k('atomic/'));
  });

  it('refuses to overwrite with ifNoneMatch (conditional put)', async (ctx) => {
    if (!d().flags.conditionalPut) ctx.skip();
    await d().put(k('once.txt'), bytes('original'), { ifNoneMatch: true });
    const err = await rejection(d().put(k('once.txt'), bytes('replacement'), { ifNoneMatch: true }));
    expect(err.code).toBe('ALREADY_EXISTS');
    expect((await readAll(await d().get(k('once.txt')))).toString()).toBe('original');
  });
}

/** Ranges: HTTP semantics, the end clamped, a start past the end refused, across chunk boundaries. */
function rangedReads({ d, k }: Suite): void {
  it('serves ranged reads', async () => {
    await d().put(k('range.txt'), bytes('0123456789'));
    expect((await readAll(await d().get(k('range.txt'), { range: { start: 2, end: 5 } }))).toString()).toBe('2345');
    expect((await readAll(await d().get(k('range.txt'), { range: { start: 7 } }))).toString()).toBe('789');
    expect((await readAll(await d().get(k('range.txt'), { range: { start: 0, end: 0 } }))).toString()).toBe('0');
    expect((await readAll(await d().get(k('range.txt'), { range: { start: 8, end: 99 } }))).toString()).toBe('89');
    const err = await rejection(d().get(k('range.txt'), { range: { start: 10 } }));
    expect(err.code).toBe('INVALID_RANGE');
  });

  it('serves a range from the middle of a multi-chunk object', async () => {
    const start = 5 * MiB - 7;
    const whole = await readAll(await d().get(k('large.bin')));
    const part = await readAll(await d().get(k('large.bin'), { range: { start, end: start + 99_999 } }));
    expect(part.equals(whole.subarray(start, start + 100_000))).toBe(true);
  });
}

/** Listing by prefix: key order, paging, each object once, and an early stop. */
function listings({ d, k, options }: Suite): void {
  it('lists by prefix in key order, page by page, each object once', async () => {
    const base = k('list/');
    const keys = Array.from({ length: 25 }, (_, i) => `${base}item-${String(i).padStart(2, '0')}`);
    const extra = [`${base}a/b/deep`, `${base}a-`, `${base}a/c`, `${base}z`];
    const outside = [k('list-x'), k('lis')];
    await Promise.all([...keys, ...extra, ...outside].map((key) => d().put(key, bytes(key))));
    const all = await collect(d().list(base, { pageSize: 7 }));
    const expected = [...keys, ...extra].sort(byBytes);
    if (options.unorderedListing) expect(all.map((o) => o.key).sort(byBytes)).toEqual(expected);
    else expect(all.map((o) => o.key)).toEqual(expected);
    expect(all.every((o) => o.size === Buffer.byteLength(o.key))).toBe(true);
    const items = await collect(d().list(`${base}item-1`, { pageSize: 3 }));
    expect(items.map((o) => o.key).sort(byBytes)).toEqual(keys.slice(10, 20));
    expect(await collect(d().list(k('nothing-here/')))).toEqual([]);
  });

  it('listPage, where offered, hands out the objects of list() page by page, each once', async (ctx) => {
    const driver = d();
    if (!driver.listPage) return ctx.skip();
    const base = k('list/');
    const listed = (await collect(driver.list(base))).map((o) => o.key);
    const paged: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await driver.listPage(base, { pageSize: 7, token });
      expect(page.objects.length).toBeLessThanOrEqual(7);
      paged.push(...page.objects.map((o) => o.key));
      token = page.next;
    } while (token !== undefined && ++pages < 100);
    expect(pages).toBeGreaterThan(1);
    expect(paged).toEqual(listed);
  });

  it('stops listing when the consumer breaks', async () => {
    let n = 0;
    for await (const _ of d().list(k('list/'), { pageSize: 2 })) if (++n === 3) break;
    expect(n).toBe(3);
  });
}

/** `head`, `delete` and `sha256`. */
function lookupsAndDeletes({ d, k, largeBytes }: Suite): void {
  it('head returns undefined for a missing key', async () => {
    expect(await d().head(k('missing'))).toBeUndefined();
  });

  it('deletes and reports whether something was removed', async () => {
    await d().put(k('del/x.txt'), bytes('x'));
    expect(await d().delete(k('del/x.txt'))).toBe(true);
    expect(await d().delete(k('del/x.txt'))).toBe(false);
    expect(await d().head(k('del/x.txt'))).toBeUndefined();
    expect(await collect(d().list(k('del/')))).toEqual([]);
  });

  it('sha256, where offered, hashes exactly the bytes get() returns; NOT_FOUND for a missing key', async (ctx) => {
    const driver = d();
    if (!driver.sha256) return ctx.skip();
    const body = await digest(patternBody(largeBytes + 4321));
    await driver.put(k('hashed.bin'), patternBody(largeBytes + 4321));
    expect(await driver.sha256(k('hashed.bin'))).toEqual({ sha256: body.sha256, bytes: body.size });
    await driver.put(k('hashed-empty'), bytes());
    expect(await driver.sha256(k('hashed-empty'))).toEqual({ sha256: createHash('sha256').digest('hex'), bytes: 0 });
    expect((await rejection(driver.sha256(k('nope.bin')))).code).toBe('NOT_FOUND');
    const aborted = new AbortController();
    aborted.abort();
    expect((await rejection(driver.sha256(k('hashed.bin'), { signal: aborted.signal }))).code).toBe('ABORTED');
  });
}

/** Missing keys, invalid keys, copies handed out, and a signal aborted before the call. */
function errorsAndCancellation({ d, k }: Suite): void {
  it('fails reads of missing keys with NOT_FOUND naming profile and key', async () => {
    const err = await rejection(d().get(k('nope.bin')));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.key).toBe(k('nope.bin'));
    expect(typeof err.profile).toBe('string');
  });

  it('rejects invalid keys', async () => {
    for (const key of ['', '/abs', 'a//b', '../up', 'a/../b', 'a/./b', 'back\\slash', 'nul\0', 'folder/']) {
      expect((await rejection(d().put(key, bytes('x')))).code).toBe('INVALID_KEY');
      expect((await rejection(d().get(key))).code).toBe('INVALID_KEY');
      expect((await rejection(d().head(key))).code).toBe('INVALID_KEY');
      expect((await rejection(d().delete(key))).code).toBe('INVALID_KEY');
    }
  });

  it('what get hands out is a copy: changing it does not change the stored object', async () => {
    await d().put(k('copy/one.bin'), bytes('original'));
    for await (const chunk of await d().get(k('copy/one.bin'))) (chunk as Buffer).fill(0x21);
    expect((await readAll(await d().get(k('copy/one.bin')))).toString()).toBe('original');
  });

  it('a signal aborted before get or list fails them with ABORTED (a StorageError, like put)', async () => {
    await d().put(k('abort/one.bin'), bytes('x'));
    const aborted = new AbortController();
    aborted.abort();
    expect((await rejection(d().get(k('abort/one.bin'), { signal: aborted.signal }))).code).toBe('ABORTED');
    const listing = (async () => {
      for await (const _ of d().list(k('abort/'), { signal: aborted.signal })) {
        /* nothing is listed */
      }
    })();
    expect((await rejection(listing)).code).toBe('ABORTED');
  });
}

/** After a failed put: no object, nothing listed, and no incomplete upload once cleaned up. */
export async function expectNothingLeft(driver: StorageDriver, key: string, listPrefix: string): Promise<void> {
  expect(await driver.head(key)).toBeUndefined();
  expect((await collect(driver.list(listPrefix))).map((o) => o.key)).not.toContain(key);
  if (driver.flags.incompleteUploads && driver.listIncomplete && driver.abortIncomplete) {
    for await (const upload of driver.listIncomplete()) if (upload.key === key) await driver.abortIncomplete(upload);
    const left = (await collect(driver.listIncomplete())).filter((u) => u.key === key);
    expect(left).toEqual([]);
  }
}

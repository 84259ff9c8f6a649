/**
 * The driver kit: each layer on its own, and the layers stacked as the remote drivers stack them, over the memory
 * and local drivers (the whole conformance suite runs through the stack).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createLocalStorage,
  createMemoryStorage,
  decorate,
  type ListPage,
  mapErrors,
  type ObjectInfo,
  prefixed,
  type StorageDriver,
  StorageError,
  TEMP_DIR,
  validated,
  withRetry,
} from '../src/index.js';
import { describeStorageConformance, readAll } from '../src/testing/index.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A transient failure as a network gives one. */
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const isReset = (e: unknown) => (e as { code?: string })?.code === 'ECONNRESET';

/** `inner` with pages: `listPage` cuts `list` after the key named by the token. */
function withPages(inner: StorageDriver): StorageDriver {
  const listPage = async (prefix: string, o: { token?: string; pageSize?: number } = {}): Promise<ListPage> => {
    const objects: ObjectInfo[] = [];
    for await (const item of inner.list(prefix)) {
      if (o.token !== undefined && item.key <= o.token) continue;
      if (objects.length === (o.pageSize ?? 1000)) return { objects, next: objects.at(-1)!.key };
      objects.push(item);
    }
    return { objects };
  };
  return { ...decorate(inner, {}), listPage };
}

/** `inner`, counting calls, with the calls named in `failures` failing with a reset that many times first. */
function flaky(inner: StorageDriver, failures: Record<string, number>) {
  const calls: Record<string, number> = {};
  const hit = (op: string) => {
    calls[op] = (calls[op] ?? 0) + 1;
    if ((failures[op] ?? 0) > 0) {
      failures[op]!--;
      throw reset();
    }
  };
  /** `fn`, counted (and failing first, as set) as `op`. */
  const counted =
    <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      hit(op);
      return fn(...args);
    };
  const driver = decorate(inner, {
    put: counted('put', (k, b, o) => inner.put(k, b, o)),
    get: counted('get', (k, o) => inner.get(k, o)),
    head: counted('head', (k, o) => inner.head(k, o)),
    delete: counted('delete', (k, o) => inner.delete(k, o)),
    listPage: counted('listPage', (p, o) => inner.listPage!(p, o)),
    async *list(p, o) {
      let n = 0;
      for await (const item of inner.list(p, o)) {
        if (n++ === 1) hit('list-second-item');
        yield item;
      }
    },
    abortIncomplete: counted('abortIncomplete', (u) => inner.abortIncomplete!(u)),
  });
  return { driver, calls };
}

const fast = { retries: 3, baseDelayMs: 1, maxDelayMs: 2 };

const identity = (e: unknown, ctx: { key?: string; action: string }) =>
  e instanceof StorageError
    ? e
    : new StorageError(isReset(e) ? 'TRANSIENT' : 'IO', `${ctx.action} ${JSON.stringify(ctx.key)} failed`, {
        key: ctx.key,
        cause: e,
      });

/** The stack of the remote drivers, over `backend`. */
const stack = (backend: StorageDriver, prefix: string) =>
  validated(mapErrors(prefixed(withRetry(backend, isReset, fast), prefix, { profile: 'kit' }), identity), {
    profile: 'kit',
  });

describeStorageConformance({
  name: 'kit layers over memory (validated, mapErrors, prefixed, withRetry, pages)',
  create: async () => stack(withPages(createMemoryStorage({ profile: 'kit' })), 'tenant'),
});

describeStorageConformance({
  name: 'kit layers over local disk',
  create: async () => {
    const dir = await mkdtemp(join(tmpdir(), 'koan-kit-'));
    dirs.push(dir);
    return stack(createLocalStorage({ root: dir, fsync: false, profile: 'kit' }), 'tenant/a');
  },
});

describe('withRetry', () => {
  it('retries reads and deletes while the failure is transient', async () => {
    const memory = withPages(createMemoryStorage());
    await memory.put('a', [Buffer.from('A')]);
    const { driver, calls } = flaky(memory, { get: 2, head: 1, delete: 3 });
    const retried = withRetry(driver, isReset, fast);
    expect((await readAll(await retried.get('a'))).toString()).toBe('A');
    expect((await retried.head('a'))?.size).toBe(1);
    expect(await retried.delete('a')).toBe(true);
    expect(calls).toMatchObject({ get: 3, head: 2, delete: 4 });
  });

  it('gives up after `retries`, and at once on a failure that is not transient', async () => {
    const { driver, calls } = flaky(createMemoryStorage(), { head: 10 });
    await expect(withRetry(driver, isReset, fast).head('a')).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(calls.head).toBe(4);
    const never = flaky(createMemoryStorage(), { head: 10 });
    await expect(withRetry(never.driver, () => false, fast).head('a')).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(never.calls.head).toBe(1);
  });

  it('retries a failed page of a listing under way: every object once', async () => {
    const memory = withPages(createMemoryStorage());
    for (const key of ['p/1', 'p/2', 'p/3', 'p/4', 'p/5']) await memory.put(key, [Buffer.from(key)]);
    const failures = { listPage: 0 };
    const { driver, calls } = flaky(memory, failures);
    const keys: string[] = [];
    for await (const o of withRetry(driver, isReset, fast).list('p/', { pageSize: 2 })) {
      keys.push(o.key);
      if (keys.length === 2) failures.listPage = 2; // the second page fails twice
    }
    expect(keys).toEqual(['p/1', 'p/2', 'p/3', 'p/4', 'p/5']);
    expect(calls.listPage).toBe(5);
  });

  it('a listing without pages is retried only until its first item (never listing an item twice)', async () => {
    const memory = createMemoryStorage();
    for (const key of ['q/1', 'q/2']) await memory.put(key, [Buffer.from(key)]);
    const { driver } = flaky(memory, { 'list-second-item': 1 });
    const keys: string[] = [];
    const listing = (async () => {
      for await (const o of withRetry(driver, isReset, fast).list('q/')) keys.push(o.key);
    })();
    await expect(listing).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(keys).toEqual(['q/1']);
  });

  it('passes put and abortIncomplete through: their drivers retry their own requests', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'koan-kit-'));
    dirs.push(dir);
    const { driver, calls } = flaky(createLocalStorage({ root: dir, fsync: false }), { put: 1, abortIncomplete: 1 });
    const retried = withRetry(driver, isReset, fast);
    await expect(retried.put('x', [Buffer.from('x')])).rejects.toMatchObject({ code: 'ECONNRESET' });
    await expect(retried.abortIncomplete!({ key: 'x', startedAt: new Date(), handle: 'h' })).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    expect(calls).toMatchObject({ put: 1, abortIncomplete: 1 });
  });
});

describe('prefixed', () => {
  it('keeps every key under the prefix, and hands keys back without it', async () => {
    const memory = createMemoryStorage();
    const tenant = prefixed(memory, 'tenant-42');
    expect(await tenant.put('a/b.txt', [Buffer.from('hi')])).toMatchObject({ key: 'a/b.txt', size: 2 });
    expect((await memory.head('tenant-42/a/b.txt'))?.size).toBe(2);
    expect(await tenant.head('a/b.txt')).toMatchObject({ key: 'a/b.txt' });
    const listed: string[] = [];
    for await (const o of tenant.list('a/')) listed.push(o.key);
    expect(listed).toEqual(['a/b.txt']);
    await memory.put('elsewhere.txt', [Buffer.from('x')]);
    const all: string[] = [];
    for await (const o of tenant.list('')) all.push(o.key);
    expect(all).toEqual(['a/b.txt']);
  });

  it('a StorageError from below names the key as the caller gave it', async () => {
    const error = await prefixed(createMemoryStorage({ profile: 'm' }), 'tenant')
      .get('missing.bin')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NOT_FOUND', key: 'missing.bin', profile: 'm' });
    expect((error as Error).message).toContain('"missing.bin"');
    expect((error as Error).message).not.toContain('tenant/');
  });

  it('lists only the incomplete uploads under the prefix, without it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'koan-kit-'));
    dirs.push(dir);
    const local = createLocalStorage({ root: dir, fsync: false });
    await mkdir(join(dir, TEMP_DIR), { recursive: true });
    for (const key of ['tenant/left.bin', 'other/left.bin'])
      await writeFile(join(dir, TEMP_DIR, `0000~${Buffer.from(key).toString('base64url')}`), 'x');
    const uploads = [];
    for await (const u of prefixed(local, 'tenant').listIncomplete!()) uploads.push(u);
    expect(uploads.map((u) => u.key)).toEqual(['left.bin']);
    await prefixed(local, 'tenant').abortIncomplete!(uploads[0]!);
    const left = [];
    for await (const u of local.listIncomplete!()) left.push(u.key);
    expect(left).toEqual(['other/left.bin']);
  });

  it('refuses a prefix that is not a valid key path (CONFIG)', () => {
    for (const bad of ['/abs', 'a//b', '../up', 'a\\b'])
      expect(() => prefixed(createMemoryStorage(), bad)).toThrow(expect.objectContaining({ code: 'CONFIG' }));
  });
});

describe('validated and mapErrors', () => {
  it('refuse a bad key, a bad range or an aborted signal before the driver is called', async () => {
    const { driver, calls } = flaky(createMemoryStorage(), {});
    const checked = validated(driver, { profile: 'v' });
    await expect(checked.get('../up')).rejects.toMatchObject({ code: 'INVALID_KEY', profile: 'v' });
    await expect(checked.get('a', { range: { start: -1 } })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    await expect(checked.get('a', { range: { start: 5, end: 2 } })).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    const aborted = AbortSignal.abort(new Error('stop'));
    const body = Readable.from([Buffer.from('x')]);
    await expect(checked.put('a', body, { signal: aborted })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(body.destroyed).toBe(true);
    await expect(checked.head('a', { signal: aborted })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(calls).toEqual({});
  });

  it('mapErrors turns every other failure into a StorageError naming the key and what was done', async () => {
    const { driver } = flaky(createMemoryStorage(), { head: 1, get: 1 });
    const mapped = mapErrors(driver, identity);
    await expect(mapped.head('k')).rejects.toMatchObject({
      code: 'TRANSIENT',
      key: 'k',
      message: 'Reading "k" failed',
    });
    // A StorageError is the map's to keep: the identity map above returns it as it is.
    await expect(mapped.get('k')).rejects.toMatchObject({ code: 'TRANSIENT' });
    await expect(mapped.get('k')).rejects.toMatchObject({ code: 'NOT_FOUND', key: 'k' });
  });
});

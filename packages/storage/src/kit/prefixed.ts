import { Readable } from 'node:stream';
import { assertKey, type ObjectInfo, type StorageDriver, StorageError } from '../driver.js';
import { decorate, mapIteration } from './decorate.js';

/** `backups` and `backups/` both mean the folder `backups/`; '' means none. */
export function normalizePrefix(prefix: string | undefined): string {
  const p = prefix ?? '';
  return p && !p.endsWith('/') ? `${p}/` : p;
}

/**
 * The objects of `driver` under `prefix` (a folder: `backups` and `backups/` are the same), as a driver of their own:
 * keys given are put under the prefix, keys returned (listings, incomplete uploads) have it taken off, and a
 * `StorageError` from below names the key as the caller gave it. A prefix that is not a valid key path is a `CONFIG`
 * error naming it.
 *
 * @example
 * const tenant = prefixed(createLocalStorage({ root: './backups' }), 'tenant-42');
 */
export function prefixed(
  driver: StorageDriver,
  prefix: string,
  options: { readonly profile?: string } = {},
): StorageDriver {
  const base = normalizePrefix(prefix);
  if (!base) return driver;
  try {
    assertKey(base.slice(0, -1), options.profile);
  } catch (e) {
    throw new StorageError(
      'CONFIG',
      `[storage] The key prefix ${JSON.stringify(prefix)} is not a valid key path: use /-separated names without '.', '..', '//', a leading '/' or backslashes`,
      { profile: options.profile, cause: e },
    );
  }
  const inner = (key: string) => base + key;
  const outer = <T extends { key: string }>(item: T): T => ({ ...item, key: item.key.slice(base.length) });
  const fix = (e: unknown) => rekey(e, base);
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw fix(e);
    }
  };
  return decorate(driver, {
    put: (key, body, o) => guard(async () => ({ ...(await driver.put(inner(key), body, o)), key })),
    get: (key, o) => guard(async () => rekeyStream(await driver.get(inner(key), o), base)),
    head: (key, o) =>
      guard(async () => {
        const info = await driver.head(inner(key), o);
        return info && { ...info, key };
      }),
    delete: (key, o) => guard(() => driver.delete(inner(key), o)),
    sha256: (key, o) => guard(() => driver.sha256!(inner(key), o)),
    list: (prefix, o) =>
      mapIteration(
        (async function* () {
          for await (const item of driver.list(inner(prefix), o)) yield outer<ObjectInfo>(item);
        })(),
        fix,
      ),
    listPage: (prefix, o) =>
      guard(async () => {
        const page = await driver.listPage!(inner(prefix), o);
        return { ...page, objects: page.objects.map(outer) };
      }),
    listIncomplete: (o = {}) =>
      mapIteration(
        (async function* () {
          for await (const upload of driver.listIncomplete!({ ...o, prefix: inner(o.prefix ?? '') })) {
            // A driver that ignores `prefix` still lists only the uploads under this one.
            if (upload.key.startsWith(base)) yield outer(upload);
          }
        })(),
        fix,
      ),
    abortIncomplete: (upload) => guard(() => driver.abortIncomplete!({ ...upload, key: inner(upload.key) })),
  });
}

/** A `StorageError` about a key under `base`, about that key as the caller named it (message and `key`). */
function rekey(e: unknown, base: string): unknown {
  if (!(e instanceof StorageError) || e.key === undefined || !e.key.startsWith(base)) return e;
  const key = e.key.slice(base.length);
  const message = e.message.split(JSON.stringify(e.key)).join(JSON.stringify(key));
  const out = new StorageError(e.code, message, { cause: e.cause, profile: e.profile, key });
  if (e.stack) out.stack = e.stack.replace(e.message, message);
  return out;
}

/** `stream`, with an error it ends with (a body cut, say) rekeyed as above. Stopping early destroys `stream`. */
function rekeyStream(stream: Readable, base: string): Readable {
  async function* pass(): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of stream) yield chunk as Uint8Array;
    } catch (e) {
      throw rekey(e, base);
    }
  }
  const out = Readable.from(pass(), { objectMode: false });
  // Destroyed before it was read: the generator never ran, so the body (a connection) is let go here.
  out.once('close', () => stream.destroy());
  return out;
}

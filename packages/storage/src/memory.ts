import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  assertKey,
  type Body,
  type GetOptions,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageDriver,
  StorageError,
  type StorageFlags,
  type StorageProvider,
} from './driver.js';
import { memorySettingsSchema } from './provider-settings.js';
import { parseSettings } from './settings.js';
import { abortError, compareKeys, resolveRange, toReadable } from './streams.js';

export const DRIVER_NAME = 'memory';

export interface MemoryStorageOptions {
  /** Profile name used in errors. @default 'memory' */
  readonly profile?: string;
}

const FLAGS: StorageFlags = Object.freeze({ rangedReads: true, conditionalPut: true, incompleteUploads: false });

interface Stored {
  readonly data: Buffer;
  readonly info: ObjectInfo;
}

/**
 * Objects in a `Map`, for tests. Unlike the other drivers it buffers a body whole and publishes it
 * when the stream ends, which is atomic by construction.
 *
 * @example
 * const storage = createMemoryStorage();
 */
export function createMemoryStorage(options: MemoryStorageOptions = {}): StorageDriver {
  const profile = options.profile ?? DRIVER_NAME;
  const objects = new Map<string, Stored>();
  const notFound = (key: string) =>
    new StorageError('NOT_FOUND', `[storage] [memory] ${JSON.stringify(key)} does not exist`, { profile, key });

  return {
    provider: DRIVER_NAME,
    flags: FLAGS,
    async put(key: string, body: Body, { signal, ifNoneMatch }: PutOptions = {}) {
      assertKey(key, profile);
      const chunks: Buffer[] = [];
      try {
        for await (const chunk of toReadable(body)) {
          signal?.throwIfAborted();
          chunks.push(Buffer.from(chunk as Uint8Array));
        }
        signal?.throwIfAborted();
      } catch (e) {
        if (signal?.aborted) throw abortError(signal, { profile, key });
        throw new StorageError(
          'IO',
          `[storage] [memory] Writing ${JSON.stringify(key)} failed: ${(e as Error).message}`,
          {
            profile,
            key,
            cause: e,
          },
        );
      }
      if (ifNoneMatch && objects.has(key))
        throw new StorageError('ALREADY_EXISTS', `[storage] [memory] ${JSON.stringify(key)} already exists`, {
          profile,
          key,
        });
      const data = Buffer.concat(chunks);
      const info: ObjectInfo = {
        key,
        size: data.length,
        lastModified: new Date(),
        etag: createHash('md5').update(data).digest('hex'),
      };
      objects.set(key, { data, info });
      return info;
    },
    async get(key: string, { range, signal }: GetOptions = {}) {
      assertKey(key, profile);
      if (signal?.aborted) throw abortError(signal, { profile, key });
      const stored = objects.get(key);
      if (!stored) throw notFound(key);
      const { start, end } = resolveRange(range, stored.data.length, profile, key);
      const bytes = start === undefined ? stored.data : stored.data.subarray(start, end + 1);
      // Copies in 1 MiB pieces (a reader cannot change the stored object), stopping when the signal aborts.
      async function* pieces(): AsyncGenerator<Buffer> {
        for (let at = 0; at < bytes.length; at += 1 << 20) {
          if (signal?.aborted) throw abortError(signal, { profile, key });
          yield Buffer.from(bytes.subarray(at, at + (1 << 20)));
        }
      }
      return Readable.from(pieces(), { objectMode: false });
    },
    async head(key: string) {
      assertKey(key, profile);
      return objects.get(key)?.info;
    },
    async *list(prefix: string, { signal, pageSize = 1000 }: ListOptions = {}) {
      let after: string | undefined;
      for (;;) {
        if (signal?.aborted) throw abortError(signal, { profile, key: prefix });
        // Page from a fresh snapshot each time, as a remote store would.
        const page = [...objects.keys()]
          .filter((k) => k.startsWith(prefix) && (after === undefined || compareKeys(k, after) > 0))
          .sort(compareKeys)
          .slice(0, pageSize);
        for (const k of page) {
          const info = objects.get(k)?.info;
          if (info) yield info;
        }
        if (page.length < pageSize) return;
        after = page[page.length - 1];
      }
    },
    async delete(key: string) {
      assertKey(key, profile);
      return objects.delete(key);
    },
  };
}

export const memoryProvider: StorageProvider = {
  name: DRIVER_NAME,
  create: (settings, { profile }) => {
    parseSettings(memorySettingsSchema, settings, { profile, provider: DRIVER_NAME });
    return createMemoryStorage({ profile });
  },
};

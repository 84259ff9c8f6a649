import { createHash, randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { link, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { addAbortSignal, type Readable } from 'node:stream';
import {
  assertKey,
  type Body,
  type GetOptions,
  type IncompleteUpload,
  type ListIncompleteOptions,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageDriver,
  StorageError,
  type StorageFlags,
  type StorageProvider,
} from './driver.js';
import { localSettingsSchema } from './provider-settings.js';
import { parseSettings } from './settings.js';
import { abortError, compareKeys, resolveRange, toReadable } from './streams.js';

export const DRIVER_NAME = 'local';

/** Directory under the root where uploads are written before they are renamed into place. */
export const TEMP_DIR = '.koan-tmp';

export interface LocalStorageOptions {
  /** Directory holding the objects; created on first write. Relative paths resolve against `cwd`. */
  readonly root: string;
  /** Base for a relative `root`. @default process.cwd() */
  readonly cwd?: string;
  /** Remove directories left empty by `delete`, up to (not including) the root. @default true */
  readonly pruneEmptyDirs?: boolean;
  /** fsync files and directories so a completed `put` survives a power cut. @default true */
  readonly fsync?: boolean;
  /** Profile name used in errors. @default 'local' */
  readonly profile?: string;
}

const HASH_READ_BYTES = 1024 * 1024;
const FLAGS: StorageFlags = Object.freeze({ rangedReads: true, conditionalPut: true, incompleteUploads: true });

/**
 * Objects as files under a root directory. `put` streams into `<root>/.koan-tmp/<uuid>~<key>`,
 * fsyncs it, renames it into place and fsyncs the directory: readers see the old file or the new
 * one, never a part. Failed or aborted puts remove their temp file; files left by a crash are
 * reported by `listIncomplete`.
 *
 * @example
 * const storage = createLocalStorage({ root: './backups' });
 * await storage.put('daily/users.zip', createReadStream('users.zip'));
 */
export function createLocalStorage(options: LocalStorageOptions): StorageDriver {
  return new LocalDiskStorage(options);
}

class LocalDiskStorage implements StorageDriver {
  readonly provider = DRIVER_NAME;
  readonly flags = FLAGS;
  readonly #root: string;
  readonly #tmp: string;
  readonly #profile: string;
  readonly #prune: boolean;
  readonly #fsync: boolean;

  constructor(options: LocalStorageOptions) {
    if (!options.root) throw new StorageError('CONFIG', `[storage] [local] Missing required option \`root\`.`);
    this.#root = resolve(options.cwd ?? process.cwd(), options.root);
    this.#tmp = join(this.#root, TEMP_DIR);
    this.#profile = options.profile ?? DRIVER_NAME;
    this.#prune = options.pruneEmptyDirs ?? true;
    this.#fsync = options.fsync ?? true;
  }

  #path(key: string): string {
    assertKey(key, this.#profile);
    if (key === TEMP_DIR || key.startsWith(`${TEMP_DIR}/`))
      throw new StorageError('INVALID_KEY', `Storage key ${JSON.stringify(key)} is reserved for temp files`, {
        profile: this.#profile,
        key,
      });
    const path = resolve(this.#root, key);
    const rel = relative(this.#root, path);
    if (!rel || rel.startsWith('..') || isAbsolute(rel))
      throw new StorageError('INVALID_KEY', `Storage key ${JSON.stringify(key)} escapes the root`, {
        profile: this.#profile,
        key,
      });
    return path;
  }

  #error(e: unknown, key: string, action: string): StorageError {
    if (e instanceof StorageError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    const ctx = { profile: this.#profile, key, cause: e };
    if (code === 'ENOENT')
      return new StorageError('NOT_FOUND', `[storage] [local] ${JSON.stringify(key)} does not exist`, ctx);
    if (code === 'EACCES' || code === 'EPERM')
      return new StorageError(
        'ACCESS_DENIED',
        `[storage] [local] ${action} ${JSON.stringify(key)}: permission denied`,
        ctx,
      );
    if (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST')
      return new StorageError(
        'IO',
        `[storage] [local] ${action} ${JSON.stringify(key)}: on local disk a key cannot also be the folder of other keys (${JSON.stringify(key)} and ${JSON.stringify(`${key}/...`)}, or a key and a key under it); choose keys that do not nest`,
        ctx,
      );
    return new StorageError(
      'IO',
      `[storage] [local] ${action} ${JSON.stringify(key)} failed: ${(e as Error).message}`,
      ctx,
    );
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<ObjectInfo> {
    const target = this.#path(key);
    const { signal } = options;
    if (signal?.aborted) {
      toReadable(body).destroy();
      throw abortError(signal, { profile: this.#profile, key });
    }
    await mkdir(this.#tmp, { recursive: true });
    const name = Buffer.from(key).toString('base64url');
    const tmp = join(this.#tmp, name.length <= 200 ? `${randomUUID()}~${name}` : randomUUID());
    let published = false;
    try {
      const fh = await open(tmp, 'wx');
      try {
        const source = signal ? addAbortSignal(signal, toReadable(body)) : toReadable(body);
        // Awaiting each write is the backpressure: the source is pulled no faster than the disk takes it.
        for await (const chunk of source) {
          const buf = chunk as Uint8Array;
          for (let off = 0; off < buf.byteLength; ) off += (await fh.write(buf, off)).bytesWritten;
        }
        if (this.#fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      await mkdir(dirname(target), { recursive: true });
      if (options.ifNoneMatch) {
        // link() refuses to replace an existing name, which makes the no-overwrite check atomic.
        try {
          await link(tmp, target);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST')
            throw new StorageError('ALREADY_EXISTS', `[storage] [local] ${JSON.stringify(key)} already exists`, {
              profile: this.#profile,
              key,
            });
          throw e;
        }
        published = true;
        await unlink(tmp);
      } else {
        await rename(tmp, target);
        published = true;
      }
      if (this.#fsync) await fsyncDir(dirname(target));
      const st = await stat(target);
      return { key, size: st.size, lastModified: st.mtime };
    } catch (e) {
      if (signal?.aborted && !published) throw abortError(signal, { profile: this.#profile, key });
      throw this.#error(e, key, 'Writing');
    } finally {
      if (!published) await unlink(tmp).catch(() => {});
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    if (options.signal?.aborted) throw abortError(options.signal, { profile: this.#profile, key });
    const { fh, size } = await this.#openFile(key);
    try {
      const range = resolveRange(options.range, size, this.#profile, key);
      const stream = fh.createReadStream({ ...range, autoClose: true });
      return options.signal ? addAbortSignal(options.signal, stream) : stream;
    } catch (e) {
      await fh.close();
      throw this.#error(e, key, 'Reading');
    }
  }

  /** Reads the file into one reused 1 MiB buffer: a stream's fresh buffer per chunk costs ~4x the time in page faults. */
  async sha256(key: string, options: { signal?: AbortSignal } = {}): Promise<{ sha256: string; bytes: number }> {
    const aborted = () => abortError(options.signal, { profile: this.#profile, key });
    if (options.signal?.aborted) throw aborted();
    const { fh } = await this.#openFile(key);
    try {
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(HASH_READ_BYTES);
      let bytes = 0;
      for (;;) {
        if (options.signal?.aborted) throw aborted();
        const { bytesRead } = await fh.read(buf, 0, buf.length, bytes);
        if (bytesRead === 0) break;
        hash.update(buf.subarray(0, bytesRead));
        bytes += bytesRead;
      }
      return { sha256: hash.digest('hex'), bytes };
    } catch (e) {
      if (e instanceof StorageError) throw e;
      throw this.#error(e, key, 'Reading');
    } finally {
      await fh.close();
    }
  }

  /** An open regular file and its size; `NOT_FOUND` for a missing key or a directory. */
  async #openFile(key: string): Promise<{ fh: Awaited<ReturnType<typeof open>>; size: number }> {
    const path = this.#path(key);
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw this.#error((e as NodeJS.ErrnoException).code === 'EISDIR' ? enoent(e) : e, key, 'Reading');
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw enoent(undefined);
      return { fh, size: st.size };
    } catch (e) {
      await fh.close();
      throw this.#error(e, key, 'Reading');
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const path = this.#path(key);
    try {
      const st = await stat(path);
      return st.isFile() ? { key, size: st.size, lastModified: st.mtime } : undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw this.#error(e, key, 'Reading');
    }
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    if (prefix) assertKey(prefix.endsWith('/') ? prefix.slice(0, -1) || 'x' : prefix, this.#profile);
    // Start at the deepest directory the prefix names; keys below it all share that path.
    const cut = prefix.lastIndexOf('/');
    const base = cut < 0 ? '' : prefix.slice(0, cut + 1);
    // Depth-first walk, one directory listing in memory per level. Directories sort as `name/`
    // so the walk yields keys in the same byte order as a flat sorted listing would.
    const stack: { dir: string; entries: { name: string; sortKey: string; isDir: boolean }[]; i: number }[] = [];
    const open = async (dir: string) => {
      let dirents: Dirent[];
      try {
        dirents = await readdir(join(this.#root, dir), { withFileTypes: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw this.#error(e, dir, 'Listing');
      }
      const entries = dirents
        .filter((d) => (d.isFile() || d.isDirectory()) && !(dir === '' && d.name === TEMP_DIR))
        .map((d) => ({ name: d.name, isDir: d.isDirectory(), sortKey: d.isDirectory() ? `${d.name}/` : d.name }))
        .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
      stack.push({ dir, entries, i: 0 });
    };
    await open(base);
    while (stack.length > 0) {
      if (options.signal?.aborted) throw abortError(options.signal, { profile: this.#profile, key: prefix });
      const top = stack[stack.length - 1]!;
      const entry = top.entries[top.i++];
      if (!entry) {
        stack.pop();
        continue;
      }
      const key = top.dir + entry.name;
      if (entry.isDir) {
        const dirKey = `${key}/`;
        if (dirKey.startsWith(prefix) || prefix.startsWith(dirKey)) await open(dirKey);
        continue;
      }
      if (!key.startsWith(prefix)) continue;
      try {
        const st = await stat(join(this.#root, key));
        yield { key, size: st.size, lastModified: st.mtime };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.#error(e, key, 'Listing');
      }
    }
  }

  async delete(key: string): Promise<boolean> {
    const path = this.#path(key);
    try {
      await unlink(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return false;
      // Linux answers EISDIR, macOS EPERM for unlink() on a directory: it is not an object either way.
      if (code === 'EPERM' && (await stat(path).catch(() => undefined))?.isDirectory()) return false;
      throw this.#error(e, key, 'Deleting');
    }
    if (this.#prune) {
      for (let dir = dirname(path); dir !== this.#root && dir.startsWith(this.#root + sep); dir = dirname(dir)) {
        try {
          await rmdir(dir);
        } catch {
          break;
        }
      }
    }
    return true;
  }

  async *listIncomplete(options: ListIncompleteOptions = {}): AsyncIterable<IncompleteUpload> {
    const prefix = options.prefix ?? '';
    let names: string[];
    try {
      names = await readdir(this.#tmp);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw this.#error(e, TEMP_DIR, 'Listing');
    }
    for (const name of names.sort()) {
      const handle = join(this.#tmp, name);
      const st = await stat(handle).catch(() => undefined);
      if (!st?.isFile()) continue;
      const encoded = name.split('~')[1];
      const key = encoded ? Buffer.from(encoded, 'base64url').toString() : '';
      if (key.startsWith(prefix)) yield { key, startedAt: st.mtime, handle };
    }
  }

  async abortIncomplete(upload: IncompleteUpload): Promise<void> {
    const handle = resolve(upload.handle);
    if (dirname(handle) !== this.#tmp)
      throw new StorageError('INVALID_KEY', `[storage] [local] ${upload.handle} is not a temp file of this storage`, {
        profile: this.#profile,
      });
    await unlink(handle).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.#error(e, upload.key, 'Removing temp file of');
    });
  }
}

function enoent(cause: unknown): NodeJS.ErrnoException {
  return Object.assign(new Error('not a file', { cause }), { code: 'ENOENT' });
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // Some platforms and file systems refuse fsync on a directory; the file itself is synced.
  } finally {
    await fh.close();
  }
}

export const localProvider: StorageProvider = {
  name: DRIVER_NAME,
  create: (settings, { profile, cwd }) =>
    createLocalStorage({
      ...parseSettings(localSettingsSchema, settings, { profile, provider: DRIVER_NAME }),
      cwd,
      profile,
    }),
};

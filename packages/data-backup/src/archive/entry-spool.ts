import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KoanError } from '@koan/data';
import { encodeEntry, resolveMethod } from './_encode.js';
import type { EntrySourceOptions, SpooledEntry } from './types.js';
import { validateEntryName } from './zip-writer.js';

export interface EntrySpoolOptions {
  /**
   * Directory for the temp file.
   * @default os.tmpdir()
   */
  dir?: string;
  /** @default 1 */
  level?: number;
  /** @default true */
  compress?: boolean;
}

/**
 * Compresses one entry into a temp file, so several entries can be compressed concurrently and then
 * appended to a single `ZipWriter` with `addSpooled`, which copies the bytes without recompressing.
 *
 * @example
 * const spool = await EntrySpool.create('entities/User.jsonl', { dir: workDir });
 * const entry = await spool.write(rows());
 * await zip.addSpooled(entry);
 * await entry.dispose();
 */
export class EntrySpool {
  readonly name: string;
  readonly path: string;
  readonly #method: 0 | 8;
  readonly #level: number;
  #file: WriteStream;
  #used = false;

  private constructor(name: string, path: string, file: WriteStream, method: 0 | 8, level: number) {
    this.name = name;
    this.path = path;
    this.#file = file;
    this.#method = method;
    this.#level = level;
  }

  static async create(name: string, options: EntrySpoolOptions = {}): Promise<EntrySpool> {
    validateEntryName(name);
    const { method, level } = resolveMethod(options);
    const path = join(options.dir ?? tmpdir(), `koan-spool-${randomBytes(8).toString('hex')}.tmp`);
    const file = createWriteStream(path, { flags: 'wx', highWaterMark: 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', reject);
    });
    return new EntrySpool(name, path, file, method, level);
  }

  /** Compresses `source` into the temp file. On failure the temp file is deleted. */
  async write(source: AsyncIterable<Uint8Array | string>, options: EntrySourceOptions = {}): Promise<SpooledEntry> {
    if (this.#used) {
      throw new KoanError('ARCHIVE_WRITER_CLOSED', `Spool for ${this.name} was already written or discarded`);
    }
    this.#used = true;
    const file = this.#file;
    let fileError: Error | undefined;
    const onError = (e: Error) => {
      fileError = e;
    };
    file.on('error', onError);
    try {
      const r = await encodeEntry(source, {
        level: this.#level,
        compress: this.#method === 8,
        signal: options.signal,
        onChunk: options.onChunk,
        emit: async (chunk) => {
          if (fileError) throw fileError;
          if (!file.write(chunk)) await waitDrain(file);
        },
      });
      await new Promise<void>((resolve, reject) => {
        file.end((e?: Error | null) => (e ? reject(e) : resolve()));
      });
      if (fileError) throw fileError;
      const path = this.path;
      return {
        name: this.name,
        method: r.method,
        path,
        uncompressedBytes: r.uncompressedBytes,
        compressedBytes: r.compressedBytes,
        crc32: r.crc32,
        sha256: r.sha256,
        storedSha256: r.storedSha256,
        lines: r.lines,
        dispose: () => rm(path, { force: true }),
      };
    } catch (e) {
      await this.#removeFile();
      throw e;
    } finally {
      file.off('error', onError);
    }
  }

  /** Deletes the temp file (also after a successful `write`, if the entry will not be added). */
  async discard(): Promise<void> {
    this.#used = true;
    await this.#removeFile();
  }

  async #removeFile(): Promise<void> {
    if (!this.#file.destroyed) {
      await new Promise<void>((resolve) => {
        this.#file.once('close', () => resolve());
        this.#file.destroy();
      });
    }
    await rm(this.path, { force: true });
  }
}

function waitDrain(file: WriteStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (e?: Error) => {
      file.off('drain', done);
      file.off('error', done);
      file.off('close', done);
      if (e) reject(e);
      else if (file.destroyed && !file.writableFinished) reject(new Error(`temp file ${file.path} was closed`));
      else resolve();
    };
    file.on('drain', done);
    file.on('error', done);
    file.on('close', done);
  });
}

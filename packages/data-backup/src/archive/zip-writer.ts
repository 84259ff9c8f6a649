import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { KoanError } from '@koan/data';
import { abortError } from '@koan/data/adapter-kit';
import { encodeEntry, resolveMethod } from './_encode.js';
import {
  type CentralRecord,
  centralHeader,
  type DosDateTime,
  dataDescriptor64,
  endOfCentralDirectory,
  localHeader,
  toDosDateTime,
} from './_format.js';
import type { EntrySourceOptions, EntryStats, SpooledEntry } from './types.js';

export interface ZipWriterOptions {
  /**
   * zlib level 0-9; 0 stores entries uncompressed.
   * @default 1
   */
  level?: number;
  /**
   * `false` stores entries uncompressed.
   * @default true
   */
  compress?: boolean;
  /**
   * Write ZIP64 records for every entry and the end of the archive even when nothing needs them (tests).
   * @default false
   */
  forceZip64?: boolean;
  /**
   * Deflate jobs (1 MiB each) in flight per entry on the libuv thread pool.
   * @default min(4, os.availableParallelism())
   */
  parallelism?: number;
  /**
   * Modification time recorded for every entry (DOS time, local zone).
   * @default new Date()
   */
  mtime?: Date;
}

const MAX_NAME_BYTES = 0xffff;

export function validateEntryName(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  if (
    name.length === 0 ||
    bytes.length > MAX_NAME_BYTES ||
    name.startsWith('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    name.split('/').some((s) => s === '..' || s === '.' || s === '')
  ) {
    throw new KoanError(
      'ARCHIVE_INVALID_NAME',
      `Invalid archive entry name ${JSON.stringify(name)}: use a relative path of '/'-separated, non-empty segments without '.' or '..'`,
      { details: { entry: name } },
    );
  }
  return bytes;
}

/**
 * Streaming ZIP (ZIP64-capable) writer. Entries are written one after another to `output`;
 * calls made while an entry is being written wait their turn.
 *
 * @example
 * const zip = new ZipWriter();
 * const done = pipeline(zip.output, createWriteStream('backup.zip'));
 * await zip.addEntry('entities/User.jsonl', rows());
 * await zip.addBuffer('manifest.json', JSON.stringify(manifest));
 * await zip.finish();
 * await done;
 */
export class ZipWriter {
  /** The archive bytes. Reading slowly slows the entry sources down (backpressure). */
  readonly output: Readable;
  readonly #method: 0 | 8;
  readonly #level: number;
  readonly #forceZip64: boolean;
  readonly #parallelism: number | undefined;
  readonly #dos: DosDateTime;
  readonly #records: CentralRecord[] = [];
  readonly #names = new Set<string>();
  readonly #sha = createHash('sha256');
  #offset = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #failure: Error | undefined;
  #finishing = false;
  #ended = false;
  #waiter: { resolve: () => void; reject: (e: Error) => void } | undefined;

  constructor(options: ZipWriterOptions = {}) {
    const { method, level } = resolveMethod(options);
    this.#method = method;
    this.#level = level;
    this.#forceZip64 = options.forceZip64 ?? false;
    this.#parallelism = options.parallelism;
    this.#dos = toDosDateTime(options.mtime ?? new Date());
    this.output = new Readable({
      highWaterMark: 256 * 1024,
      read: () => {
        const w = this.#waiter;
        this.#waiter = undefined;
        w?.resolve();
      },
      destroy: (err, cb) => {
        if (err || !this.#ended) {
          this.#fail(err ?? new KoanError('ABORTED', 'The archive output was closed before the archive was finished'));
        }
        cb(err);
      },
    });
  }

  /** Bytes emitted so far. */
  get bytesWritten(): number {
    return this.#offset;
  }

  /**
   * Adds an entry from text or bytes; counts `\n`-terminated lines (`onChunk` hears them as they are counted).
   * Rejects (and fails the writer) if `source` throws.
   */
  addEntry(
    name: string,
    source: AsyncIterable<Uint8Array | string>,
    options: EntrySourceOptions = {},
  ): Promise<EntryStats> {
    let nameBytes: Buffer;
    try {
      nameBytes = this.#claim(name);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#enqueue(async () => {
      const { signal } = options;
      if (signal?.aborted) throw this.#fail(abortError(signal));
      const onAbort = () => this.#fail(abortError(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        const localHeaderOffset = this.#offset;
        const { header, flags } = localHeader(nameBytes, this.#method, this.#dos, undefined, this.#forceZip64);
        await this.#emit(header);
        const r = await encodeEntry(source, {
          level: this.#level,
          compress: this.#method === 8,
          parallelism: this.#parallelism,
          signal,
          onChunk: options.onChunk,
          emit: (c) => this.#emit(c),
        });
        await this.#emit(dataDescriptor64(r.crc32, r.compressedBytes, r.uncompressedBytes));
        this.#records.push({
          nameBytes,
          flags,
          method: r.method,
          dos: this.#dos,
          crc32: r.crc32,
          compressedSize: r.compressedBytes,
          uncompressedSize: r.uncompressedBytes,
          localHeaderOffset,
          zip64Local: true,
        });
        return {
          name,
          uncompressedBytes: r.uncompressedBytes,
          compressedBytes: r.compressedBytes,
          crc32: r.crc32,
          sha256: r.sha256,
          storedSha256: r.storedSha256,
          lines: r.lines,
        };
      } catch (e) {
        throw this.#fail(this.#failure ?? toError(e));
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    });
  }

  addBuffer(name: string, data: Uint8Array | string): Promise<EntryStats> {
    return this.addEntry(name, oneChunk(data));
  }

  /** Appends an entry compressed earlier by `EntrySpool`, copying its bytes without recompression. */
  addSpooled(spool: SpooledEntry): Promise<EntryStats> {
    let nameBytes: Buffer;
    try {
      nameBytes = this.#claim(spool.name);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#enqueue(async () => {
      try {
        const localHeaderOffset = this.#offset;
        const known = {
          crc32: spool.crc32,
          compressedSize: spool.compressedBytes,
          uncompressedSize: spool.uncompressedBytes,
        };
        const { header, flags, zip64 } = localHeader(nameBytes, spool.method, this.#dos, known, this.#forceZip64);
        await this.#emit(header);
        let copied = 0;
        const stored = createHash('sha256');
        for await (const chunk of createReadStream(spool.path, { highWaterMark: 1024 * 1024 })) {
          copied += (chunk as Buffer).length;
          stored.update(chunk as Buffer);
          await this.#emit(chunk as Buffer);
        }
        const changed =
          copied !== spool.compressedBytes
            ? `holds ${copied} bytes, expected ${spool.compressedBytes}`
            : stored.digest('hex') !== spool.storedSha256
              ? 'changed after it was written (its SHA-256 differs)'
              : undefined;
        if (changed)
          throw new KoanError('ARCHIVE_CORRUPT', `Spooled entry ${spool.name}: temp file ${spool.path} ${changed}`, {
            details: { entry: spool.name },
          });
        this.#records.push({
          nameBytes,
          flags,
          method: spool.method,
          dos: this.#dos,
          localHeaderOffset,
          zip64Local: zip64,
          ...known,
        });
        const stats: EntryStats = {
          name: spool.name,
          uncompressedBytes: spool.uncompressedBytes,
          compressedBytes: spool.compressedBytes,
          crc32: spool.crc32,
          sha256: spool.sha256,
          storedSha256: spool.storedSha256,
        };
        if (spool.lines !== undefined) stats.lines = spool.lines;
        return stats;
      } catch (e) {
        throw this.#fail(this.#failure ?? toError(e));
      }
    });
  }

  /** Writes the central directory (ZIP64 records when needed) and ends `output`. */
  finish(): Promise<{ bytes: number; sha256: string }> {
    if (this.#finishing) return Promise.reject(closedError('finish'));
    this.#finishing = true;
    return this.#enqueue(async () => {
      try {
        const cdOffset = this.#offset;
        let cd: Buffer[] = [];
        let pending = 0;
        for (const r of this.#records) {
          const h = centralHeader(r, this.#forceZip64);
          cd.push(h);
          pending += h.length;
          if (pending >= 256 * 1024) {
            await this.#emit(Buffer.concat(cd));
            cd = [];
            pending = 0;
          }
        }
        if (cd.length > 0) await this.#emit(Buffer.concat(cd));
        await this.#emit(
          endOfCentralDirectory(this.#records.length, cdOffset, this.#offset - cdOffset, this.#forceZip64),
        );
        this.#ended = true;
        this.output.push(null);
        return { bytes: this.#offset, sha256: this.#sha.digest('hex') };
      } catch (e) {
        throw this.#fail(this.#failure ?? toError(e));
      }
    });
  }

  /** Destroys `output` with `error`; pending and later calls reject. */
  abort(error: Error): void {
    this.#fail(error);
  }

  #claim(name: string): Buffer {
    if (this.#finishing) throw closedError(`add ${name}`);
    const bytes = validateEntryName(name);
    if (this.#names.has(name)) {
      throw new KoanError('ARCHIVE_DUPLICATE_ENTRY', `The archive already has an entry named ${name}`, {
        details: { entry: name },
      });
    }
    this.#names.add(name);
    return bytes;
  }

  #enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(() => {
      if (this.#failure) throw this.#failure;
      return task();
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  #fail(error: Error): Error {
    if (this.#failure) return this.#failure;
    this.#failure = error;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(error);
    if (!this.output.destroyed) this.output.destroy(error);
    return error;
  }

  async #emit(chunk: Buffer): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#sha.update(chunk);
    this.#offset += chunk.length;
    if (this.output.push(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }
}

async function* oneChunk(data: Uint8Array | string): AsyncGenerator<Uint8Array | string> {
  yield data;
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function closedError(what: string): KoanError {
  return new KoanError('ARCHIVE_WRITER_CLOSED', `Cannot ${what}: the archive writer is already finished`);
}

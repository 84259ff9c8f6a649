import { type FileHandle, open } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { StorageDriver } from '@koan/storage';
import type { RandomAccessSource } from './types.js';

/** A local file as a `RandomAccessSource`; all ranged reads share one file descriptor (positional reads). */
export async function fileSource(path: string): Promise<RandomAccessSource> {
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (e) {
    await handle.close();
    throw e;
  }
  let closed = false;
  return {
    size,
    read(start, endExclusive) {
      if (closed) throw new Error(`fileSource(${path}) is closed`);
      if (endExclusive <= start) return Readable.from([]);
      return new FileRangeReadable(handle, start, Math.min(endExclusive, size));
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

const READ_CHUNK = 1024 * 1024;

/**
 * Positional reads of `[start, end)` from a shared handle. fs.createReadStream is not used: it
 * closes the descriptor when destroyed, even with `autoClose: false`.
 */
class FileRangeReadable extends Readable {
  readonly #handle: FileHandle;
  #position: number;
  readonly #end: number;

  constructor(handle: FileHandle, start: number, end: number) {
    super({ highWaterMark: READ_CHUNK });
    this.#handle = handle;
    this.#position = start;
    this.#end = end;
  }

  override _read(): void {
    const length = Math.min(READ_CHUNK, this.#end - this.#position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    this.#handle.read(Buffer.allocUnsafe(length), 0, length, this.#position).then(
      ({ bytesRead, buffer }) => {
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.push(null); // the file is shorter than expected; the reader reports it as truncated
          return;
        }
        this.#position += bytesRead;
        this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
      },
      (e: unknown) => this.destroy(e as Error),
    );
  }
}

/** Bytes in memory as a `RandomAccessSource` (small archives, tests). */
export function bufferSource(data: Uint8Array): RandomAccessSource {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const step = 1024 * 1024;
  return {
    size: buf.length,
    read(start, endExclusive) {
      const end = Math.min(endExclusive, buf.length);
      return Readable.from(
        (function* () {
          for (let i = start; i < end; i += step) yield buf.subarray(i, Math.min(i + step, end));
        })(),
        { objectMode: false },
      );
    },
  };
}

/** A random-access view of a stored archive through ranged reads (works on every storage backend). */
export function storageSource(
  driver: StorageDriver,
  key: string,
  size: number,
  signal?: AbortSignal,
): RandomAccessSource {
  return {
    size,
    read(start: number, endExclusive: number): Readable {
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      if (endExclusive <= start) {
        out.end();
        return out;
      }
      driver
        .get(key, { range: { start, end: endExclusive - 1 }, ...(signal ? { signal } : {}) })
        .then((body) => pipeline(body, out))
        .catch((e) => out.destroy(e));
      return out;
    },
  };
}

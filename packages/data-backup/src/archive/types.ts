import type { Readable } from 'node:stream';

/** What a writer knows about an entry once all its bytes are out. */
export interface EntryStats {
  /** Entry path inside the archive, e.g. `entities/User.jsonl`. */
  name: string;
  uncompressedBytes: number;
  compressedBytes: number;
  crc32: number;
  /** Hex SHA-256 of the exact uncompressed bytes. */
  sha256: string;
  /** Hex SHA-256 of the entry's data as stored in the archive (the deflated bytes; the same bytes when stored). */
  storedSha256: string;
  /** Number of `\n` bytes, i.e. of newline-terminated lines (streamed entries only). */
  lines?: number;
}

/** Options of `ZipWriter.addEntry` and `EntrySpool.write`. */
export interface EntrySourceOptions {
  signal?: AbortSignal | undefined;
  /** Called for each chunk the source yields, as it is taken: that chunk's lines (`\n` bytes) and bytes. */
  onChunk?: ((lines: number, bytes: number) => void) | undefined;
}

/** An entry compressed ahead of time into a temp file (see `EntrySpool`), ready for `ZipWriter.addSpooled`. */
export interface SpooledEntry extends EntryStats {
  readonly method: 0 | 8;
  /** Temp file holding the deflated (or stored) bytes. */
  readonly path: string;
  /** Deletes the temp file. Safe to call more than once. */
  dispose(): Promise<void>;
}

/**
 * Random-access bytes to read an archive from: a local file (`fileSource`), a buffer (`bufferSource`)
 * or a storage driver's ranged reader.
 */
export interface RandomAccessSource {
  readonly size: number;
  /** The bytes in `[start, endExclusive)`. */
  read(start: number, endExclusive: number): Readable;
  close?(): Promise<void>;
}

/** One central-directory record. */
export interface ZipEntryInfo {
  name: string;
  compressedSize: number;
  uncompressedSize: number;
  crc32: number;
  /** 0 = stored, 8 = deflate. */
  method: number;
  localHeaderOffset: number;
}

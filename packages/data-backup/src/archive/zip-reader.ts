import { createHash } from 'node:crypto';
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { crc32, createInflateRaw } from 'node:zlib';
import { KoanError } from '@koan/data';
import { abortError, DEFAULT_BATCH_BYTES } from '@koan/data/adapter-kit';
import { countNewlines } from './_encode.js';
import {
  CENTRAL_HEADER_SIZE,
  EOCD_SIZE,
  FLAG_ENCRYPTED,
  FLAG_UTF8,
  LOCAL_HEADER_SIZE,
  MAX_COMMENT,
  METHOD_DEFLATE,
  METHOD_STORE,
  SIG_CENTRAL,
  SIG_EOCD,
  SIG_LOCAL,
  SIG_ZIP64_EOCD,
  SIG_ZIP64_LOCATOR,
  U16_MAX,
  U32_MAX,
  ZIP64_EOCD_SIZE,
  ZIP64_EXTRA_ID,
  ZIP64_LOCATOR_SIZE,
} from './_format.js';
import type { RandomAccessSource, ZipEntryInfo } from './types.js';

/** `readBuffer` refuses entries larger than this; stream them with `openEntry` or `lines`. */
export const MAX_BUFFERED_ENTRY = 64 * 1024 * 1024;
/**
 * Inflated bytes per zlib job. zlib asks the pool for the next piece only when the reading thread has taken the
 * last one, so with 64 KiB pieces a 1M-row SQLite restore sat waiting ~0.5 s (~11%); 256 KiB cut that to ~0.2 s
 * (1 MiB to ~0.08 s, but PostgreSQL restores then peaked 10-20 MB higher).
 */
const INFLATE_CHUNK_BYTES = 256 * 1024;
/** UTF-8 bytes decoded into one string. */
const DECODE_SLICE_BYTES = 64 * 1024;
const DEFAULT_BATCH = 1000;
/**
 * The longest line a reader accepts, in characters: far above any real record, and a bound on the memory one line can
 * take (a 5 MB archive can inflate to one line of gigabytes). Longer lines fail with `LINE_TOO_LONG`.
 */
export const DEFAULT_MAX_LINE_CHARS = 64 * 1024 * 1024;

interface EntryRecord {
  readonly info: ZipEntryInfo;
  readonly flags: number;
  readonly nameLength: number;
  readonly extraLength: number;
}

export interface LinesResult {
  /** Hex SHA-256 of the exact decompressed bytes; absent with `hashContent: false`. */
  sha256?: string;
  bytes: number;
  /** Number of `\n` bytes (a final line without `\n` is yielded but not counted here). */
  lines: number;
  missingFinalNewline: boolean;
}

export interface LinesOptions {
  /** At most this many lines per batch. @default 1000 */
  batchSize?: number;
  /**
   * A batch is handed over once its lines hold this many bytes (UTF-8, newlines included), even with fewer lines: it
   * holds less than that before its last line. @default DEFAULT_BATCH_BYTES (1 MiB)
   */
  maxBatchBytes?: number;
  /** A longer line fails the read with `LINE_TOO_LONG` (entry and line named). @default 64 Mi characters */
  maxLineChars?: number;
  signal?: AbortSignal;
  /** Called once the whole entry was read and its CRC-32 and size verified. */
  onDone?: (result: LinesResult) => void;
  /**
   * Hash the decompressed bytes (`LinesResult.sha256`). Callers that check the stored bytes instead (`onStored`, about
   * a fifth of the bytes for JSON lines) turn it off; the CRC-32 still covers the decompressed ones.
   * @default true
   */
  hashContent?: boolean;
  /** Sees the entry's bytes as stored (before inflation), in order. */
  onStored?: (chunk: Buffer) => void;
}

function corrupt(message: string, details: Record<string, unknown> = {}, cause?: unknown): KoanError {
  return new KoanError('ARCHIVE_CORRUPT', message, cause === undefined ? { details } : { details, cause });
}

async function readRange(source: RandomAccessSource, start: number, end: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of source.read(start, end)) {
    parts.push(c as Buffer);
    n += (c as Buffer).length;
  }
  const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  if (buf.length !== end - start) {
    throw corrupt(`Archive is truncated: ${what} needs bytes ${start}-${end} but the source returned ${buf.length}`);
  }
  return buf;
}

function u64(b: Buffer, at: number, what: string): number {
  const v = b.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`Archive ${what} is out of range (${v})`);
  return Number(v);
}

/**
 * Reads ZIP archives (ZIP64 aware) from any `RandomAccessSource`: the central directory once at
 * `open`, then entries on demand, each verified against its CRC-32 and size.
 *
 * @example
 * const zip = await ZipReader.open(await fileSource('backup.zip'));
 * const manifest = JSON.parse((await zip.readBuffer('manifest.json')).toString('utf8'));
 * for await (const { firstLine, lines } of zip.lines('entities/User.jsonl')) { ... }
 * await zip.close();
 */
export class ZipReader {
  readonly entries: readonly ZipEntryInfo[];
  readonly #source: RandomAccessSource;
  readonly #byName: ReadonlyMap<string, EntryRecord>;
  /** Entry data must end before the central directory starts. */
  readonly #dataLimit: number;

  private constructor(source: RandomAccessSource, records: EntryRecord[], dataLimit: number) {
    this.#source = source;
    this.#dataLimit = dataLimit;
    this.entries = Object.freeze(records.map((r) => r.info));
    const byName = new Map<string, EntryRecord>();
    for (const r of records) if (!byName.has(r.info.name)) byName.set(r.info.name, r);
    this.#byName = byName;
  }

  static async open(source: RandomAccessSource): Promise<ZipReader> {
    const size = source.size;
    if (size < EOCD_SIZE) throw corrupt(`Not a ZIP archive: ${size} bytes is too small (truncated?)`);
    const tailStart = Math.max(0, size - (EOCD_SIZE + MAX_COMMENT + ZIP64_LOCATOR_SIZE));
    const tail = await readRange(source, tailStart, size, 'end of central directory');
    const at = findEocd(tail);
    if (at < 0) {
      throw corrupt('Not a ZIP archive or truncated: end of central directory record not found', { size });
    }
    // Bytes after the end record (and its comment) are not part of the archive: something was appended.
    const end = tailStart + at + EOCD_SIZE + tail.readUInt16LE(at + 20);
    if (end !== size)
      throw corrupt(`${size - end} bytes follow the end of the archive (offset ${end}): data was appended to it`, {
        size,
      });
    let count = tail.readUInt16LE(at + 10);
    let cdSize = tail.readUInt32LE(at + 12);
    let cdOffset = tail.readUInt32LE(at + 16);
    let cdLimit = tailStart + at;
    const locatorAt = at - ZIP64_LOCATOR_SIZE;
    if (locatorAt >= 0 && tail.readUInt32LE(locatorAt) === SIG_ZIP64_LOCATOR) {
      const z64At = u64(tail, locatorAt + 8, 'ZIP64 end record offset');
      if (z64At + ZIP64_EOCD_SIZE > tailStart + locatorAt) {
        throw corrupt(`ZIP64 end of central directory offset ${z64At} is out of range`, { size });
      }
      const z = await readRange(source, z64At, z64At + ZIP64_EOCD_SIZE, 'ZIP64 end of central directory');
      if (z.readUInt32LE(0) !== SIG_ZIP64_EOCD) {
        throw corrupt(`ZIP64 end of central directory signature missing at offset ${z64At}`, { size });
      }
      count = u64(z, 32, 'entry count');
      cdSize = u64(z, 40, 'central directory size');
      cdOffset = u64(z, 48, 'central directory offset');
      cdLimit = z64At;
    } else if (count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX) {
      throw corrupt('ZIP64 end of central directory locator missing (archive truncated or damaged)', { size });
    }
    if (cdOffset + cdSize > cdLimit) {
      throw corrupt(
        `Central directory (offset ${cdOffset}, ${cdSize} bytes) overruns the end records at ${cdLimit}: archive truncated or damaged`,
        { size },
      );
    }
    if (count * CENTRAL_HEADER_SIZE > cdSize) {
      throw corrupt(`Central directory of ${cdSize} bytes cannot hold ${count} entries`, { size });
    }
    const cd = await readRange(source, cdOffset, cdOffset + cdSize, 'central directory');
    const records = parseCentralDirectory(cd, count, cdOffset);
    // Two entries with one name: ZIP tools disagree on which one counts (the first, the last, both).
    const seen = new Set<string>();
    for (const r of records) {
      if (seen.has(r.info.name))
        throw corrupt(`Entry ${r.info.name} appears more than once: tools would disagree on which copy counts`, {
          size,
          entry: r.info.name,
        });
      seen.add(r.info.name);
    }
    return new ZipReader(source, records, cdOffset);
  }

  entry(name: string): ZipEntryInfo | undefined {
    return this.#byName.get(name)?.info;
  }

  /**
   * The decompressed bytes of an entry. The stream errors with `ARCHIVE_CORRUPT` on CRC-32 mismatch,
   * wrong size or truncated data, and with `ABORTED` when `signal` aborts. `onStored` sees the entry's bytes as
   * stored (before inflation), in order.
   */
  async openEntry(
    name: string,
    options: { signal?: AbortSignal; onStored?: (chunk: Buffer) => void } = {},
  ): Promise<Readable> {
    const { signal } = options;
    if (signal?.aborted) throw abortError(signal);
    const rec = this.#record(name);
    const { info } = rec;
    if (rec.flags & FLAG_ENCRYPTED) {
      throw new KoanError('ARCHIVE_UNSUPPORTED', `Entry ${name} is encrypted`, { details: { entry: name } });
    }
    if (info.method !== METHOD_STORE && info.method !== METHOD_DEFLATE) {
      throw new KoanError('ARCHIVE_UNSUPPORTED', `Entry ${name} uses compression method ${info.method}`, {
        details: { entry: name, method: info.method },
      });
    }
    const dataStart = await this.#dataStart(rec);
    const dataEnd = dataStart + info.compressedSize;
    if (dataEnd > this.#dataLimit) {
      throw corrupt(
        `Entry ${name}: data (${dataStart}-${dataEnd}) overruns the central directory at ${this.#dataLimit}`,
        {
          entry: name,
        },
      );
    }
    const raw = this.#source.read(dataStart, dataEnd);
    const verifier = new EntryVerifier(info);
    const done = () => {};
    const { onStored } = options;
    const stages: NodeJS.ReadWriteStream[] = [];
    if (onStored)
      stages.push(
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            onStored(chunk);
            callback(null, chunk);
          },
        }),
      );
    if (info.method === METHOD_DEFLATE) stages.push(createInflateRaw({ chunkSize: INFLATE_CHUNK_BYTES }));
    pipeline([raw, ...stages, verifier], done);
    if (signal) {
      const onAbort = () => raw.destroy(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      verifier.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return verifier;
  }

  /** A small entry (manifest, checksums) as one buffer; refuses entries over 64 MiB. */
  async readBuffer(name: string): Promise<Buffer> {
    const { info } = this.#record(name);
    if (info.uncompressedSize > MAX_BUFFERED_ENTRY) {
      throw new KoanError(
        'ARCHIVE_ENTRY_TOO_LARGE',
        `Entry ${name} is ${info.uncompressedSize} bytes; readBuffer accepts up to ${MAX_BUFFERED_ENTRY}, stream it with openEntry or lines`,
        { details: { entry: name } },
      );
    }
    const parts: Buffer[] = [];
    for await (const c of await this.openEntry(name)) parts.push(c as Buffer);
    return Buffer.concat(parts);
  }

  /**
   * The lines of a JSONL entry in batches, without the `\n`. Never drops a line: an empty line is
   * yielded as `''`, and a final line without `\n` is yielded and flagged by `missingFinalNewline`.
   * `\r` is kept (JSON.parse ignores it).
   */
  async *lines(
    name: string,
    options: LinesOptions = {},
  ): AsyncGenerator<{ firstLine: number; lines: string[]; bytesRead: number }> {
    const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH);
    const maxBatchBytes = Math.max(1, options.maxBatchBytes ?? DEFAULT_BATCH_BYTES);
    const maxLineChars = Math.max(1, options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS);
    const sha = options.hashContent === false ? undefined : createHash('sha256');
    const stream = await this.openEntry(name, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onStored ? { onStored: options.onStored } : {}),
    });
    const decoder = new StringDecoder('utf8');
    let bytes = 0;
    let newlines = 0;
    let firstLine = 1;
    let batch: string[] = [];
    let batchBytes = 0;
    // A partial line is kept as pieces so that a very long line costs linear, not quadratic, time.
    let partial: string[] = [];
    let partialChars = 0;
    let partialBytes = 0;
    const tooLong = () =>
      new KoanError(
        'LINE_TOO_LONG',
        `${name} line ${firstLine + batch.length}: longer than ${maxLineChars} characters, the most a line may hold (a record that large is not a real record: the archive is damaged or hostile). Nothing was read past it.`,
        { details: { entry: name, line: firstLine + batch.length, maxLineChars } },
      );
    const push = (line: string, bytes: number) => {
      if (line.length > maxLineChars) throw tooLong();
      batch.push(line);
      batchBytes += bytes;
    };
    try {
      for await (const chunk of stream) {
        const buf = chunk as Buffer;
        sha?.update(buf);
        bytes += buf.length;
        // Decoded in slices: strings stay small (a large one is a fresh mapping to fault in on every chunk).
        for (let at = 0; at < buf.length; at += DECODE_SLICE_BYTES) {
          const text = decoder.write(buf.subarray(at, at + DECODE_SLICE_BYTES));
          // As many characters as bytes: ASCII, each line's bytes are its length; else they are counted.
          const ascii = text.length === Math.min(DECODE_SLICE_BYTES, buf.length - at);
          const bytesOf = (piece: string) => (ascii ? piece.length : Buffer.byteLength(piece));
          let nl = text.indexOf('\n');
          if (nl === -1) {
            if (text.length > 0) {
              partial.push(text);
              partialChars += text.length;
              partialBytes += bytesOf(text);
              if (partialChars > maxLineChars) throw tooLong();
            }
            continue;
          }
          let pos = 0;
          const head = text.slice(0, nl);
          if (partial.length > 0) {
            if (partialChars + nl > maxLineChars) throw tooLong();
            partial.push(head);
            push(partial.join(''), partialBytes + bytesOf(head) + 1);
            partial = [];
            partialChars = 0;
            partialBytes = 0;
          } else {
            push(head, bytesOf(head) + 1);
          }
          newlines++;
          pos = nl + 1;
          for (;;) {
            if (batch.length >= batchSize || batchBytes >= maxBatchBytes) {
              yield { firstLine, lines: batch, bytesRead: bytes };
              firstLine += batch.length;
              batch = [];
              batchBytes = 0;
            }
            nl = text.indexOf('\n', pos);
            if (nl === -1) break;
            const line = text.slice(pos, nl);
            push(line, bytesOf(line) + 1);
            newlines++;
            pos = nl + 1;
          }
          if (pos < text.length) {
            const rest = text.slice(pos);
            partial.push(rest);
            partialChars += rest.length;
            partialBytes += bytesOf(rest);
          }
        }
      }
      const rest = partial.join('') + decoder.end();
      const missingFinalNewline = rest.length > 0;
      if (missingFinalNewline) push(rest, Buffer.byteLength(rest));
      if (batch.length > 0) yield { firstLine, lines: batch, bytesRead: bytes };
      options.onDone?.({
        ...(sha ? { sha256: sha.digest('hex') } : {}),
        bytes,
        lines: newlines,
        missingFinalNewline,
      });
    } finally {
      stream.destroy();
    }
  }

  async close(): Promise<void> {
    await this.#source.close?.();
  }

  #record(name: string): EntryRecord {
    const rec = this.#byName.get(name);
    if (!rec) {
      throw new KoanError('ARCHIVE_ENTRY_MISSING', `The archive has no entry named ${name}`, {
        details: { entry: name },
      });
    }
    return rec;
  }

  async #dataStart(rec: EntryRecord): Promise<number> {
    const { info } = rec;
    const at = info.localHeaderOffset;
    // One read usually covers the local header: its name matches the central one and its extra field is similar.
    const guess = Math.min(at + LOCAL_HEADER_SIZE + rec.nameLength + rec.extraLength + 64, this.#dataLimit);
    if (guess < at + LOCAL_HEADER_SIZE) {
      throw corrupt(`Entry ${info.name}: local header at ${at} overruns the central directory`, { entry: info.name });
    }
    let h = await readRange(this.#source, at, guess, `local header of ${info.name}`);
    if (h.readUInt32LE(0) !== SIG_LOCAL) {
      throw corrupt(`Entry ${info.name}: local header signature missing at offset ${at}`, { entry: info.name });
    }
    const headerEnd = LOCAL_HEADER_SIZE + h.readUInt16LE(26) + h.readUInt16LE(28);
    if (h.length < LOCAL_HEADER_SIZE + h.readUInt16LE(26)) {
      if (at + headerEnd > this.#dataLimit) {
        throw corrupt(`Entry ${info.name}: local header at ${at} overruns the central directory`, { entry: info.name });
      }
      h = await readRange(this.#source, at, at + headerEnd, `local header of ${info.name}`);
    }
    const localName = h.subarray(LOCAL_HEADER_SIZE, LOCAL_HEADER_SIZE + h.readUInt16LE(26));
    const centralName = Buffer.from(info.name, rec.flags & FLAG_UTF8 ? 'utf8' : 'latin1');
    if (!localName.equals(centralName)) {
      throw corrupt(`Entry ${info.name}: local header names ${JSON.stringify(localName.toString('utf8'))}`, {
        entry: info.name,
      });
    }
    return at + headerEnd;
  }
}

/** Hashes an entry's exact decompressed bytes without parsing them (validation). */
export async function hashEntry(
  reader: ZipReader,
  name: string,
  signal?: AbortSignal,
): Promise<{ sha256: string; bytes: number; lines: number; storedSha256: string }> {
  const sha = createHash('sha256');
  const stored = createHash('sha256');
  let bytes = 0;
  let lines = 0;
  const onStored = (chunk: Buffer) => stored.update(chunk);
  for await (const c of await reader.openEntry(name, signal ? { signal, onStored } : { onStored })) {
    const buf = c as Buffer;
    sha.update(buf);
    bytes += buf.length;
    lines += countNewlines(buf);
  }
  return { sha256: sha.digest('hex'), bytes, lines, storedSha256: stored.digest('hex') };
}

function findEocd(tail: Buffer): number {
  let loose = -1;
  for (let i = tail.length - EOCD_SIZE; i >= 0; i--) {
    if (tail.readUInt32LE(i) !== SIG_EOCD) continue;
    const end = i + EOCD_SIZE + tail.readUInt16LE(i + 20);
    if (end === tail.length) return i;
    if (end < tail.length && loose < 0) loose = i;
  }
  return loose;
}

function parseCentralDirectory(cd: Buffer, count: number, cdOffset: number): EntryRecord[] {
  const records: EntryRecord[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + CENTRAL_HEADER_SIZE > cd.length || cd.readUInt32LE(p) !== SIG_CENTRAL) {
      throw corrupt(`Central directory record ${n + 1} of ${count} is damaged (offset ${cdOffset + p})`);
    }
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressedSize = cd.readUInt32LE(p + 24);
    const nameLength = cd.readUInt16LE(p + 28);
    const extraLength = cd.readUInt16LE(p + 30);
    const commentLength = cd.readUInt16LE(p + 32);
    let localHeaderOffset = cd.readUInt32LE(p + 42);
    const nameAt = p + CENTRAL_HEADER_SIZE;
    const extraAt = nameAt + nameLength;
    const next = extraAt + extraLength + commentLength;
    if (next > cd.length) throw corrupt(`Central directory record ${n + 1} of ${count} overruns the directory`);
    const name = cd.toString(flags & FLAG_UTF8 ? 'utf8' : 'latin1', nameAt, extraAt);
    for (let e = extraAt; e + 4 <= extraAt + extraLength; ) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === ZIP64_EXTRA_ID) {
        let q = e + 4;
        const end = q + len;
        const take = (what: string): number => {
          if (q + 8 > end) throw corrupt(`Entry ${name}: ZIP64 extra field lacks the ${what}`, { entry: name });
          const v = u64(cd, q, `${what} of ${name}`);
          q += 8;
          return v;
        };
        if (uncompressedSize === U32_MAX) uncompressedSize = take('uncompressed size');
        if (compressedSize === U32_MAX) compressedSize = take('compressed size');
        if (localHeaderOffset === U32_MAX) localHeaderOffset = take('local header offset');
      }
      e += 4 + len;
    }
    records.push({
      info: Object.freeze({ name, compressedSize, uncompressedSize, crc32: crc, method, localHeaderOffset }),
      flags,
      nameLength,
      extraLength,
    });
    p = next;
  }
  return records;
}

/** Passes decompressed bytes through, checking CRC-32 and size at the end; maps failures to `ARCHIVE_CORRUPT`. */
class EntryVerifier extends Transform {
  readonly #info: ZipEntryInfo;
  #crc = 0;
  #bytes = 0;

  constructor(info: ZipEntryInfo) {
    super({ readableHighWaterMark: 256 * 1024 });
    this.#info = info;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#info.uncompressedSize) {
      cb(this.#corrupt(`expands past its recorded size of ${this.#info.uncompressedSize} bytes`));
      return;
    }
    this.#crc = crc32(chunk, this.#crc);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const { uncompressedSize, crc32: expected } = this.#info;
    if (this.#bytes !== uncompressedSize) {
      cb(this.#corrupt(`is truncated: ${this.#bytes} of ${uncompressedSize} bytes`));
    } else if (this.#crc >>> 0 !== expected) {
      cb(this.#corrupt(`fails its CRC-32 check (expected ${hex(expected)}, got ${hex(this.#crc >>> 0)})`));
    } else {
      cb();
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!err || err instanceof KoanError) {
      cb(err);
      return;
    }
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      cb(this.#corrupt(`has damaged compressed data (${err.message})`, err));
    } else if (code === 'ERR_STREAM_PREMATURE_CLOSE') {
      cb(this.#corrupt('is truncated: the source ended early', err));
    } else {
      cb(err);
    }
  }

  #corrupt(what: string, cause?: unknown): KoanError {
    return corrupt(`Entry ${this.#info.name} ${what}`, { entry: this.#info.name }, cause);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}

import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { crc32, createDeflateRaw, type DeflateRaw, deflateRawSync, constants as zc } from 'node:zlib';
import { KoanError } from '@koan/data';
import { abortError } from '@koan/data/adapter-kit';

/** Rows are coalesced to at least this many bytes before hashing and zlib: one write per row is ~4x slower. */
const COALESCE_BYTES = 256 * 1024;
/** Each deflate job; large enough that restarting the 32 KiB dictionary per job costs well under 1%. */
const DEFLATE_CHUNK_BYTES = 1024 * 1024;
const MIN_BUFFER_BYTES = 256;
const SYNC_DEFLATE_BYTES = 16 * 1024;
/** A lane's output buffer: one 1 MiB chunk of JSON lines deflates to ~160 KB, so one thread-pool round trip. */
const LANE_OUTPUT_BYTES = 256 * 1024;
/** Room for one more row so most rows land in the current chunk. */
const COALESCE_SLACK = 64 * 1024;
/** Deflate jobs in flight per entry; bounded memory is about (parallelism + 1) x 1 MiB. */
const DEFAULT_PARALLELISM = Math.max(1, Math.min(4, availableParallelism()));
/** BFINAL=1, fixed Huffman, end-of-block: closes a stream made of sync-flushed pieces. */
const FINAL_EMPTY_BLOCK = [0x03, 0x00];
const NEWLINE = 0x0a;

export const DEFAULT_LEVEL = 1;

export interface EncodeOptions {
  readonly level: number;
  readonly compress: boolean;
  readonly signal?: AbortSignal | undefined;
  /** Deflate jobs in flight. */
  readonly parallelism?: number | undefined;
  /** Receives compressed (or stored) bytes in order; the returned promise is the backpressure. */
  readonly emit: (chunk: Buffer) => Promise<void>;
  /** Told the lines and bytes of each chunk `source` yields, as it is taken: progress without a second count. */
  readonly onChunk?: ((lines: number, bytes: number) => void) | undefined;
}

export interface EncodeResult {
  readonly method: 0 | 8;
  readonly crc32: number;
  readonly sha256: string;
  /** SHA-256 of the bytes handed to `emit`. */
  readonly storedSha256: string;
  readonly uncompressedBytes: number;
  readonly compressedBytes: number;
  readonly lines: number;
}

export function resolveMethod(options: { level?: number | undefined; compress?: boolean | undefined }): {
  method: 0 | 8;
  level: number;
} {
  const level = options.level ?? DEFAULT_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new KoanError('INVALID_OPTION', `Compression level must be an integer 0-9, got ${String(options.level)}`);
  }
  return options.compress === false || level === 0 ? { method: 0, level: 0 } : { method: 8, level };
}

/**
 * One zlib deflate context, reset for each chunk: every chunk is compressed on its own (no dictionary from the one
 * before) and ends with a sync flush, exactly as a fresh `deflateRaw` would do it, without allocating and zeroing
 * ~400 KB of zlib state per chunk (measured: a third of the compression time at 1 MiB chunks).
 */
class DeflateLane {
  readonly #stream: DeflateRaw;
  #parts: Buffer[] = [];
  #failure: Error | undefined;

  constructor(level: number) {
    this.#stream = createDeflateRaw({ level, memLevel: 9, flush: zc.Z_SYNC_FLUSH, chunkSize: LANE_OUTPUT_BYTES });
    this.#stream.on('data', (b: Buffer) => this.#parts.push(b));
    this.#stream.on('error', (e) => {
      this.#failure = e;
    });
  }

  /** The compressed chunk. Call again only after the previous call has settled. */
  deflate(chunk: Buffer): Promise<Buffer> {
    if (this.#failure) return Promise.reject(this.#failure);
    this.#stream.reset();
    return new Promise((resolve, reject) => {
      this.#stream.write(chunk, (e) => {
        if (e) return reject(e);
        // Everything zlib produced for the chunk has been pushed by now; read() hands on what the readable side
        // still buffers (as a 'data' event).
        if (this.#stream.readableLength > 0) this.#stream.read();
        // Copied out: zlib's pieces are views into its 256 KiB output buffers, and a view kept by a slow writer
        // keeps the whole buffer (whole-app backup with 2 entities at once: peak RSS 254 MB with views, 211 MB copied).
        const out = Buffer.concat(this.#parts);
        this.#parts = [];
        resolve(out);
      });
    });
  }

  close(): void {
    this.#stream.destroy();
  }
}

function deflateSmall(chunk: Buffer, level: number): Promise<Buffer> {
  // A thread-pool round trip costs more than compressing a few KiB here.
  try {
    return Promise.resolve(deflateRawSync(chunk, { level, memLevel: 9, finishFlush: zc.Z_SYNC_FLUSH }));
  } catch (e) {
    return Promise.reject(e);
  }
}

function grow(buf: Buffer, used: number, size: number): Buffer {
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, used);
  return next;
}

export function countNewlines(b: Uint8Array): number {
  let n = 0;
  let i = b.indexOf(NEWLINE);
  while (i !== -1) {
    n++;
    i = b.indexOf(NEWLINE, i + 1);
  }
  return n;
}

/**
 * `value` in pieces of at most `max` bytes (strings: of at most `max / 3` characters, never between the two halves of
 * a surrogate pair); smaller values as they are.
 */
export function* piecesOf(value: Uint8Array | string, max: number): Generator<Uint8Array | string> {
  const length = typeof value === 'string' ? value.length * 3 : value.byteLength;
  if (length <= max) {
    yield value;
    return;
  }
  if (typeof value !== 'string') {
    for (let at = 0; at < value.byteLength; at += max) yield value.subarray(at, at + max);
    return;
  }
  const chars = Math.max(2, Math.floor(max / 3));
  for (let at = 0; at < value.length; ) {
    let end = Math.min(value.length, at + chars);
    const last = value.charCodeAt(end - 1);
    if (end < value.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield value.slice(at, end);
    at = end;
  }
}

/** Races `p` against the signal so that a source stuck in `next()` cannot hold up cancellation. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) {
    p.catch(() => {}); // the source will fail with the same abort; that rejection is expected, not unhandled
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** The hashes and counts of one entry: of the uncompressed bytes as they are taken, and of the bytes emitted. */
class EntryTally {
  readonly sha = createHash('sha256');
  readonly storedSha = createHash('sha256');
  crc = 0;
  uncompressedBytes = 0;
  compressedBytes = 0;
  lines = 0;
  readonly #onChunk: EncodeOptions['onChunk'];

  constructor(onChunk: EncodeOptions['onChunk']) {
    this.#onChunk = onChunk;
  }

  /** A coalesced chunk of uncompressed bytes, hashed as it is handed on. */
  account(chunk: Buffer): Buffer {
    this.crc = crc32(chunk, this.crc);
    this.sha.update(chunk);
    this.uncompressedBytes += chunk.length;
    return chunk;
  }

  /** Lines are counted per source chunk (not per coalesced buffer) so that `onChunk` keeps the source's pace. */
  taken(bytes: Buffer): void {
    const n = countNewlines(bytes);
    this.lines += n;
    this.#onChunk?.(n, bytes.length);
  }

  /** Bytes handed to `emit`. */
  stored(chunk: Buffer): void {
    this.compressedBytes += chunk.length;
    this.storedSha.update(chunk);
  }
}

/** How `source` is cut into chunks. */
interface ChunkPlan {
  /** A chunk is handed on once it holds this many bytes. */
  readonly chunkBytes: number;
  /** Size of a full chunk buffer (`chunkBytes` plus room for one more row). */
  readonly full: number;
  /** Full-size chunk buffers to reuse (see `encodeEntry`). */
  readonly spare: Buffer[];
  readonly signal: AbortSignal | undefined;
}

/** Pulls `source` and coalesces it into chunks of about `plan.chunkBytes`, counted and hashed by `tally`. */
async function* coalesce(
  source: AsyncIterable<Uint8Array | string>,
  plan: ChunkPlan,
  tally: EntryTally,
): AsyncGenerator<Buffer> {
  const { chunkBytes, full, spare, signal } = plan;
  const it = source[Symbol.asyncIterator]();
  // Small entries are common (manifests, thousands of tiny entities): start with a small buffer
  // and grow it, so only entries that fill a chunk pay for full-size buffers.
  let capacity = 0;
  let buf: Buffer = Buffer.allocUnsafe(0);
  let used = 0;
  let done = false;
  const take = (): Buffer => {
    const out: Buffer = buf.subarray(0, used);
    buf = Buffer.allocUnsafe(0);
    used = 0;
    capacity = full;
    return tally.account(out);
  };
  /** Makes room for `bytes` more bytes; false when they can never fit in one chunk buffer. */
  const reserve = (bytes: number): boolean => {
    if (used + bytes <= buf.length) return true;
    capacity = Math.min(full, Math.max(used + bytes, capacity * 4, MIN_BUFFER_BYTES));
    if (used + bytes <= capacity) {
      buf = used === 0 && capacity === full && spare.length > 0 ? spare.pop()! : grow(buf, used, capacity);
      return true;
    }
    return false;
  };
  try {
    for (;;) {
      const r = await raceAbort(it.next(), signal);
      if (r.done) {
        done = true;
        break;
      }
      // Rows are copied into one buffer: cheaper than string concatenation, and the producer may reuse its buffers
      // once we ask for the next chunk. A value larger than a chunk is taken in chunk-sized pieces, so no deflate
      // job (and no buffer here) is larger than a chunk, whatever the source hands over.
      for (const v of piecesOf(r.value, chunkBytes)) {
        const max = typeof v === 'string' ? v.length * 3 : v.byteLength;
        if (!reserve(max)) {
          yield take();
          reserve(max);
        }
        const start = used;
        if (typeof v === 'string') {
          used += buf.write(v, used, 'utf8');
        } else {
          buf.set(v, used);
          used += v.byteLength;
        }
        tally.taken(buf.subarray(start, used));
        if (used >= chunkBytes) yield take();
      }
    }
    if (used > 0) yield take();
  } finally {
    if (!done) {
      // Not awaited: a source stuck in next() would otherwise block cancellation.
      it.return?.().catch(() => {});
    }
  }
}

/**
 * Deflates `chunks` and hands the output to `out`, in order, ending with an empty final block. Chunks are deflated
 * independently on the libuv pool, several at a time, each ended with a sync flush; their concatenation plus an empty
 * final block is one valid deflate stream (the pigz scheme). Hashing the next chunk overlaps with compressing the
 * previous ones.
 */
async function deflateChunks(
  chunks: AsyncIterable<Buffer>,
  level: number,
  parallelism: number,
  plan: ChunkPlan,
  out: (c: Buffer) => Promise<void>,
): Promise<void> {
  const { full, spare } = plan;
  const inFlight: { input: Buffer; output: Promise<Buffer>; lane: DeflateLane | undefined }[] = [];
  const lanes: DeflateLane[] = [];
  const idle: DeflateLane[] = [];
  const settle = async () => {
    const job = inFlight.shift()!;
    const compressed = await job.output;
    if (job.lane) idle.push(job.lane);
    if (job.input.buffer.byteLength === full && spare.length < parallelism) spare.push(Buffer.from(job.input.buffer));
    await out(compressed);
  };
  try {
    for await (const chunk of chunks) {
      let lane: DeflateLane | undefined;
      if (chunk.length > SYNC_DEFLATE_BYTES) {
        lane = idle.pop();
        if (!lane) {
          lane = new DeflateLane(level);
          lanes.push(lane);
        }
      }
      const output = lane ? lane.deflate(chunk) : deflateSmall(chunk, level);
      output.catch(() => {});
      inFlight.push({ input: chunk, output, lane });
      if (inFlight.length >= parallelism) await settle();
    }
    while (inFlight.length > 0) await settle();
  } finally {
    for (const lane of lanes) lane.close();
  }
  await out(Buffer.from(FINAL_EMPTY_BLOCK));
}

/**
 * Pulls `source`, coalesces it into large chunks, hashes (CRC-32, SHA-256) and counts lines of the
 * uncompressed bytes once, deflates (or stores) them and hands the output to `emit`.
 */
export async function encodeEntry(
  source: AsyncIterable<Uint8Array | string>,
  options: EncodeOptions,
): Promise<EncodeResult> {
  const { signal, emit, onChunk } = options;
  const method: 0 | 8 = options.compress ? 8 : 0;
  const tally = new EntryTally(onChunk);
  const chunkBytes = method === 8 ? DEFLATE_CHUNK_BYTES : COALESCE_BYTES;
  // Full-size chunk buffers whose deflate job has finished, reused: a fresh 1 MiB buffer per chunk is a fresh
  // mapping, and its page faults cost more than the copy into it (stored entries hand chunks on, so not there).
  const plan: ChunkPlan = { chunkBytes, full: chunkBytes + COALESCE_SLACK, spare: [], signal };
  const parallelism = options.parallelism ?? DEFAULT_PARALLELISM;
  const out = async (c: Buffer): Promise<void> => {
    tally.stored(c);
    await emit(c);
  };
  const chunks = coalesce(source, plan, tally);
  if (method === 0) {
    for await (const chunk of chunks) await out(chunk);
  } else {
    await deflateChunks(chunks, options.level, parallelism, plan, out);
  }
  return {
    method,
    crc32: tally.crc >>> 0,
    sha256: tally.sha.digest('hex'),
    storedSha256: tally.storedSha.digest('hex'),
    uncompressedBytes: tally.uncompressedBytes,
    compressedBytes: tally.compressedBytes,
    lines: tally.lines,
  };
}

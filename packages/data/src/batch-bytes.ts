/**
 * Byte budgets of batches. Records are grouped (export pages, archive batches, restore writes) by count and by size:
 * a group is closed once its records' archive-encoded size reaches the budget, so it holds at most one record past
 * it, and memory stays bounded however wide the rows are (1,000 rows of 100 KB are 100 MB; 1,000 rows of 300 bytes,
 * 300 KB).
 */

import { DataError, throwIfAborted } from './errors.js';
import { JsonText } from './json-text.js';
import { type LineTranscoder, STREAM_PIECE_BYTES } from './line-transcoder.js';
import type { DataRecord } from './types.js';

/**
 * The byte budget of a batch when none is given: 1 MiB of archive-encoded records. Larger batches of wide rows live
 * through V8's young-generation collections, and the old space they are promoted to grows to several times them before
 * a full collection: restores of 100 KB rows peaked at 240-300 MB RSS with 8 MiB batches, 130-160 MB with 1 MiB
 * (bench/RESULTS.md). Rows of 300 bytes fill 1,000-record batches far below it.
 */
export const DEFAULT_BATCH_BYTES = 1024 * 1024;

/** The most a batch's byte budget may be (1 GiB): beyond it a "budget" bounds nothing a process can hold. */
export const MAX_BATCH_BYTES = 1024 * 1024 * 1024;

/** The budget of `options.batchBytes` (default {@link DEFAULT_BATCH_BYTES}); refuses anything but 1 byte to 1 GiB. */
export function checkBatchBytes(bytes: number | undefined): number {
  if (bytes === undefined) return DEFAULT_BATCH_BYTES;
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > MAX_BATCH_BYTES)
    throw new DataError(
      'INVALID_OPTION',
      `batchBytes must be an integer number of bytes from 1 to ${MAX_BATCH_BYTES} (1 GiB), got ${String(bytes)}`,
      { details: { option: 'batchBytes', value: String(bytes) } },
    );
  return bytes;
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * A size in bytes from a number or a text such as `8MiB`, `512 KiB`, `1.5MB`, `65536` (units B, KB/MB/GB = powers of
 * 1000, KiB/MiB/GiB and K/M/G = powers of 1024, any case). Returns undefined for anything else (callers name the field).
 */
export function parseByteSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  return Math.round(Number(m[1]) * unit);
}

/** `8 MiB`, `512 KiB`, `100 B`: a byte count for messages. */
export function formatByteSize(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const)
    if (bytes >= size) {
      const n = bytes / size;
      return `${Number.isInteger(n) ? n : n.toFixed(1)} ${unit}`;
    }
  return `${bytes} B`;
}

const MAX_DEPTH = 64;

/**
 * About the bytes `value` takes in an archive line (strings as UTF-8 with their quotes, binaries and vectors as base64,
 * numbers at their longest). Exact for strings and binaries without JSON escapes, an upper bound for numbers; for
 * budgets, not for layout. Takes runtime values and the raw values of drivers alike (Buffers, Dates, objects).
 */
export function valueBytes(value: unknown, depth = 0): number {
  switch (typeof value) {
    case 'string':
      return Buffer.byteLength(value, 'utf8') + 2;
    case 'number':
      return 24;
    case 'bigint':
      return value >= -(2n ** 63n) && value < 2n ** 64n ? 22 : value.toString().length + 2;
    case 'boolean':
      return 5;
    case 'undefined':
      return 0;
    case 'object': {
      if (value === null) return 4;
      if (ArrayBuffer.isView(value)) return Math.ceil(value.byteLength / 3) * 4 + 2;
      // Archive lines (format 2) carry json as a string: its quotes and backslashes are escaped.
      if (value instanceof JsonText) return Buffer.byteLength(value.text, 'utf8') + 2 + escapes(value.text);
      if (value instanceof Date) return 30;
      if (depth >= MAX_DEPTH) return 2;
      // A json value: its text goes into the line as a string, so its quotes are escaped (2 more per key or string).
      let n = depth === 0 ? 4 : 2;
      if (Array.isArray(value)) for (const item of value) n += valueBytes(item, depth + 1) + 3;
      else
        for (const [k, v] of Object.entries(value as Record<string, unknown>))
          if (v !== undefined) n += k.length + 6 + valueBytes(v, depth + 1) + 2;
      return n;
    }
    default:
      return 8;
  }
}

/** Quotes and backslashes in `text`: each takes one more byte once `text` is a JSON string. */
function escapes(text: string): number {
  let n = 0;
  for (let i = text.indexOf('"'); i !== -1; i = text.indexOf('"', i + 1)) n++;
  for (let i = text.indexOf('\\'); i !== -1; i = text.indexOf('\\', i + 1)) n++;
  return n;
}

/** About the bytes of `record`'s archive line (see {@link valueBytes}), newline included. */
export function recordBytes(record: DataRecord): number {
  let n = 3;
  for (const k in record) {
    const v = record[k];
    if (v !== undefined) n += k.length + 4 + valueBytes(v);
  }
  return n;
}

/** The bytes of a store's raw row (an array of column values, or an object), for sizing the next page. */
export function rowBytes(row: unknown): number {
  if (Array.isArray(row)) {
    let n = 3;
    for (const v of row) n += valueBytes(v) + 1;
    return n;
  }
  return valueBytes(row);
}

/**
 * Groups items into batches of at most `maxItems` that close once their bytes reach `maxBytes`: every batch but a
 * single item over the budget holds less than `maxBytes` before its last item.
 *
 * @example
 * const batcher = new ByteBatcher<DataRecord>(1000, 8 << 20);
 * for (const r of rows) { const full = batcher.add(r, recordBytes(r)); if (full) yield full; }
 * const rest = batcher.take(); if (rest) yield rest;
 */
export class ByteBatcher<T> {
  readonly maxItems: number;
  readonly maxBytes: number;
  #items: T[] = [];
  #bytes = 0;

  constructor(maxItems: number, maxBytes: number) {
    this.maxItems = Math.max(1, Math.floor(maxItems));
    this.maxBytes = Math.max(1, Math.floor(maxBytes));
  }

  /** Items waiting. */
  get length(): number {
    return this.#items.length;
  }

  /** Bytes of the items waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Adds `item` of `bytes`; returns the batch when this item closed it. */
  add(item: T, bytes: number): T[] | undefined {
    this.#items.push(item);
    this.#bytes += bytes;
    return this.#items.length >= this.maxItems || this.#bytes >= this.maxBytes ? this.take() : undefined;
  }

  /** The items waiting as a batch (undefined when none), and starts a new one. */
  take(): T[] | undefined {
    if (this.#items.length === 0) return undefined;
    const out = this.#items;
    this.#items = [];
    this.#bytes = 0;
    return out;
  }
}

/** Re-groups pages (of any size) into batches bounded by `maxItems` and `maxBytes` (see {@link ByteBatcher}). */
export async function* byteBatches<T>(
  pages: AsyncIterable<readonly T[]>,
  sizeOf: (item: T) => number,
  maxItems: number,
  maxBytes: number,
): AsyncGenerator<T[]> {
  const batcher = new ByteBatcher<T>(maxItems, maxBytes);
  for await (const page of pages)
    for (const item of page) {
      const full = batcher.add(item, sizeOf(item));
      if (full) yield full;
    }
  const rest = batcher.take();
  if (rest) yield rest;
}

/** Rows asked for first, before any row's size is known: 16 rows of 100 KB are 1.6 MB. */
const FIRST_PAGE_ROWS = 16;
/** A page asks for at most this many times the rows of the one before, so a few small rows cannot open the gates. */
const GROWTH = 8;

/**
 * How many rows to ask a store for next so that a page holds about `maxBytes`, from the sizes of the rows read so far
 * (the first page asks for 16; never more than `maxRows`, never more than 8 times the page before).
 *
 * @example
 * const sizer = new PageSizer(batchSize, batchBytes);
 * const rows = await fetch(sizer.next());
 * sizer.seen(rows.length, rows.reduce((n, r) => n + rowBytes(r), 0));
 */
export class PageSizer {
  readonly #maxRows: number;
  readonly #maxBytes: number;
  #rows = 0;
  #bytes = 0;
  #last = 0;

  constructor(maxRows: number, maxBytes: number) {
    this.#maxRows = Math.max(1, Math.floor(maxRows));
    this.#maxBytes = Math.max(1, Math.floor(maxBytes));
  }

  /** Rows to ask for next; `room` (default the whole budget) is what is left of the budget. */
  next(room = this.#maxBytes): number {
    const cap = this.#last === 0 ? FIRST_PAGE_ROWS : this.#last * GROWTH;
    const fit = this.#rows === 0 ? FIRST_PAGE_ROWS : Math.ceil(room / Math.max(1, this.#bytes / this.#rows));
    this.#last = Math.max(1, Math.min(this.#maxRows, cap, fit));
    return this.#last;
  }

  /** Tells the sizer what a page held. */
  seen(rows: number, bytes: number): void {
    this.#rows += rows;
    this.#bytes += bytes;
  }
}

/** A page a store read: its rows, and whether it was the last (default: fewer rows than asked for). */
export type Page<R> = readonly R[] | { readonly rows: readonly R[]; readonly end: boolean };

/**
 * Records read page by page, in batches of at most `batchSize` closed at `batchBytes` (see {@link ByteBatcher}):
 * `read(rows)` reads the next page of at most `rows` rows, asked for so that they fill what is left of the batch's
 * budget at the size of the records so far (see {@link PageSizer}); fewer rows than asked for end the stream.
 *
 * @example
 * yield* pagedRecords((n) => client.query(`FETCH ${n} FROM c`).then((r) => r.rows), toRecord, 1000, 8 << 20, signal);
 */
export async function* pagedRecords<R>(
  read: (rows: number) => Page<R> | Promise<Page<R>>,
  toRecord: (row: R) => DataRecord,
  batchSize: number,
  batchBytes: number,
  signal?: AbortSignal,
): AsyncGenerator<DataRecord[]> {
  const sizer = new PageSizer(batchSize, batchBytes);
  const batcher = new ByteBatcher<DataRecord>(batchSize, batchBytes);
  for (;;) {
    throwIfAborted(signal);
    const want = Math.min(sizer.next(batchBytes - batcher.bytes), batchSize - batcher.length);
    const page = await read(want);
    const rows = Array.isArray(page) ? (page as readonly R[]) : (page as { rows: readonly R[] }).rows;
    let bytes = 0;
    for (const row of rows) {
      const record = toRecord(row);
      const n = recordBytes(record);
      bytes += n;
      const full = batcher.add(record, n);
      if (full) yield full;
    }
    sizer.seen(rows.length, bytes);
    if (Array.isArray(page) ? rows.length < want : (page as { end: boolean }).end) break;
  }
  const rest = batcher.take();
  if (rest) yield rest;
}

const NEWLINE = 0x0a;

/**
 * Cuts a chunk of whole JSON lines into pieces that hold less than `maxBytes` before their last line (a line longer
 * than the budget comes alone). Views, not copies.
 */
export function* cutLineChunk(chunk: Uint8Array, maxBytes: number): Generator<Uint8Array> {
  if (chunk.byteLength <= maxBytes) {
    yield chunk;
    return;
  }
  let start = 0;
  while (start < chunk.byteLength) {
    // The line holding the budget's last byte is the piece's last line.
    const reach = start + maxBytes - 1;
    let end = reach >= chunk.byteLength ? chunk.byteLength : chunk.indexOf(NEWLINE, reach) + 1;
    if (end === 0) end = chunk.byteLength;
    yield chunk.subarray(start, end);
    start = end;
  }
}

/** {@link cutLineChunk} over a stream of chunks of whole lines: the memory is the producer's chunks. */
export async function* boundLineChunks(
  chunks: AsyncIterable<Uint8Array>,
  maxBytes: number,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of chunks) yield* cutLineChunk(chunk, maxBytes);
}

/**
 * Pieces of whole lines from bytes cut anywhere (a COPY's output): what arrived since the last newline waits (a long
 * line in many parts is joined once), and a piece goes out once it holds `pieceBytes`, cut at the line that reaches
 * them, so it holds less than that before its last line. A last line without a newline comes last as it is.
 */
export async function* linePieces(
  chunks: AsyncIterable<Uint8Array>,
  pieceBytes: number,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  let pending: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    throwIfAborted(signal);
    pending.push(chunk);
    size += chunk.byteLength;
    if (size < pieceBytes || chunk.lastIndexOf(NEWLINE) === -1) continue;
    const data = Buffer.concat(pending, size);
    let start = 0;
    for (let end = data.indexOf(NEWLINE, pieceBytes - 1) + 1; end > 0; ) {
      yield data.subarray(start, end);
      start = end;
      end = start + pieceBytes - 1 < data.length ? data.indexOf(NEWLINE, start + pieceBytes - 1) + 1 : 0;
    }
    pending = start < data.length ? [data.subarray(start)] : [];
    size = data.length - start;
  }
  if (size > 0) yield Buffer.concat(pending, size);
}

/**
 * `lines` in consecutive groups of about `maxChars` characters (whole lines; a longer line alone), each with the index
 * of its first line.
 */
export function* lineGroups(
  lines: readonly string[],
  maxChars: number,
): Generator<{ readonly lines: readonly string[]; readonly first: number }> {
  for (let at = 0; at < lines.length; ) {
    let end = at;
    for (let chars = 0; end < lines.length && chars < maxChars; end++) chars += lines[end]!.length;
    yield { lines: at === 0 && end === lines.length ? lines : lines.slice(at, end), first: at };
    at = end;
  }
}

/**
 * `transcoder.pieces` of a batch of lines (the first numbered `firstLine`), transcoded a piece of about
 * {@link STREAM_PIECE_BYTES} at a time, so the text of a whole batch of wide rows never exists at once. A group that
 * fails throws what `fail` makes of its error (given the group's lines and the number of its first line).
 */
export function* transcodedPieces(
  transcoder: LineTranscoder,
  lines: readonly string[],
  firstLine: number,
  fail: (e: unknown, lines: readonly string[], firstLine: number) => unknown = (e) => e,
): Generator<string> {
  for (const part of lineGroups(lines, STREAM_PIECE_BYTES)) {
    let pieces: string[];
    try {
      pieces = transcoder.pieces(part.lines, firstLine + part.first);
    } catch (e) {
      throw fail(e, part.lines, firstLine + part.first);
    }
    yield* pieces;
  }
}

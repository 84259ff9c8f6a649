/**
 * A snapshot read connection on its own thread. SQLite work is synchronous, so on the main thread it
 * competes with hashing and compression of the same backup; here a worker holds the read transaction
 * (so every entity of the source sees one moment) and renders pages while the main thread consumes the
 * previous one. Pages are pulled one at a time, with one page rendered ahead.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { STREAM_PIECE_BYTES } from '@koan/data/adapter-kit';

// The worker runs as a plain script (no TypeScript, no module resolution of its own): it gets the
// better-sqlite3 path from the main thread.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
db.exec('BEGIN');
db.prepare('SELECT count(*) FROM sqlite_master').get();
const statements = new Map();
const prepare = (sql, safe, pluck) => {
  const key = (pluck ? 'p:' : safe ? 's:' : 'n:') + sql;
  let st = statements.get(key);
  if (!st) {
    st = db.prepare(sql);
    try { if (pluck) st.pluck(true); else st.raw(true); } catch {}
    st.safeIntegers(!!safe);
    statements.set(key, st);
  }
  return st;
};
const missing = (e) => /no such table/.test(String(e && e.message));
// About the bytes of a raw row's values in an archive line (strings, integers as bigints, BLOBs as base64), for page
// sizes: see rowBytes in @koan/data.
const rowSize = (row) => {
  let n = 3;
  for (const v of row)
    n += typeof v === 'string' ? v.length + 3 : v && typeof v === 'object' ? Math.ceil(v.byteLength / 3) * 4 + 3 : 24;
  return n;
};
const cursors = new Map();
function page(c) {
  try {
    if (c.done) return { done: true };
    if (c.kind === 'pages') {
      // BLOBs of newline-ended lines built by SQLite, each with its last key and row count (see linePageSql in
      // sqlite-adapter.ts), sized to about pieceBytes at the size of the rows so far (a buffer over 128 KiB is a
      // fresh mapping each time, and page faults cost more than the rendering: measured). One reply carries up to
      // c.size rows: a message per piece cost more than the pieces.
      // A reply also stops at replyBytes (wide rows: 1,000 of them would be 100 MB in one message).
      const chunks = [];
      let total = 0;
      let totalBytes = 0;
      while (!c.done && total < c.size && totalBytes < c.replyBytes) {
        const limit = c.rows === 0 ? Math.min(c.size, 16)
          : Math.max(1, Math.min(c.size, Math.floor(c.pieceBytes / Math.max(1, c.bytes / c.rows))));
        // Integers as bigints: the page's last key (a bigint key beyond 2^53) must be exact for the next page.
        const row = c.last === undefined ? prepare(c.first, true, false).get(limit) : prepare(c.next, true, false).get(c.last, limit);
        const piece = row && row[0];
        const count = row ? Number(row[2]) : 0;
        if (!piece || count === 0) { c.done = true; break; }
        c.last = row[1];
        c.bytes += piece.length;
        c.rows += count;
        total += count;
        totalBytes += piece.length;
        if (count < limit) c.done = true;
        // Transferred when the BLOB owns its memory (better-sqlite3's do), copied otherwise.
        chunks.push(piece.byteOffset === 0 && piece.buffer.byteLength === piece.length ? piece : new Uint8Array(piece));
      }
      if (chunks.length === 0) return { done: true };
      return { chunks, count: total, bytes: totalBytes };
    }
    // Rows pages sized to the byte budget at the size of the rows so far (16 first, at most 8 times the page before).
    const limit = c.rows === 0 ? Math.min(c.size, 16)
      : Math.max(1, Math.min(c.size, c.limit * 8, Math.ceil(c.budget / Math.max(1, c.bytes / c.rows))));
    c.limit = limit;
    const rows = c.last === undefined ? prepare(c.first, c.safe).all(limit) : prepare(c.next, c.safe).all(...c.last, limit);
    if (rows.length === 0) { c.done = true; return { done: true }; }
    const lastRow = rows[rows.length - 1];
    c.last = c.keyIndexes.map((i) => lastRow[i]);
    if (rows.length < limit) c.done = true;
    let bytes = 0;
    for (const row of rows) bytes += rowSize(row);
    c.bytes += bytes;
    c.rows += rows.length;
    return { rows, bytes };
  } catch (e) {
    c.done = true;
    if (missing(e)) return { done: true };
    return { error: String(e && e.message || e) };
  }
}
// Up to AHEAD pages (and less than the cursor's byte budget of them) are rendered before they are asked for, one
// per turn of the event loop so that requests are answered in between: the main thread never waits while this
// thread idles.
const AHEAD = 4;
function deliver(c) {
  while (c.asked > 0 && c.queue.length > 0) {
    const result = c.queue.shift();
    c.queued -= result.bytes || 0;
    c.asked--;
    reply(c.id, result);
    if (result.done || result.error) { cursors.delete(c.id); c.asked = 0; c.queue = []; }
  }
}
function pump(c) {
  if (c.pumping || c.ended || c.queue.length >= AHEAD || c.queued >= c.budget || cursors.get(c.id) !== c) return;
  c.pumping = true;
  setImmediate(() => {
    c.pumping = false;
    if (cursors.get(c.id) !== c || c.ended) return;
    const result = c.done ? { done: true } : page(c);
    if (result.done || result.error) c.ended = true;
    c.queued += result.bytes || 0;
    c.queue.push(result);
    deliver(c);
    pump(c);
  });
}
function reply(id, result) {
  if (result.chunks) parentPort.postMessage({ id, ...result }, result.chunks.map((c) => c.buffer));
  else parentPort.postMessage({ id, ...result });
}
parentPort.on('message', (m) => {
  if (m.type === 'count') {
    try { reply(m.id, { value: Number(prepare(m.sql, false).get()[0]) }); }
    catch (e) { reply(m.id, missing(e) ? { value: 0 } : { error: String(e.message) }); }
  } else if (m.type === 'open') {
    cursors.set(m.id, { ...m, last: undefined, done: false, queue: [], queued: 0, asked: 0, pumping: false, bytes: 0, rows: 0, limit: 0 });
    reply(m.id, { opened: true });
  } else if (m.type === 'next') {
    const c = cursors.get(m.id);
    if (!c) return reply(m.id, { done: true });
    c.asked++;
    deliver(c);
    pump(c);
  } else if (m.type === 'close') {
    cursors.delete(m.id);
  } else if (m.type === 'end') {
    cursors.clear();
    try { if (db.inTransaction) db.exec('ROLLBACK'); db.close(); } finally { parentPort.close(); }
  }
});
parentPort.postMessage({ id: 0, ready: true });
`;

/** A reply of rendered lines carries up to this many bytes: a message per piece cost more than the pieces. */
const REPLY_BYTES = 1024 * 1024;

type Reply = {
  id: number;
  error?: string;
  done?: boolean;
  chunks?: Uint8Array[];
  rows?: unknown[][];
  value?: number;
  ready?: boolean;
};

export interface SnapshotCursor {
  next(): Promise<Reply>;
  close(): void;
}

export class SnapshotWorker {
  readonly #worker: Worker;
  readonly #waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #failure: Error | undefined;
  readonly #exited: Promise<void>;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.on('message', (r: Reply) => {
      const w = this.#waiting.get(r.id);
      if (!w) return;
      this.#waiting.delete(r.id);
      if (r.error) w.reject(new Error(r.error));
      else w.resolve(r);
    });
    this.#exited = new Promise((resolve) => {
      worker.once('exit', () => resolve());
    });
    worker.on('error', (e) => {
      this.#failure = e;
      for (const w of this.#waiting.values()) w.reject(e);
      this.#waiting.clear();
    });
  }

  /** Starts the worker and waits until its read transaction holds a snapshot. */
  static async open(path: string, busyTimeoutMs: number): Promise<SnapshotWorker> {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    // A small young generation: each page leaves ~1 MB of short-lived strings, and the default (up to 16 MB
    // semi-spaces) let this thread's heap grow by ~30 MB for no speed (measured at 1M rows).
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver, path, busyTimeoutMs },
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    const sw = new SnapshotWorker(worker);
    await new Promise<void>((resolve, reject) => {
      const onReady = (r: Reply) => {
        if (r.ready) {
          worker.off('message', onReady);
          resolve();
        }
      };
      worker.on('message', onReady);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`snapshot worker exited (${code}) before it was ready`)));
    });
    return sw;
  }

  #call(message: Record<string, unknown>, id = this.#nextId++): Promise<Reply> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ ...message, id });
    });
  }

  async count(sql: string): Promise<number> {
    return (await this.#call({ type: 'count', sql })).value ?? 0;
  }

  /**
   * A cursor over pages: `pages` yields rendered JSON-line bytes (pieces of about `pieceBytes`, at most `size` rows
   * and about `replyBytes` a reply), `rows` raw row arrays (at most `size` rows a page, sized to about `budget`
   * bytes). The pages rendered ahead stay under `budget` bytes.
   */
  async cursor(spec: {
    kind: 'pages' | 'rows';
    first: string;
    next: string;
    size: number;
    budget: number;
    safe?: boolean;
    keyIndexes?: number[];
  }): Promise<SnapshotCursor> {
    const id = this.#nextId++;
    const pieceBytes = Math.min(STREAM_PIECE_BYTES, spec.budget);
    await this.#call({ type: 'open', ...spec, pieceBytes, replyBytes: Math.min(REPLY_BYTES, spec.budget) }, id);
    return {
      next: () => this.#call({ type: 'next' }, id),
      close: () => {
        if (!this.#failure) this.#worker.postMessage({ type: 'close', id });
      },
    };
  }

  /** Ends the read transaction, closes the connection and stops the thread. */
  async end(): Promise<void> {
    if (!this.#failure) this.#worker.postMessage({ type: 'end' });
    const timer = setTimeout(() => void this.#worker.terminate(), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}

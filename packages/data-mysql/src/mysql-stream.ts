/**
 * Rows of one streaming query, in batches: for tables without a primary key, which have no key to page by. The
 * server sends the rows in its scan order (InnoDB: the hidden row id, insertion order) in one result; the connection
 * pauses while batches wait for the consumer, so memory stays bounded whatever the table's size.
 */
import { rowBytes, throwIfAborted } from '@koan/data/adapter-kit';
import type { PoolConnection } from 'mysql2/promise';

/** Batches read ahead of the consumer before the connection pauses. */
const BATCHES_AHEAD = 2;

/**
 * The rows of `sql` (`rowsAsArray`) in batches of `batchSize` rows, each closed once its rows reach `batchBytes`.
 * Stopping early: the caller destroys a `pooled` connection (its result cannot be cut short); any other one reads the
 * rest of the result here, so it stays usable (a snapshot's).
 */
export async function* streamRows(
  conn: PoolConnection,
  sql: string,
  batchSize: number,
  batchBytes: number,
  pooled: boolean,
  signal: AbortSignal | undefined,
): AsyncGenerator<unknown[][]> {
  const core = conn.connection as unknown as import('mysql2').Connection;
  const query = core.query({ sql, rowsAsArray: true });
  const ready: unknown[][][] = [];
  let current: unknown[][] = [];
  let currentBytes = 0;
  let ended = false;
  let failure: unknown;
  let paused = false;
  let discard = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  query.on('result', (row: unknown) => {
    if (discard) return;
    current.push(row as unknown[]);
    currentBytes += rowBytes(row);
    if (current.length < batchSize && currentBytes < batchBytes) return;
    ready.push(current);
    current = [];
    currentBytes = 0;
    if (ready.length >= BATCHES_AHEAD && !paused) {
      paused = true;
      core.pause();
    }
    notify();
  });
  query.on('error', (e: unknown) => {
    failure ??= e;
    ended = true;
    notify();
  });
  query.on('end', () => {
    if (current.length) ready.push(current);
    current = [];
    ended = true;
    notify();
  });
  signal?.addEventListener('abort', notify);
  let finished = false;
  try {
    for (;;) {
      throwIfAborted(signal);
      if (failure !== undefined) throw failure;
      const batch = ready.shift();
      if (batch) {
        if (paused && ready.length === 0) {
          paused = false;
          core.resume();
        }
        yield batch;
        continue;
      }
      if (ended) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    finished = true;
  } finally {
    signal?.removeEventListener('abort', notify);
    if (!finished) {
      discard = true;
      ready.length = 0;
      if (!pooled) {
        if (paused) core.resume();
        if (!ended)
          await new Promise<void>((resolve) => {
            query.once('end', () => resolve());
            query.once('error', () => resolve());
          });
      }
    }
  }
}

/** PostgreSQL errors as DataErrors naming the entity, record and constraint; cancelling a statement on abort. */
import { DataError, type DataRecord, type EntitySchema } from '@koan/data';
import { describeKey } from '@koan/data/adapter-kit';
import pg from 'pg';

/**
 * A server error about one COPY row (its `where` reads `COPY "Person", line 12, column visits: ...`) as a
 * DataError whose `details.line` is that row's 0-based line.
 */
export function withCopyLine(e: unknown, entity: EntitySchema, set: string): unknown {
  const where = (e as { where?: string }).where;
  const line = where ? /\bCOPY [^,]+, line (\d+)/.exec(where)?.[1] : undefined;
  const mapped = mapWriteError(e, entity, set);
  if (line === undefined || !(mapped instanceof DataError)) return mapped;
  return new DataError(mapped.code, `${mapped.message} (line ${line})`, {
    cause: e,
    details: { ...mapped.details, line: Number(line) - 1 },
  });
}

function pgCode(e: unknown): string | undefined {
  return (e as { code?: unknown })?.code as string | undefined;
}

export function isUndefinedTable(e: unknown): boolean {
  return pgCode(e) === '42P01';
}

export function isConnectionError(e: unknown): boolean {
  const code = pgCode(e);
  return code === undefined || code.startsWith('08') || code === '57P01';
}

export function mapWriteError(e: unknown, entity: EntitySchema, set: string, records?: readonly DataRecord[]): unknown {
  const code = pgCode(e);
  if (code === '23503') return foreignKeyError(e as pg.DatabaseError, entity, set, records);
  if (code === '23505') {
    const key = /\)=\((.*)\) already exists/.exec((e as { detail?: string }).detail ?? '')?.[1];
    return new DataError(
      'DUPLICATE_KEY',
      `${entity.name}: a record with key ${JSON.stringify(key)} already exists in set "${set}". Use upsert to replace it.`,
      { cause: e, details: { entity: entity.name, set, key } },
    );
  }
  if (code === '42P01')
    return new DataError(
      'TABLE_MISSING',
      `[postgres] ${entity.name} set "${set}" does not exist: call ensureEntity(entity, "${set}") before writing.`,
      { cause: e, details: { entity: entity.name, set } },
    );
  if (code?.startsWith('22') || code?.startsWith('23'))
    return new DataError('INVALID_VALUE', `[postgres] ${entity.name}: ${(e as Error).message}`, {
      cause: e,
      details: { entity: entity.name, set },
    });
  return e;
}

/**
 * While `signal` is live, an abort sends the server a CancelRequest (over a new connection, as PostgreSQL wants it)
 * for the statement `client` is running, if `ours()` says it belongs to the operation: a query waiting on a lock,
 * or still sorting before its first row, stops with 57014 instead of finishing first. Returns the function that
 * stops listening.
 */
export function cancelOnAbort(
  client: pg.ClientBase,
  signal: AbortSignal | undefined,
  ours: () => boolean = () => true,
): () => void {
  if (!signal) return () => {};
  const onAbort = () => {
    const running = client as unknown as { activeQuery?: unknown; host?: string; port?: number };
    if (!running.activeQuery || !ours()) return;
    const canceller = new pg.Client({
      ...(running.host !== undefined ? { host: running.host } : {}),
      ...(running.port !== undefined ? { port: running.port } : {}),
    }) as unknown as { cancel(client: unknown, query: unknown): void };
    canceller.cancel(client, running.activeQuery);
  };
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

const unquote = (name: string): string => (name.startsWith('"') ? name.slice(1, -1).replaceAll('""', '"') : name);

/**
 * A foreign-key violation naming the entity, the record key and the constraint. PostgreSQL reports the missing
 * parent value (`Key (customer_id)=(99) is not present in table "customer"`); the record is the batch's first
 * one holding that value.
 */
function foreignKeyError(
  e: pg.DatabaseError,
  entity: EntitySchema,
  set: string,
  records?: readonly DataRecord[],
): DataError {
  const constraint = e.constraint ?? '?';
  const missing = /^Key \((.+)\)=\((.*)\) is not present in table "(.+)"\.$/s.exec(e.detail ?? '');
  if (!missing) {
    // A parent row that is still referenced (a DELETE of the parent).
    return new DataError('FOREIGN_KEY_VIOLATION', `[postgres] ${entity.name}: ${e.message} (${e.detail ?? ''})`, {
      cause: e,
      details: { entity: entity.name, set, constraint, ...(e.table ? { table: e.table } : {}) },
    });
  }
  const columns = missing[1]!.split(', ').map(unquote);
  const values = missing[2]!.split(', ');
  const record = records?.find((r) => columns.every((c, i) => String(r[c]) === values[i]));
  const key = record ? describeKey(entity, record) : undefined;
  return new DataError(
    'FOREIGN_KEY_VIOLATION',
    `[postgres] ${entity.name} record ${key === undefined ? '(unknown key)' : JSON.stringify(key)} references ${missing[3]} with ${columns.join(', ')} = ${missing[2]}, which does not exist (constraint ${constraint}).`,
    {
      cause: e,
      details: {
        entity: entity.name,
        set,
        key,
        constraint,
        references: missing[3],
        // Without the records (a streamed import), the child's values let the caller find the record.
        ...(record ? {} : { match: Object.fromEntries(columns.map((c, i) => [c, values[i]])) }),
      },
    },
  );
}

/** Records for naming a failure; none when the lines themselves do not decode (their error is raised elsewhere). */
export function recordsOrNone(records: () => readonly DataRecord[]): readonly DataRecord[] | undefined {
  try {
    return records();
  } catch {
    return undefined;
  }
}

/**
 * The JSON-files adapter: one JSON Lines file per entity set in a directory, in the archive encoding of
 * `codec.ts`, so every field type round-trips exactly. Good for small data, fixtures and demos.
 *
 * Limitations, by design:
 * - A file is read whole on first use and kept in memory; every write rewrites the whole file
 *   (temp file in the same directory, fsync, rename, fsync of the directory), so a crash leaves either
 *   the old or the new file, never a torn one.
 * - One process owns the directory: changes made to the files by others while the adapter is open are not seen.
 * - `transaction()` stages writes and commits them only when `fn` returns, so a throw leaves nothing; but the
 *   commit renames one file after another, so a crash during commit can keep some files and not others.
 *   That is why `capabilities.transactions` is false.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AdapterCapabilities, DataProvider } from '../adapter.js';
import { decodeRecord, encodeRecordLine } from '../codec.js';
import { ConfigError, DataError } from '../errors.js';
import type { EntitySchema } from '../schema.js';
import type { DataRecord } from '../types.js';
import { KeyedTablesAdapter } from './_keyed-adapter.js';
import { KeyedTable } from './_keyed-table.js';

export const PROVIDER_NAME = 'json';

export interface JsonFileSettings {
  /** Directory of the files, relative to the runtime's cwd. Created if missing. */
  readonly directory: string;
}

const CAPABILITIES: AdapterCapabilities = Object.freeze({
  transactions: false,
  snapshotReads: true,
  nativeUpsert: true,
  bulkLoad: false,
  orderedStreaming: true,
  sets: true,
  introspection: false,
  ttl: false,
  nonFiniteNumbers: true,
});

const EXT = '.jsonl';
const CHUNK = 1 << 20;

export class JsonFileAdapter extends KeyedTablesAdapter {
  readonly provider = PROVIDER_NAME;
  readonly capabilities = CAPABILITIES;
  readonly directory: string;
  #queue: Promise<void> = Promise.resolve();

  constructor(directory: string) {
    super();
    this.directory = directory;
  }

  /** Creates nothing: the directory is made by the first write, so reads (a backup, a dry run) leave no trace. */
  override async init(): Promise<void> {}

  override async close(): Promise<void> {
    await this.#queue.catch(() => {});
    await super.close();
  }

  protected location(physical: string): string {
    return join(this.directory, encodeURIComponent(physical) + EXT);
  }

  protected async storedNames(): Promise<string[]> {
    let files: string[];
    try {
      files = await readdir(this.directory);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    return files.filter((f) => f.endsWith(EXT)).map((f) => decodeURIComponent(f.slice(0, -EXT.length)));
  }

  protected async load(entity: EntitySchema, physical: string): Promise<KeyedTable | undefined> {
    const file = this.location(physical);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const table = new KeyedTable(entity);
    let lineNo = 0;
    for (const line of text.split('\n')) {
      lineNo++;
      if (!line.trim()) continue;
      try {
        const { record } = decodeRecord(entity, JSON.parse(line) as Record<string, unknown>, 'nested');
        table.rows.set(record[entity.key] as string | number, record);
      } catch (e) {
        throw new DataError(
          'CORRUPT_FILE',
          `${file}:${lineNo}: not a valid ${entity.name} record (${(e as Error).message}). Fix or remove the line.`,
          {
            cause: e,
            details: { file, line: lineNo },
          },
        );
      }
    }
    return table;
  }

  protected persist(changed: ReadonlyMap<string, KeyedTable>): Promise<void> {
    // One persist at a time: each captures the tables' state when it starts, so the last one wins on disk.
    const next = this.#queue.catch(() => {}).then(() => this.#persistNow(changed));
    this.#queue = next;
    return next;
  }

  async #persistNow(changed: ReadonlyMap<string, KeyedTable>): Promise<void> {
    // Write every temp file first, then rename: a failure before the renames changes nothing.
    const staged: { tmp: string; file: string }[] = [];
    await mkdir(this.directory, { recursive: true });
    try {
      for (const [physical, table] of changed) {
        const file = this.location(physical);
        const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
        staged.push({ tmp, file });
        await writeDurably(tmp, table.schema, table.sortedRecords());
      }
    } catch (e) {
      await Promise.allSettled(staged.map((s) => rm(s.tmp, { force: true })));
      throw e;
    }
    for (const { tmp, file } of staged) await rename(tmp, file);
    await syncDirectory(this.directory);
  }
}

async function writeDurably(path: string, schema: EntitySchema, records: readonly DataRecord[]): Promise<void> {
  const handle = await open(path, 'w');
  try {
    let chunk = '';
    for (const record of records) {
      chunk += encodeRecordLine(schema, record, 'nested') + '\n';
      if (chunk.length >= CHUNK) {
        await handle.write(chunk);
        chunk = '';
      }
    }
    if (chunk) await handle.write(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(directory: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch {
    // Some platforms (Windows) cannot fsync a directory; the rename is still atomic there.
  } finally {
    await handle?.close();
  }
}

/** A JSON-files adapter over `settings.directory`, resolved against `cwd`. */
export function createJsonFileAdapter(settings: JsonFileSettings, cwd: string = process.cwd()): JsonFileAdapter {
  if (typeof settings?.directory !== 'string' || !settings.directory)
    throw new ConfigError(
      'INVALID_SETTINGS',
      '[json] Missing required setting `directory` (the folder for the entity files).',
    );
  return new JsonFileAdapter(resolve(cwd, settings.directory));
}

export const provider: DataProvider<JsonFileSettings> = {
  name: PROVIDER_NAME,
  settings: { directory: 'text' },
  create: (settings, context) => createJsonFileAdapter(settings, context.cwd),
};

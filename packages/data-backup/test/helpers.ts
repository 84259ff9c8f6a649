import { type Dirent, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { type DataAdapter, DataRuntime, Entity, type FieldsShape, type SourceConfig, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { type BackupConfig, BackupContext, type ProgressEvent } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import { createScratch, type Dialect, probeDialect, type ScratchDatabase } from './scratch-databases.js';

/** A context on real local disk in a temp dir, with the given data sources. */
export async function makeContext(
  sources: Record<string, SourceConfig>,
  options: {
    profiles?: Record<string, { provider: string; settings?: Record<string, unknown> }>;
    config?: Partial<BackupConfig>;
  } = {},
): Promise<{ context: BackupContext; dir: string; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'koan-backup-test-'));
  const runtime = new DataRuntime({ sources, cwd: dir });
  const storage = await StorageProfiles.load(
    {
      defaultProfile: options.profiles && !options.profiles.local ? Object.keys(options.profiles)[0]! : 'local',
      profiles: options.profiles ?? { local: { provider: 'local', settings: { root: join(dir, 'backups') } } },
    },
    { cwd: dir },
  );
  const context = new BackupContext({ runtime, storage, ...(options.config ? { config: options.config } : {}) });
  return {
    context,
    dir,
    cleanup: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every file under `dir` (relative paths, sorted); an absent dir has none. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

/**
 * Makes an entity set unreadable for real: creates its table with only the key column, so the declared entity's
 * `ensure` fails with SCHEMA_MISMATCH (SQLite).
 */
export async function breakTable(runtime: DataRuntime, name: string, source: string, key = 'id'): Promise<void> {
  const keyOnly = { [key]: t.integer() } as FieldsShape;
  await new Entity(buildSchema({ name, key, fields: keyOnly, source }, 'declared'), keyOnly)
    .withRuntime(runtime)
    .upsertMany([{ [key]: 1 }]);
}

/** Collects progress events. */
export function progressLog(): { events: ProgressEvent[]; listener: (e: ProgressEvent) => void } {
  const events: ProgressEvent[] = [];
  return { events, listener: (e) => events.push(e) };
}

/**
 * From entity-start/entity-done events: the largest number of entities in flight at once, keyed by entity@set.
 */
export function maxInFlight(events: readonly ProgressEvent[]): number {
  const open = new Set<string>();
  let max = 0;
  for (const e of events) {
    const id = `${e.entity}@${e.set}`;
    if (e.phase === 'entity-start') open.add(id);
    if (e.phase === 'entity-done') open.delete(id);
    max = Math.max(max, open.size);
  }
  return max;
}

type TestContextLike = { skip(note?: string): void };

/**
 * Runs `fn` with a context whose default source is a scratch database of `dialect` (skipped, with the reason, when
 * its server does not answer outside CI); the context and the database are removed afterwards.
 */
export async function withScratchContext(
  ctx: TestContextLike,
  dialect: Dialect,
  label: string,
  fn: (env: Awaited<ReturnType<typeof makeContext>>, db: ScratchDatabase) => Promise<void>,
): Promise<void> {
  const reason = await probeDialect(dialect);
  if (reason) return ctx.skip(reason);
  const db = await createScratch(dialect, label);
  const env = await makeContext({ default: db.source });
  try {
    await fn(env, db);
  } finally {
    await env.cleanup();
    await db.drop();
  }
}

/** Counts calls to `adapter.count` until `restore()` puts the method back. */
export function spyOnCount(adapter: DataAdapter): { calls(): number; restore(): void } {
  const count = adapter.count.bind(adapter);
  let calls = 0;
  adapter.count = (...args) => {
    calls++;
    return count(...args);
  };
  return {
    calls: () => calls,
    restore: () => {
      adapter.count = count;
    },
  };
}

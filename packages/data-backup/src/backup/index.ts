import type { Entity } from '@koan/data';
import { isAbortError } from '@koan/data/adapter-kit';
import type { BackupContext } from '../context.js';
import { planBackup } from '../plan.js';
import type { BackupTarget } from '../select.js';
import { type BackupOptions, type BackupResult, type GlobalBackupOptions, resolveOptions } from './options.js';
import { runBackup } from './run.js';

export type { BackupOptions, BackupResult, GlobalBackupOptions } from './options.js';
export { runBackup } from './run.js';

/**
 * Backs up every set (or `options.sets`) of one entity. A source that cannot be reached fails the backup as any other
 * failure does: a `Failed` backup is recorded in the catalog and `BackupError` `BACKUP_FAILED` is thrown.
 */
export async function backupEntity(
  context: BackupContext,
  entity: Entity,
  name: string,
  options: BackupOptions = {},
): Promise<BackupResult> {
  resolveOptions(context, name, options); // bad options fail before the source is read
  const source = entity.schema.source;
  const bound = entity.runtime() === context.runtime ? entity : entity.withRuntime(context.runtime);
  let targets: BackupTarget[];
  try {
    const adapter = await context.runtime.adapter(source);
    const sets = options.sets ?? (await adapter.listSets(entity.schema));
    targets = [...new Set(sets.length ? sets : ['root'])].map((set) => ({
      entity: bound,
      set,
      source,
      provider: adapter.provider,
    }));
  } catch (e) {
    if (isAbortError(e) || options.signal?.aborted) throw e;
    // Recorded by runBackup as the entity's failure, so the catalog shows the Failed backup (nothing is published).
    const unavailable = e instanceof Error ? e : new Error(String(e));
    const provider = context.runtime.sources[source]?.provider ?? 'unknown';
    targets = (options.sets ?? ['root']).map((set) => ({ entity: bound, set, source, provider, unavailable }));
  }
  return runBackup(context, name, targets, { ...options, continueOnError: false });
}

/**
 * Backs up every discovered entity (filtered by the options) into one archive. What is left out is planned first
 * (`planBackup`): unknown selection values, and tables that cannot be backed up and are not excluded, fail before
 * anything is read; everything left out is recorded in the manifest's `omitted`.
 */
export async function backupAllEntities(
  context: BackupContext,
  name: string,
  options: GlobalBackupOptions = {},
): Promise<BackupResult> {
  resolveOptions(context, name, options); // bad options fail before any source is read
  const plan = await planBackup(context, options);
  return runBackup(context, name, plan.targets, { ...options, omitted: [...plan.omitted, ...(options.omitted ?? [])] });
}

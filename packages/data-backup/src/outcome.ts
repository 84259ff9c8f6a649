/**
 * Whether a finished backup or restore did everything it was asked: the one rule behind the CLI's exit codes and the
 * HTTP API's job statuses. A backup or restore that returns (rather than throws) may still have left entity sets
 * behind (`continueOnError`, `schemaPolicy: 'lenient'`); this says so, with each one and why.
 */
import type { BackupResult } from './backup.js';
import type { RestoreReport } from './restore.js';

/** What a finished operation did not do. */
export interface Shortfall {
  /**
   * `BACKUP_PARTIAL` (some entity sets failed and the backup is `PartiallyCompleted`), `RESTORE_PARTIAL` (some were
   * restored, some failed), `RESTORE_FAILED` (none was restored), `RESTORE_WOULD_FAIL` (a dry run found sets that
   * would fail).
   */
  readonly code: 'BACKUP_PARTIAL' | 'RESTORE_PARTIAL' | 'RESTORE_FAILED' | 'RESTORE_WOULD_FAIL';
  /** The operation's overall status (`PartiallyCompleted`, `Failed`, `DryRun`). */
  readonly status: string;
  readonly message: string;
  /** Every entity set that failed, with its error. */
  readonly failed: readonly { readonly entity: string; readonly set: string; readonly error: string }[];
}

const isRestore = (r: BackupResult | RestoreReport): r is RestoreReport => 'backupId' in r;

/** What `result` left undone, or `undefined` when every selected entity set was backed up or restored. */
export function shortfallOf(result: BackupResult | RestoreReport): Shortfall | undefined {
  const failed = isRestore(result)
    ? result.entities
        .filter((e) => e.status === 'Failed')
        .map((e) => ({ entity: e.entityType, set: e.set, error: e.error ?? 'failed' }))
    : result.entities
        .filter((e) => e.status === 'Failed')
        .map((e) => ({ entity: e.entityType, set: e.set, error: e.errorMessage ?? 'failed' }));
  if (!failed.length) return undefined;
  const total = result.entities.length;
  const list = failed.map((f) => `${f.entity}@${f.set}: ${f.error}`).join('; ');
  const counted = `${failed.length} of ${total} entity set${total === 1 ? '' : 's'}`;
  if (!isRestore(result))
    return {
      code: 'BACKUP_PARTIAL',
      status: result.status,
      message: `Backup ${result.name} is ${result.status}: ${counted} failed (${list}).`,
      failed,
    };
  const name = `${result.backupName} (${result.backupId})`;
  if (result.status === 'DryRun')
    return {
      code: 'RESTORE_WOULD_FAIL',
      status: result.status,
      message: `A restore of ${name} would fail for ${counted} (${list}).`,
      failed,
    };
  return {
    code: result.status === 'Failed' ? 'RESTORE_FAILED' : 'RESTORE_PARTIAL',
    status: result.status,
    message: `Restore of ${name} is ${result.status}: ${counted} failed (${list}).`,
    failed,
  };
}

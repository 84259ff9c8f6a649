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
   * restored; some failed, or are not in the archive because they failed during the backup), `RESTORE_FAILED` (none
   * was restored), `RESTORE_WOULD_FAIL` (a dry run found sets that would fail or that the archive lacks).
   */
  readonly code: 'BACKUP_PARTIAL' | 'RESTORE_PARTIAL' | 'RESTORE_FAILED' | 'RESTORE_WOULD_FAIL';
  /** The operation's overall status (`PartiallyCompleted`, `Failed`, `DryRun`). */
  readonly status: string;
  readonly message: string;
  /**
   * Every entity set that failed, with its error; for a restore also every selected set the archive does not hold
   * (its error starts with `not in the archive`).
   */
  readonly failed: readonly { readonly entity: string; readonly set: string; readonly error: string }[];
}

const isRestore = (r: BackupResult | RestoreReport): r is RestoreReport => 'backupId' in r;

type Missed = { readonly entity: string; readonly set: string; readonly error: string };
const listOf = (sets: readonly Missed[]) => sets.map((f) => `${f.entity}@${f.set}: ${f.error}`).join('; ');
const counted = (n: number, total: number) => `${n} of ${total} entity set${total === 1 ? '' : 's'}`;

/** What `result` left undone, or `undefined` when every selected entity set was backed up or restored. */
export function shortfallOf(result: BackupResult | RestoreReport): Shortfall | undefined {
  if (!isRestore(result)) {
    const failed = result.entities
      .filter((e) => e.status === 'Failed')
      .map((e) => ({ entity: e.entityType, set: e.set, error: e.errorMessage ?? 'failed' }));
    if (!failed.length) return undefined;
    return {
      code: 'BACKUP_PARTIAL',
      status: result.status,
      message: `Backup ${result.name} is ${result.status}: ${counted(failed.length, result.entities.length)} failed (${listOf(failed)}).`,
      failed,
    };
  }
  const of = (status: string) =>
    result.entities
      .filter((e) => e.status === status)
      .map((e) => ({ entity: e.entityType, set: e.set, error: e.error ?? 'failed' }));
  const failed = of('Failed');
  const absent = of('Skipped');
  if (!failed.length && !absent.length) return undefined;
  const total = result.entities.length;
  const name = `${result.backupName} (${result.backupId})`;
  const dry = result.status === 'DryRun';
  const parts = [
    ...(failed.length ? [`${counted(failed.length, total)} ${dry ? 'would fail' : 'failed'} (${listOf(failed)})`] : []),
    ...(absent.length
      ? [
          `${failed.length ? absent.length : counted(absent.length, total)} ${absent.length === 1 ? 'is' : 'are'} not in the archive (the backup is ${result.backupStatus}): ${listOf(absent)}. To restore only what the archive holds, leave ${absent.length === 1 ? 'it' : 'them'} out (excludeEntityTypes; CLI --exclude-entity ${absent.map((a) => a.entity).join(',')})`,
        ]
      : []),
  ].join('; ');
  if (dry)
    return {
      code: 'RESTORE_WOULD_FAIL',
      status: result.status,
      message: `A restore of ${name} would not restore everything: ${parts}.`,
      failed: [...failed, ...absent],
    };
  return {
    code: result.status === 'Failed' ? 'RESTORE_FAILED' : 'RESTORE_PARTIAL',
    status: result.status,
    message: `Restore of ${name} is ${result.status}: ${parts}.`,
    failed: [...failed, ...absent],
  };
}

/**
 * `@koan/data-backup/plan`: what a backup or a restore takes, and where a restore writes, decided before anything is
 * read or written (the one rule of the library, the CLI and the HTTP API); schema drift between an archive and the
 * entities; and running a backup or a restore of targets chosen by the caller.
 */
export { runBackup } from '../backup.js';
export { compareSchemas, describeDrift, type SchemaDrift } from '../drift.js';
export { describeEntities, type EntitiesDescription, type EntityDescription } from '../entities.js';
export { type BackupPlan, type BackupPlanOptions, planBackup } from '../plan.js';
export { locateForRestore, runRestore } from '../restore.js';
export {
  archivedEntity,
  checkRestoreSelection,
  type RestoreSelection,
  type RestoreTarget,
  type RestoreTargetOptions,
  resolveRestoreTarget,
} from '../restore-target.js';
export { type BackupTarget, type EntityFilter, selectTargets } from '../select.js';

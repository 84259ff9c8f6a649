/**
 * `@koan/data-backup/maintenance`: keeping storage in shape: retention (restic's forget rules, per backup name),
 * removing what interrupted backups left, and the background service that runs both and scheduled backups.
 */
export { retentionPolicySchema } from '../context.js';
export {
  applyRetention,
  type BackgroundFailure,
  BackupMaintenanceService,
  cleanupLeftovers,
  type LeftoverReport,
  type MaintenanceRun,
  type ScheduledBackup,
} from '../maintenance.js';
export {
  DEFAULT_MIN_AGE_HOURS,
  DEFAULT_PROTECTED_TAGS,
  effectiveRetentionPolicy,
  KEEP_COUNTS,
  planRetention,
  type RetentionDecision,
  type RetentionEntry,
  type RetentionPolicy,
  type RetentionRequest,
  type RetentionScope,
} from '../retention.js';

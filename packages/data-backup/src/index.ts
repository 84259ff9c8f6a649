export * from './archive/index.js';
export { storageSource } from './archive/index.js';
export {
  type AdoptReceipt,
  type ArchiveRef,
  type ArchiveState,
  adoptArchive,
  deleteDamagedArchive,
  inspectArchive,
  locateArchive,
} from './archives.js';
export {
  type BackupOptions,
  type BackupResult,
  backupAllEntities,
  backupEntity,
  type GlobalBackupOptions,
  runBackup,
} from './backup.js';
export { type BackupInfo, healthOf, type LocatedBackup, readSidecar } from './catalog.js';
export {
  type BackupConfig,
  type BackupConfigInput,
  BackupContext,
  type BackupContextOptions,
  backupConfigSchema,
  getBackupContext,
  retentionPolicySchema,
  setBackupContext,
} from './context.js';
export { type CopyOptions, type CopyReceipt, copyBackup, locateForCopy } from './copy.js';
export {
  applyQuery,
  BACKUP_QUERY_FIELDS,
  BACKUP_SORT_KEYS,
  type BackupCatalog,
  BackupDiscoveryService,
  type BackupQuery,
  type BackupQueryResult,
  type CatalogStats,
  checkBackupQuery,
  type DeleteReceipt,
  parseIsoInstant,
  type UnavailableProfile,
} from './discovery.js';
export { compareSchemas, describeDrift, type SchemaDrift } from './drift.js';
export { describeEntities, type EntitiesDescription, type EntityDescription } from './entities.js';
export { BackupError, type ErrorKind, errorKind, underlyingError } from './errors.js';
export { configJsonSchema, manifestJsonSchemas } from './json-schemas.js';
export { BATCH_SIZE, COMPRESSION_LEVEL, MAX_CONCURRENCY } from './limits.js';
export {
  assertRestorable,
  isBackupId,
  isRestorable,
  type LocateOptions,
  locateBackup,
  openArchive,
} from './locate.js';
export {
  applyRetention,
  type BackgroundFailure,
  BackupMaintenanceService,
  cleanupLeftovers,
  type LeftoverReport,
  type MaintenanceRun,
  type ScheduledBackup,
} from './maintenance.js';
export {
  assertBackupName,
  type BackupManifest,
  type BackupSidecar,
  type BackupStatus,
  backupStatuses,
  CHECKSUMS_ENTRY,
  type EntityManifest,
  entityEntryName,
  FORMAT_VERSION,
  type HealthStatus,
  healthStatuses,
  MANIFEST_ENTRY,
  manifestSchema,
  type OmittedObject,
  SCHEMAS_ENTRY,
  sidecarSchema,
  type ValidationResult,
} from './manifest.js';
export {
  Heartbeat,
  type NotificationEvent,
  type NotificationFailure,
  Notifications,
  type NotificationType,
  notificationEventSchema,
  notificationsConfigSchema,
  verifyWebhookSignature,
  WebhookNotifier,
  type WebhookVerification,
} from './notify/index.js';
export { type Shortfall, shortfallOf } from './outcome.js';
export { type BackupPlan, type BackupPlanOptions, planBackup } from './plan.js';
export type { ProgressEvent, ProgressListener } from './progress.js';
export {
  type EntityRestoreReport,
  type GlobalRestoreOptions,
  locateForRestore,
  type RecordTransform,
  type RestoreOptions,
  type RestoreReport,
  type RestoreStatus,
  restoreAllEntities,
  restoreEntity,
  runRestore,
} from './restore.js';
export {
  archivedEntity,
  checkRestoreSelection,
  type RestoreSelection,
  type RestoreTarget,
  type RestoreTargetOptions,
  resolveRestoreTarget,
} from './restore-target.js';
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
} from './retention.js';
export { type BackupTarget, type EntityFilter, selectTargets } from './select.js';
export { BackupService, DataBackup, RestoreService } from './services.js';
export { readContents, type SchemaSnapshot, type SourceStructure, verifyEntries } from './verify.js';

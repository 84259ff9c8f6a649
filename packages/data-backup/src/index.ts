/**
 * `@koan/data-backup`: back up and restore entities (`DataBackup`, the services, `backupAllEntities`...), the context
 * they run in, the catalog's records and queries, progress, and the errors. Subpaths hold the rest:
 * `/catalog` (locating, querying and copying backups), `/plan` (what a backup or restore takes and where it goes),
 * `/maintenance` (retention, leftovers, scheduled backups), `/archive` (the ZIP + JSONL container and the manifest),
 * `/schemas` (schemas and bounds of what it reads), `/monitor` (readiness and health), `/notify` (notifications) and `/lease` (one leader among instances).
 */
// BackupContext starts the background maintenance this module registers (provideMaintenance in context.ts).
import './maintenance.js';

export {
  type BackupOptions,
  type BackupResult,
  backupAllEntities,
  backupEntity,
  type GlobalBackupOptions,
} from './backup.js';
export type { BackupInfo } from './catalog.js';
export {
  type BackupConfig,
  BackupContext,
  type BackupContextOptions,
  getBackupContext,
  setBackupContext,
} from './context.js';
export {
  type BackupCatalog,
  BackupDiscoveryService,
  type BackupQuery,
  type BackupQueryResult,
  type CatalogStats,
} from './discovery.js';
export { BackupError, type ErrorKind, errorKind, underlyingError } from './errors.js';
export type { BackupManifest, BackupStatus, HealthStatus } from './manifest.js';
export { type Shortfall, shortfallOf } from './outcome.js';
export type { ProgressEvent, ProgressListener } from './progress.js';
export {
  type EntityRestoreReport,
  type GlobalRestoreOptions,
  type RecordTransform,
  type RestoreOptions,
  type RestoreReport,
  type RestoreStatus,
  restoreAllEntities,
  restoreEntity,
} from './restore.js';
export { BackupService, DataBackup, RestoreService } from './services.js';

/**
 * `@koan/data-backup/catalog`: finding backups and what the catalog's rules are, for applications and the frontends
 * alike: locating a backup by name or id, the query's fields and date rule, statuses, health, backup names, copies
 * between storage profiles.
 */
export { healthOf, type LocatedBackup, readSidecar } from '../catalog.js';
export { type CopyOptions, type CopyReceipt, copyBackup, locateForCopy } from '../copy.js';
export {
  applyQuery,
  BACKUP_QUERY_FIELDS,
  BACKUP_SORT_KEYS,
  checkBackupQuery,
  type DeleteReceipt,
  parseIsoInstant,
  type UnavailableProfile,
} from '../discovery.js';
export { assertRestorable, isBackupId, isRestorable, type LocateOptions, locateBackup } from '../locate.js';
export { assertBackupName, backupStatuses, healthStatuses } from '../manifest.js';

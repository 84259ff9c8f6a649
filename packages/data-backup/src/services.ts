import type { Entity } from '@koan/data';
import {
  type BackupOptions,
  type BackupResult,
  backupAllEntities,
  backupEntity,
  type GlobalBackupOptions,
} from './backup.js';
import type { BackupInfo } from './catalog.js';
import { type BackupContext, getBackupContext } from './context.js';
import { BackupDiscoveryService } from './discovery.js';
import {
  type GlobalRestoreOptions,
  type RestoreOptions,
  type RestoreReport,
  restoreAllEntities,
  restoreEntity,
} from './restore.js';

/** Whole-application and per-entity backups. */
export class BackupService {
  readonly context: BackupContext;
  constructor(context: BackupContext) {
    this.context = context;
  }
  /** Backs up every discovered entity (filtered by the options) into one archive. */
  backupAllEntities(name: string, options?: GlobalBackupOptions): Promise<BackupResult> {
    return backupAllEntities(this.context, name, options);
  }
  backupEntity(entity: Entity, name: string, options?: BackupOptions): Promise<BackupResult> {
    return backupEntity(this.context, entity, name, options);
  }
}

/** Whole-application and per-entity restores. */
export class RestoreService {
  readonly context: BackupContext;
  constructor(context: BackupContext) {
    this.context = context;
  }
  /** Restores every entity of a backup (by name: the newest completed; or by id). */
  restoreAllEntities(ref: string, options?: GlobalRestoreOptions): Promise<RestoreReport> {
    return restoreAllEntities(this.context, ref, options);
  }
  restoreEntity(entity: Entity, ref: string, options?: RestoreOptions): Promise<RestoreReport> {
    return restoreEntity(this.context, entity, ref, options);
  }
}

/**
 * One-line backups of a single entity, on the process-wide context (koan.config.json or the embedded
 * default: SQLite data, local disk `./backups`).
 *
 * @example
 * await DataBackup.backupTo(User, 'daily-users');
 * await DataBackup.restoreFrom(User, 'daily-users');
 * const backups = await DataBackup.listBackups(User);
 */
export const DataBackup = Object.freeze({
  /** Backs up the entity (every set, or `options.sets`). A string second argument is the description. */
  async backupTo(entity: Entity, name: string, options?: BackupOptions | string): Promise<BackupResult> {
    const opts = typeof options === 'string' ? { description: options } : options;
    return backupEntity(await getBackupContext(), entity, name, opts);
  },
  /** Restores the entity from the newest completed backup named `name`. */
  async restoreFrom(entity: Entity, name: string, options?: RestoreOptions): Promise<RestoreReport> {
    return restoreEntity(await getBackupContext(), entity, name, options);
  },
  /**
   * Backups that contain the entity (all backups without an entity), newest first. A storage profile that cannot be
   * listed is skipped (use `BackupDiscoveryService.queryBackups` to see it in `unavailableProfiles`); with
   * `storageProfile`, or when no profile can be listed, its error is thrown.
   */
  async listBackups(entity?: Entity, options: { storageProfile?: string } = {}): Promise<BackupInfo[]> {
    const discovery = new BackupDiscoveryService(await getBackupContext());
    const result = await discovery.queryBackups({
      ...(entity ? { entityTypes: [entity.schema.name] } : {}),
      ...(options.storageProfile ? { storageProfiles: [options.storageProfile] } : {}),
    });
    return result.backups;
  },
});

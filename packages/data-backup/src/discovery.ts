import { KoanError } from '@koan/data';
import type { StorageDriver } from '@koan/storage';
import { type BackupInfo, readSidecar, scanProfile, toBackupInfo, writeSidecar } from './catalog.js';
import type { BackupContext } from './context.js';
import { parseIsoInstant } from './iso-instant.js';
import { locateBackup } from './locate.js';
import type { ValidationResult } from './manifest.js';
import type { ProgressListener } from './progress.js';
import {
  type BackupQuery,
  type BackupQueryResult,
  matchQuery,
  resolveQuery,
  type UnavailableProfile,
} from './query.js';
import { validateLocated } from './validate.js';

export {
  applyQuery,
  BACKUP_QUERY_FIELDS,
  BACKUP_SORT_KEYS,
  type BackupQuery,
  type BackupQueryResult,
  checkBackupQuery,
  type UnavailableProfile,
} from './query.js';
export { parseIsoInstant };

export interface BackupCatalog {
  readonly backups: BackupInfo[];
  readonly totalCount: number;
  /** Profiles that were listed (those in `unavailableProfiles` are not). */
  readonly profiles: string[];
  /** Sidecars that could not be read (reported, never hidden). */
  readonly unreadable: { profile: string; key: string; message: string }[];
  /** Profiles that could not be listed at all: reported here while the other profiles are still listed. */
  readonly unavailableProfiles: UnavailableProfile[];
  readonly discoveredAt: string;
}

export interface CatalogStats {
  readonly totalBackups: number;
  readonly totalSizeBytes: number;
  /** Completed, validated and valid. */
  readonly healthyBackups: number;
  /**
   * Health `Critical` or `Warning`: failed, cancelled or partial; failed validation (or one that reported warnings); or
   * never validated and created more than `attentionAfterDays` ago. A backup validated once is not counted again
   * however long ago that validation was.
   */
  readonly backupsRequiringAttention: number;
  readonly byStatus: Record<string, number>;
  readonly byProvider: Record<string, number>;
  readonly byStorageProfile: Record<string, number>;
  readonly byHealth: Record<string, number>;
  readonly oldestBackup?: { id: string; name: string; createdAt: string };
  readonly newestBackup?: { id: string; name: string; createdAt: string };
  readonly attentionAfterDays: number;
  /** Profiles that could not be listed: the counts above leave their backups out. */
  readonly unavailableProfiles: UnavailableProfile[];
}

export interface DeleteReceipt {
  readonly id: string;
  readonly name: string;
  readonly storageProfile: string;
  readonly deletedKeys: string[];
  readonly freedBytes: number;
  readonly deletedAt: string;
}

const codeOf = (e: unknown): string =>
  e instanceof KoanError
    ? e.code
    : typeof (e as { code?: unknown })?.code === 'string'
      ? (e as { code: string }).code
      : 'ERROR';
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * The catalog: discovers backups in every storage profile from their sidecars (never opening an
 * archive), queries them, validates them deeply and deletes them.
 */
export class BackupDiscoveryService {
  readonly #context: BackupContext;

  constructor(context: BackupContext) {
    this.#context = context;
  }

  #attentionMs(): number {
    return this.#context.config.attentionAfterDays * 86_400_000;
  }

  /**
   * Every backup in every configured profile (or just `storageProfiles`), listed concurrently. A profile that cannot be
   * listed (unreachable endpoint, denied access, missing bucket...) does not fail the whole catalog: it is reported in
   * `unavailableProfiles` (name, error code and message) and the other profiles are still listed. When no profile
   * could be listed at all (e.g. `storageProfiles: ['s3']` and s3 is down), the first profile's error is thrown. A
   * profile name that is not configured, and cancellation through `signal`, always throw.
   */
  async discoverAllBackups(
    options: { storageProfiles?: readonly string[]; signal?: AbortSignal } = {},
  ): Promise<BackupCatalog> {
    const names = options.storageProfiles?.length ? [...new Set(options.storageProfiles)] : this.#profiles();
    // Resolve every driver first: an unknown profile name is the caller's mistake, never an "unavailable" profile.
    const drivers = names.map((profile) => [profile, this.#context.storage.get(profile)] as const);
    const scans = await Promise.all(drivers.map(([profile, driver]) => this.#scan(profile, driver, options.signal)));
    const backups: BackupInfo[] = [];
    const unreadable: BackupCatalog['unreadable'] = [];
    const profiles: string[] = [];
    const unavailableProfiles: UnavailableProfile[] = [];
    const failures: unknown[] = [];
    for (const [i, scan] of scans.entries()) {
      const profile = names[i]!;
      if ('error' in scan) {
        failures.push(scan.error);
        unavailableProfiles.push({ profile, code: codeOf(scan.error), message: messageOf(scan.error) });
        continue;
      }
      profiles.push(profile);
      backups.push(...scan.backups);
      unreadable.push(...scan.unreadable);
    }
    if (profiles.length === 0 && failures.length) throw failures[0];
    backups.sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    return {
      backups,
      totalCount: backups.length,
      profiles,
      unreadable,
      unavailableProfiles,
      discoveredAt: new Date().toISOString(),
    };
  }

  /** One profile's sidecars, or the error that stopped its listing (a cancellation is thrown, not returned). */
  async #scan(
    profile: string,
    driver: StorageDriver,
    signal: AbortSignal | undefined,
  ): Promise<{ backups: BackupInfo[]; unreadable: BackupCatalog['unreadable'] } | { error: unknown }> {
    const backups: BackupInfo[] = [];
    const unreadable: BackupCatalog['unreadable'] = [];
    try {
      for await (const found of scanProfile(driver, signal)) {
        if (found.sidecar) backups.push(toBackupInfo(found.sidecar, profile, found.key, this.#attentionMs()));
        else unreadable.push({ profile, key: found.key, message: found.error?.message ?? 'unreadable' });
      }
    } catch (error) {
      if (signal?.aborted) throw error;
      // A listing cut part way is still a failed listing: report the profile, never half its backups.
      return { error };
    }
    return { backups, unreadable };
  }

  #profiles(): string[] {
    return [...new Set([this.#context.profileName(), ...this.#context.storage.names()])];
  }

  /**
   * Filters, sorts and pages the catalog. Every field of the query is checked before storage is listed: a bad one
   * throws `INVALID_OPTION` naming it (`details.option`), as the HTTP API and the CLI do. Profiles that cannot be listed
   * are reported in `unavailableProfiles` (see {@link discoverAllBackups}); a query whose every profile is unavailable
   * throws that error.
   */
  async queryBackups(query: BackupQuery = {}): Promise<BackupQueryResult> {
    // Checked before any storage is listed: a bad query fails at once, the same way wherever it comes from.
    const resolved = resolveQuery(query);
    const catalog = await this.discoverAllBackups(
      query.storageProfiles?.length ? { storageProfiles: query.storageProfiles } : {},
    );
    return { ...matchQuery(catalog.backups, resolved), unavailableProfiles: catalog.unavailableProfiles };
  }

  /**
   * A backup by id, or the newest with that name (any status). With `allowUnreachableProfiles`, a name looked up while
   * some profile could not be listed answers the newest of the reachable profiles, naming the others in
   * `unavailableProfiles` (one of them may hold a newer backup of that name); see `locateBackup`.
   */
  async getBackup(
    ref: string,
    options: { storageProfile?: string; allowUnreachableProfiles?: boolean } = {},
  ): Promise<BackupInfo & { readonly unavailableProfiles?: readonly UnavailableProfile[] }> {
    const located = await locateBackup(this.#context, ref, { ...options, anyStatus: true });
    const info = toBackupInfo(located.sidecar, located.profile, located.sidecarKey, this.#attentionMs());
    return located.unavailableProfiles?.length ? { ...info, unavailableProfiles: located.unavailableProfiles } : info;
  }

  /**
   * Deep validation: ZIP structure, the archive's SHA-256 against the sidecar, the manifest against its
   * schema, every entry's SHA-256 over the exact bytes, line counts, and every line parsed and decoded.
   * The result is stored in the sidecar, so the catalog knows `lastValidatedAt`. A read that fails (connection
   * cut or 5xx past the retries, access denied, cancelled) throws its StorageError and stores nothing.
   */
  async validateBackup(
    ref: string,
    options: {
      storageProfile?: string;
      signal?: AbortSignal;
      onProgress?: ProgressListener;
      store?: boolean;
      /** By name: validate the newest backup of the reachable profiles when some cannot be listed (see `locateBackup`). */
      allowUnreachableProfiles?: boolean;
      /** Validate this archive file (CLI `validate ./x.zip`; see `locateBackup`); the result is not stored. */
      archivePath?: string;
    } = {},
  ): Promise<ValidationResult & { backupId: string; name: string }> {
    const t0 = performance.now();
    const located = await locateBackup(this.#context, ref, {
      ...(options.storageProfile ? { storageProfile: options.storageProfile } : {}),
      ...(options.allowUnreachableProfiles ? { allowUnreachableProfiles: true } : {}),
      ...(options.archivePath ? { archivePath: options.archivePath } : {}),
      anyStatus: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const result = await validateLocated(located, options, t0);
    // An archive read on its own (no catalog record) has no sidecar to keep the result in.
    if (options.store !== false && !located.fromArchive) {
      try {
        const fresh = await readSidecar(located.driver, located.sidecarKey);
        await writeSidecar(located.driver, located.sidecarKey, { ...fresh, validation: result });
      } catch {
        /* an unreadable sidecar keeps its state; the result is still returned */
      }
    }
    return { ...result, backupId: located.sidecar.id, name: located.sidecar.name };
  }

  async getCatalogStats(options: { storageProfiles?: readonly string[] } = {}): Promise<CatalogStats> {
    const { backups, unavailableProfiles } = await this.discoverAllBackups(options);
    const count = (xs: string[]) => {
      const acc: Record<string, number> = {};
      for (const x of xs) acc[x] = (acc[x] ?? 0) + 1;
      return acc;
    };
    const sorted = [...backups].sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
    const brief = (b: BackupInfo | undefined) => (b ? { id: b.id, name: b.name, createdAt: b.createdAt } : undefined);
    const oldest = brief(sorted[0]);
    const newest = brief(sorted[sorted.length - 1]);
    return {
      totalBackups: backups.length,
      totalSizeBytes: backups.reduce((n, b) => n + b.sizeBytes, 0),
      healthyBackups: backups.filter((b) => b.healthStatus === 'Healthy').length,
      backupsRequiringAttention: backups.filter((b) => b.healthStatus === 'Critical' || b.healthStatus === 'Warning')
        .length,
      byStatus: count(backups.map((b) => b.status)),
      byProvider: count(backups.flatMap((b) => b.providers)),
      byStorageProfile: count(backups.map((b) => b.storageProfile)),
      byHealth: count(backups.map((b) => b.healthStatus)),
      ...(oldest ? { oldestBackup: oldest } : {}),
      ...(newest ? { newestBackup: newest } : {}),
      attentionAfterDays: this.#context.config.attentionAfterDays,
      unavailableProfiles,
    };
  }

  /** Deletes a backup for real (sidecar, then archive) and returns a receipt. */
  async deleteBackup(ref: string, options: { storageProfile?: string } = {}): Promise<DeleteReceipt> {
    const located = await locateBackup(this.#context, ref, { ...options, anyStatus: true });
    const deletedKeys: string[] = [];
    let freedBytes = 0;
    // The sidecar is the commit marker: remove it first so the backup disappears from the catalog at once; an archive
    // left behind by a crash in between is one cleanup reports (never deletes) as an archive without its sidecar.
    const sidecarHead = await located.driver.head(located.sidecarKey);
    if (await located.driver.delete(located.sidecarKey)) {
      deletedKeys.push(located.sidecarKey);
      freedBytes += sidecarHead?.size ?? 0;
    }
    const archiveKey = located.sidecar.archive?.key;
    if (archiveKey) {
      const head = await located.driver.head(archiveKey);
      if (await located.driver.delete(archiveKey)) {
        deletedKeys.push(archiveKey);
        freedBytes += head?.size ?? 0;
      }
    }
    return {
      id: located.sidecar.id,
      name: located.sidecar.name,
      storageProfile: located.profile,
      deletedKeys,
      freedBytes,
      deletedAt: new Date().toISOString(),
    };
  }
}

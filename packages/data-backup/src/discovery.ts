import { KoanError } from '@koan/data';
import type { StorageDriver } from '@koan/storage';
import { type BackupInfo, readSidecar, scanProfile, toBackupInfo, writeSidecar } from './catalog.js';
import type { BackupContext } from './context.js';
import { invalidOption } from './errors.js';
import { archiveHashProblem, isRestorable, locateBackup, openArchive } from './locate.js';
import {
  type BackupStatus,
  backupStatuses,
  type HealthStatus,
  healthStatuses,
  type ValidationResult,
} from './manifest.js';
import { type ProgressListener, ProgressTracker } from './progress.js';
import { readContents, readFailure, verifyEntries } from './verify.js';

/** Every field of the spec's BackupQuery. All filters combine with AND; list filters match any of their values. */
export interface BackupQuery {
  /** Backups having at least one of these tags. */
  readonly tags?: readonly string[];
  /** Backups containing at least one of these entities. */
  readonly entityTypes?: readonly string[];
  readonly dateFrom?: Date | string;
  readonly dateTo?: Date | string;
  readonly storageProfiles?: readonly string[];
  readonly statuses?: readonly BackupStatus[];
  readonly healthStatuses?: readonly HealthStatus[];
  /** Case-insensitive match in name, description, tags and entity names. */
  readonly searchTerm?: string;
  /** Archive size bounds, inclusive. */
  readonly minSizeBytes?: number;
  readonly maxSizeBytes?: number;
  /** Default `createdAt`. */
  readonly sortBy?: 'name' | 'createdAt' | 'size';
  /** Default `desc`. */
  readonly sortDirection?: 'asc' | 'desc';
  readonly skip?: number;
  readonly take?: number;
}

/**
 * A storage profile that could not be listed (endpoint unreachable, access denied, missing bucket...): its backups are
 * absent from the result. `code` is the failure's stable code (e.g. `TRANSIENT`, `ACCESS_DENIED`, `NOT_FOUND`).
 */
export interface UnavailableProfile {
  readonly profile: string;
  readonly code: string;
  readonly message: string;
}

export interface BackupQueryResult {
  readonly backups: BackupInfo[];
  /** Matches before skip/take. */
  readonly totalCount: number;
  readonly skip: number;
  readonly take: number | undefined;
  /** Profiles that could not be listed, so their backups are missing from `backups` and `totalCount`. */
  readonly unavailableProfiles: UnavailableProfile[];
}

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

function toTime(v: Date | string | undefined, option: string): number | undefined {
  if (v === undefined) return undefined;
  const t = v instanceof Date ? v.getTime() : Date.parse(v);
  if (Number.isNaN(t)) throw invalidOption(option, v, 'a Date or an ISO-8601 date string');
  return t;
}

const lower = (xs: readonly string[] | undefined) => (xs?.length ? new Set(xs.map((x) => x.toLowerCase())) : undefined);

/** Filters, sorts and pages catalog entries by a {@link BackupQuery}. */
export function applyQuery(
  all: readonly BackupInfo[],
  query: BackupQuery,
): Omit<BackupQueryResult, 'unavailableProfiles'> {
  const from = toTime(query.dateFrom, 'dateFrom');
  const to = toTime(query.dateTo, 'dateTo');
  const skip = query.skip ?? 0;
  if (!Number.isInteger(skip) || skip < 0) throw invalidOption('skip', skip, 'a non-negative integer');
  if (query.take !== undefined && (!Number.isInteger(query.take) || query.take < 0))
    throw invalidOption('take', query.take, 'a non-negative integer');
  const sortBy = query.sortBy ?? 'createdAt';
  if (!['name', 'createdAt', 'size'].includes(sortBy))
    throw invalidOption('sortBy', sortBy, '"name", "createdAt" or "size"');
  const direction = query.sortDirection ?? 'desc';
  if (direction !== 'asc' && direction !== 'desc') throw invalidOption('sortDirection', direction, '"asc" or "desc"');
  for (const s of query.statuses ?? [])
    if (!backupStatuses.includes(s)) throw invalidOption('statuses', s, backupStatuses.join(', '));
  for (const s of query.healthStatuses ?? [])
    if (!healthStatuses.includes(s)) throw invalidOption('healthStatuses', s, healthStatuses.join(', '));
  const tags = lower(query.tags);
  const entities = lower(query.entityTypes);
  const profiles = lower(query.storageProfiles);
  const term = query.searchTerm?.toLowerCase();
  const matches = all.filter((b) => {
    const created = Date.parse(b.createdAt);
    if (from !== undefined && created < from) return false;
    if (to !== undefined && created > to) return false;
    if (tags && !b.tags.some((t) => tags.has(t.toLowerCase()))) return false;
    if (entities && !b.entityTypes.some((e) => entities.has(e.toLowerCase()))) return false;
    if (profiles && !profiles.has(b.storageProfile.toLowerCase())) return false;
    if (query.statuses?.length && !query.statuses.includes(b.status)) return false;
    if (query.healthStatuses?.length && !query.healthStatuses.includes(b.healthStatus)) return false;
    if (query.minSizeBytes !== undefined && b.sizeBytes < query.minSizeBytes) return false;
    if (query.maxSizeBytes !== undefined && b.sizeBytes > query.maxSizeBytes) return false;
    if (term) {
      const hay = [b.name, b.description ?? '', ...b.tags, ...b.entityTypes].join('\n').toLowerCase();
      if (!hay.includes(term)) return false;
    }
    return true;
  });
  const sign = direction === 'asc' ? 1 : -1;
  const key = (b: BackupInfo): string | number =>
    sortBy === 'name' ? b.name : sortBy === 'size' ? b.sizeBytes : b.createdAt;
  matches.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    const c = ka < kb ? -1 : ka > kb ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return c * sign;
  });
  const page = matches.slice(skip, query.take === undefined ? undefined : skip + query.take);
  return { backups: page, totalCount: matches.length, skip, take: query.take };
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
   * Filters, sorts and pages the catalog. Profiles that cannot be listed are reported in `unavailableProfiles` (see
   * {@link discoverAllBackups}); a query whose every profile is unavailable throws that error.
   */
  async queryBackups(query: BackupQuery = {}): Promise<BackupQueryResult> {
    const catalog = await this.discoverAllBackups(
      query.storageProfiles?.length ? { storageProfiles: query.storageProfiles } : {},
    );
    return { ...applyQuery(catalog.backups, query), unavailableProfiles: catalog.unavailableProfiles };
  }

  /** A backup by id, or the newest with that name (any status). */
  async getBackup(ref: string, options: { storageProfile?: string } = {}): Promise<BackupInfo> {
    const located = await locateBackup(this.#context, ref, { ...options, anyStatus: true });
    return toBackupInfo(located.sidecar, located.profile, located.sidecarKey, this.#attentionMs());
  }

  /**
   * Deep validation: ZIP structure, the archive's SHA-256 against the sidecar, the manifest against its
   * schema, every entry's SHA-256 over the exact bytes, line counts, and every line parsed and decoded.
   * The result is stored in the sidecar, so the catalog knows `lastValidatedAt`. A read that fails (connection
   * cut or 5xx past the retries, access denied, cancelled) throws its StorageError and stores nothing.
   */
  async validateBackup(
    ref: string,
    options: { storageProfile?: string; signal?: AbortSignal; onProgress?: ProgressListener; store?: boolean } = {},
  ): Promise<ValidationResult & { backupId: string; name: string }> {
    const t0 = performance.now();
    const located = await locateBackup(this.#context, ref, {
      ...(options.storageProfile ? { storageProfile: options.storageProfile } : {}),
      anyStatus: true,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const issues: string[] = [];
    const warnings: string[] = [];
    let checkedEntries = 0;
    let checkedLines = 0;
    const sidecar = located.sidecar;
    if (!isRestorable(sidecar))
      issues.push(
        `The backup has status ${sidecar.status}${sidecar.errorMessage ? ` (${sidecar.errorMessage})` : ''}: there is nothing to restore`,
      );
    else {
      try {
        const hashIssue = await archiveHashProblem(located, options.signal);
        if (hashIssue) issues.push(hashIssue);
        const reader = await openArchive(located, options.signal);
        try {
          const contents = await readContents(reader, sidecar);
          const progress = new ProgressTracker('validate', sidecar.name, options.onProgress);
          progress.overallTotalRecords = contents.manifest.verification.totalItemCount;
          let before = 0;
          const report = await verifyEntries(reader, contents, {
            deep: true,
            ...(options.signal ? { signal: options.signal } : {}),
            onEntry: (entry, lines) => {
              progress.overallRecords = before + lines;
              progress.emit('progress', { entity: entry, set: '', records: lines });
            },
          });
          before = progress.overallRecords;
          issues.push(...report.issues);
          warnings.push(...report.warnings);
          checkedEntries = report.checkedEntries;
          checkedLines = report.checkedLines;
        } finally {
          await reader.close();
        }
      } catch (e) {
        if (options.signal?.aborted) throw e;
        // A read that failed (connection cut, 503s past the retries, access denied) proves nothing about the
        // archive: throw instead of storing an "invalid" verdict that would mark a good backup Critical.
        const failure = readFailure(e);
        if (failure) throw failure;
        issues.push((e as Error).message);
      }
    }
    if (sidecar.status === 'PartiallyCompleted')
      warnings.push('The backup is partial: some entities failed during backup');
    const isValid = issues.length === 0;
    const result: ValidationResult = {
      isValid,
      healthStatus: !isValid ? 'Critical' : warnings.length ? 'Warning' : 'Healthy',
      issues,
      warnings,
      validatedAt: new Date().toISOString(),
      durationMs: performance.now() - t0,
      checkedEntries,
      checkedLines,
    };
    if (options.store !== false) {
      try {
        const fresh = await readSidecar(located.driver, located.sidecarKey);
        await writeSidecar(located.driver, located.sidecarKey, { ...fresh, validation: result });
      } catch {
        /* an unreadable sidecar keeps its state; the result is still returned */
      }
    }
    return { ...result, backupId: sidecar.id, name: sidecar.name };
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
    // The sidecar is the commit marker: remove it first so the backup disappears from the catalog at once;
    // an archive left behind by a crash in between is an orphan that maintenance removes.
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

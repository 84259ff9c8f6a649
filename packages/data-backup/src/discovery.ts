import { KoanError } from '@koan/data';
import type { StorageDriver } from '@koan/storage';
import { type BackupInfo, readSidecar, scanProfile, toBackupInfo, writeSidecar } from './catalog.js';
import type { BackupContext } from './context.js';
import { BackupError } from './errors.js';
import { parseIsoInstant } from './iso-instant.js';
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

export { parseIsoInstant };

/** Every field of the spec's BackupQuery. All filters combine with AND; list filters match any of their values. */
export interface BackupQuery {
  /** Backups having at least one of these tags. */
  readonly tags?: readonly string[];
  /** Backups containing at least one of these entities. */
  readonly entityTypes?: readonly string[];
  /**
   * Created at or after this instant (inclusive): a `Date`, or an ISO-8601 date (`2024-12-17`, midnight UTC) or
   * date-time (`2024-12-17T08:00:00Z`; without an offset, local time). An impossible date such as `2024-02-30` is
   * refused, never rolled over.
   */
  readonly dateFrom?: Date | string;
  /**
   * Created at or before this instant (inclusive), same forms as `dateFrom`; a date-only string covers that whole day
   * (up to 23:59:59.999 UTC), so `dateFrom: '2024-12-17', dateTo: '2024-12-17'` is that day. Must not be before
   * `dateFrom`.
   */
  readonly dateTo?: Date | string;
  readonly storageProfiles?: readonly string[];
  /** Any of these statuses (compared in any case, as `sortBy` is: `completed` is `Completed`). */
  readonly statuses?: readonly BackupStatus[];
  /** Any of these health states (in any case). */
  readonly healthStatuses?: readonly HealthStatus[];
  /** Case-insensitive match in name, description, tags and entity names. */
  readonly searchTerm?: string;
  /** Archive size bounds in bytes, inclusive: non-negative integers, `minSizeBytes` at most `maxSizeBytes`. */
  readonly minSizeBytes?: number;
  readonly maxSizeBytes?: number;
  /** Default `createdAt` (any case: the spec's `"CreatedAt"` too). */
  readonly sortBy?: 'name' | 'createdAt' | 'size' | 'Name' | 'CreatedAt' | 'Size';
  /** Default `desc` (the spec's `Ascending`/`Descending` too, any case). */
  readonly sortDirection?: 'asc' | 'desc' | 'Ascending' | 'Descending';
  /** Matches to skip (paging), a non-negative integer. Default 0. */
  readonly skip?: number;
  /** At most this many matches, a non-negative integer; `0` only counts (`totalCount`, no backups). Default: all. */
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

/** Every field of a {@link BackupQuery}, in the order the docs list them. */
export const BACKUP_QUERY_FIELDS = [
  'tags',
  'entityTypes',
  'dateFrom',
  'dateTo',
  'storageProfiles',
  'statuses',
  'healthStatuses',
  'searchTerm',
  'minSizeBytes',
  'maxSizeBytes',
  'sortBy',
  'sortDirection',
  'skip',
  'take',
] as const satisfies readonly (keyof BackupQuery)[];
/** The keys a {@link BackupQuery} sorts by (`sortBy`, any case). */
export const BACKUP_SORT_KEYS = ['name', 'createdAt', 'size'] as const;
const DATE_EXPECTED = 'a Date or an ISO-8601 date or date-time such as 2024-12-17 or 2024-12-17T08:00:00Z';

/** `invalidOption`, showing values JSON cannot (NaN, Infinity, an invalid Date) as they are. */
function badQuery(option: string, value: unknown, expected: string): BackupError {
  const shown =
    typeof value === 'number' || typeof value === 'bigint' || value instanceof Date
      ? String(value)
      : (JSON.stringify(value) ?? String(value));
  return new BackupError('INVALID_OPTION', `Invalid option ${option}: ${shown}. Expected ${expected}.`, {
    details: { option },
  });
}

/** The instant a `dateFrom`/`dateTo` names (both bounds inclusive; see {@link parseIsoInstant}). */
function queryTime(value: unknown, option: 'dateFrom' | 'dateTo'): number | undefined {
  if (value === undefined) return undefined;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw badQuery(option, value, DATE_EXPECTED);
    return value.getTime();
  }
  if (typeof value !== 'string') throw badQuery(option, value, DATE_EXPECTED);
  const parsed = parseIsoInstant(value, { endOfDay: option === 'dateTo' });
  if ('problem' in parsed) throw badQuery(option, value, `${DATE_EXPECTED} (${parsed.problem})`);
  return parsed.time;
}

function stringList(query: BackupQuery, option: 'tags' | 'entityTypes' | 'storageProfiles'): Set<string> | undefined {
  const values: unknown = query[option];
  if (values === undefined) return undefined;
  if (!Array.isArray(values) || values.some((v) => typeof v !== 'string' || !v.trim()))
    throw badQuery(option, values, 'an array of non-empty strings');
  return values.length ? new Set(values.map((x: string) => x.toLowerCase())) : undefined;
}

/** Values of `allowed`, in any case (`completed` is `Completed`), as `sortBy` and `sortDirection` are. */
function choices<T extends string>(
  query: BackupQuery,
  option: 'statuses' | 'healthStatuses',
  allowed: readonly T[],
): Set<T> | undefined {
  const values: unknown = query[option];
  if (values === undefined) return undefined;
  if (!Array.isArray(values)) throw badQuery(option, values, `an array of ${allowed.join(', ')}`);
  const found = values.map((v: unknown) => {
    const match = typeof v === 'string' ? allowed.find((a) => a.toLowerCase() === v.toLowerCase()) : undefined;
    if (match === undefined) throw badQuery(option, v, `one of ${allowed.join(', ')}`);
    return match;
  });
  return found.length ? new Set(found) : undefined;
}

function count(query: BackupQuery, option: 'minSizeBytes' | 'maxSizeBytes' | 'skip' | 'take'): number | undefined {
  const value: unknown = query[option];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw badQuery(option, value, 'a non-negative integer');
  return value;
}

/** The .NET spellings of the spec (`SortBy = "CreatedAt"`, `SortDirection.Descending`) mean the same. */
const SPEC_SPELLINGS: Readonly<Record<string, string>> = { ascending: 'asc', descending: 'desc' };

function oneOf<T extends string>(query: BackupQuery, option: 'sortBy' | 'sortDirection', allowed: readonly T[]) {
  const value: unknown = query[option];
  if (value === undefined) return undefined;
  const lower = typeof value === 'string' ? value.toLowerCase() : undefined;
  const match =
    lower === undefined ? undefined : allowed.find((a) => a.toLowerCase() === (SPEC_SPELLINGS[lower] ?? lower));
  if (match === undefined) throw badQuery(option, value, allowed.map((a) => `"${a}"`).join(', '));
  return match;
}

interface ResolvedQuery {
  readonly from: number | undefined;
  readonly to: number | undefined;
  readonly tags: Set<string> | undefined;
  readonly entities: Set<string> | undefined;
  readonly profiles: Set<string> | undefined;
  readonly statuses: Set<BackupStatus> | undefined;
  readonly healths: Set<HealthStatus> | undefined;
  readonly term: string | undefined;
  readonly min: number | undefined;
  readonly max: number | undefined;
  readonly sortBy: (typeof BACKUP_SORT_KEYS)[number];
  readonly direction: 'asc' | 'desc';
  readonly skip: number;
  readonly take: number | undefined;
}

/**
 * Checks every field of a {@link BackupQuery} (the same rules as the HTTP API and the CLI) and resolves it; a bad
 * field throws `INVALID_OPTION` naming it (`details.option`) and what is expected. Unknown fields are refused too, so a
 * typo never silently widens a filter.
 */
function resolveQuery(query: BackupQuery): ResolvedQuery {
  if (typeof query !== 'object' || query === null || Array.isArray(query))
    throw badQuery('query', query, 'a BackupQuery object');
  for (const key of Object.keys(query))
    if (
      !(BACKUP_QUERY_FIELDS as readonly string[]).includes(key) &&
      (query as Record<string, unknown>)[key] !== undefined
    )
      throw badQuery(
        key,
        (query as Record<string, unknown>)[key],
        `a BackupQuery field: there is no such option (fields: ${BACKUP_QUERY_FIELDS.join(', ')})`,
      );
  const from = queryTime(query.dateFrom, 'dateFrom');
  const to = queryTime(query.dateTo, 'dateTo');
  if (from !== undefined && to !== undefined && from > to) {
    const [dateFrom, dateTo] = [new Date(from).toISOString(), new Date(to).toISOString()];
    throw new BackupError('INVALID_OPTION', `Invalid option dateFrom: ${dateFrom} is after dateTo ${dateTo}.`, {
      details: { option: 'dateFrom', dateFrom, dateTo },
    });
  }
  const min = count(query, 'minSizeBytes');
  const max = count(query, 'maxSizeBytes');
  if (min !== undefined && max !== undefined && min > max)
    throw new BackupError('INVALID_OPTION', `Invalid option minSizeBytes: ${min} is larger than maxSizeBytes ${max}.`, {
      details: { option: 'minSizeBytes', minSizeBytes: min, maxSizeBytes: max },
    });
  const searchTerm: unknown = query.searchTerm;
  if (searchTerm !== undefined && typeof searchTerm !== 'string') throw badQuery('searchTerm', searchTerm, 'a string');
  return {
    from,
    to,
    tags: stringList(query, 'tags'),
    entities: stringList(query, 'entityTypes'),
    profiles: stringList(query, 'storageProfiles'),
    statuses: choices(query, 'statuses', backupStatuses),
    healths: choices(query, 'healthStatuses', healthStatuses),
    term: searchTerm?.trim().toLowerCase() || undefined,
    min,
    max,
    sortBy: oneOf(query, 'sortBy', BACKUP_SORT_KEYS) ?? 'createdAt',
    direction: oneOf(query, 'sortDirection', ['asc', 'desc'] as const) ?? 'desc',
    skip: count(query, 'skip') ?? 0,
    take: count(query, 'take'),
  };
}

/**
 * Checks a {@link BackupQuery} as `queryBackups` does, without listing anything: a bad field throws `INVALID_OPTION`
 * naming it (`details.option`). A rule across fields says both values in `details`: `{ option: 'dateFrom', dateFrom,
 * dateTo }` (ISO instants) and `{ option: 'minSizeBytes', minSizeBytes, maxSizeBytes }`, so a frontend can say it in its
 * own terms.
 */
export function checkBackupQuery(query: BackupQuery): void {
  resolveQuery(query);
}

/**
 * Filters, sorts and pages catalog entries by a {@link BackupQuery}; every field is checked first (`INVALID_OPTION`
 * naming it). `take: 0` is a count-only query: `totalCount` and no backups.
 */
export function applyQuery(
  all: readonly BackupInfo[],
  query: BackupQuery,
): Omit<BackupQueryResult, 'unavailableProfiles'> {
  return matchQuery(all, resolveQuery(query));
}

function matchQuery(all: readonly BackupInfo[], q: ResolvedQuery): Omit<BackupQueryResult, 'unavailableProfiles'> {
  const matches = all.filter((b) => {
    const created = Date.parse(b.createdAt);
    if (q.from !== undefined && created < q.from) return false;
    if (q.to !== undefined && created > q.to) return false;
    if (q.tags && !b.tags.some((t) => q.tags!.has(t.toLowerCase()))) return false;
    if (q.entities && !b.entityTypes.some((e) => q.entities!.has(e.toLowerCase()))) return false;
    if (q.profiles && !q.profiles.has(b.storageProfile.toLowerCase())) return false;
    if (q.statuses && !q.statuses.has(b.status)) return false;
    if (q.healths && !q.healths.has(b.healthStatus)) return false;
    if (q.min !== undefined && b.sizeBytes < q.min) return false;
    if (q.max !== undefined && b.sizeBytes > q.max) return false;
    if (q.term) {
      const hay = [b.name, b.description ?? '', ...b.tags, ...b.entityTypes].join('\n').toLowerCase();
      if (!hay.includes(q.term)) return false;
    }
    return true;
  });
  const sign = q.direction === 'asc' ? 1 : -1;
  const key = (b: BackupInfo): string | number =>
    q.sortBy === 'name' ? b.name : q.sortBy === 'size' ? b.sizeBytes : b.createdAt;
  matches.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    const c = ka < kb ? -1 : ka > kb ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    return c * sign;
  });
  const page = matches.slice(q.skip, q.take === undefined ? undefined : q.skip + q.take);
  return { backups: page, totalCount: matches.length, skip: q.skip, take: q.take };
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
          // Phases as for backups and restores: start, then per entity set entity-start, progress..., entity-done
          // (with the entity's name, set and manifest count), then done; bytes count the entries checked so far.
          const byFile = new Map(contents.manifest.entities.map((e) => [e.storageFile, e]));
          const linesOf = new Map<string, number>();
          let current: { file: string; entity: string; set: string; records: number; totalRecords: number } | undefined;
          let bytesBefore = 0;
          const finish = () => {
            if (!current) return;
            bytesBefore += byFile.get(current.file)?.sizeBytes ?? 0;
            progress.bytes = bytesBefore;
            progress.emit('entity-done', current);
            current = undefined;
          };
          progress.emit('start');
          const report = await verifyEntries(reader, contents, {
            deep: true,
            ...(options.signal ? { signal: options.signal } : {}),
            onEntry: (file, lines, storedBytes) => {
              if (current?.file !== file) {
                finish();
                const item = byFile.get(file);
                current = {
                  file,
                  entity: item?.entityType ?? file,
                  set: item?.set ?? '',
                  records: 0,
                  totalRecords: item?.itemCount ?? 0,
                };
                progress.emit('entity-start', current);
              }
              linesOf.set(file, lines);
              current.records = lines;
              // Uncompressed bytes of the entry in proportion to the stored bytes read (exact at its end).
              const item = byFile.get(file);
              const share =
                item && item.compressedSizeBytes > 0 ? Math.min(1, storedBytes / item.compressedSizeBytes) : 0;
              progress.bytes = bytesBefore + Math.round((item?.sizeBytes ?? 0) * share);
              progress.overallRecords = [...linesOf.values()].reduce((a, b) => a + b, 0);
              progress.emit('progress', current);
            },
          });
          finish();
          progress.emit('done');
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
        // The archive's size was already reported by the hash check above: not twice.
        const sizeAgain = (e as { details?: { reason?: unknown } }).details?.reason === 'size' && issues.length > 0;
        if (!sizeAgain) issues.push((e as Error).message);
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
    // An archive read on its own (no catalog record) has no sidecar to keep the result in.
    if (options.store !== false && !located.fromArchive) {
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

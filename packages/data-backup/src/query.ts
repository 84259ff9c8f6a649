import type { BackupInfo } from './catalog.js';
import { BackupError } from './errors.js';
import { parseIsoInstant } from './iso-instant.js';
import { type BackupStatus, backupStatuses, type HealthStatus, healthStatuses } from './manifest.js';

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

export interface ResolvedQuery {
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
export function resolveQuery(query: BackupQuery): ResolvedQuery {
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

export function matchQuery(
  all: readonly BackupInfo[],
  q: ResolvedQuery,
): Omit<BackupQueryResult, 'unavailableProfiles'> {
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

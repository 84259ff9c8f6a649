/**
 * Retention: which backups to keep and which to delete, by restic's `forget` rules, applied per backup name and storage
 * profile: the copies of a name in another profile (an off-site copy made with `copy`) are a series of their own, so
 * a newer backup that is not copied yet never ages the off-site ones out.
 *
 * Safety rules that no policy overrides:
 * - the newest completed, healthy backup of each name (status `Completed`, validation not failed) whose archive exists
 *   is always kept: when the newest one's archive is gone (its sidecar is still listed), the next one is kept, and the
 *   decision lists the missing archive in `missingArchives`;
 * - when a name has no such backup, its newest restorable one (`PartiallyCompleted`, say) is kept: a nightly backup
 *   whose one table always fails is never pruned to nothing;
 * - backups with a protected tag (default `keep`, `permanent`) are always kept;
 * - backups younger than `minAgeHours` (default 1 h) are always kept;
 * - a policy whose rules keep nothing (no `keep*` above 0 and no `keepWithin`) is refused.
 */
import type { BackupInfo } from './catalog.js';
import { BackupError, invalidOption } from './errors.js';

/**
 * Backups younger than this many hours are never removed by retention when a policy does not set `minAgeHours`:
 * the one default of the library (`planRetention`, `applyRetention`), `Koan.Backup.RetentionPolicy.MinAgeHours`,
 * `koan-backup prune` and the HTTP API's `POST /maintenance/prune`. It keeps a backup that just finished (or is still
 * being listed by another process) from being deleted by a policy that counts it in an older bucket.
 */
export const DEFAULT_MIN_AGE_HOURS = 1;

/** Tags that protect a backup from retention when a policy does not name its own `protectedTags`. */
export const DEFAULT_PROTECTED_TAGS: readonly string[] = Object.freeze(['keep', 'permanent']);

/** The `keep*` counts of a policy, in the order restic applies them. */
export const KEEP_COUNTS = ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'] as const;
export type KeepCount = (typeof KEEP_COUNTS)[number];

/**
 * A retention policy (`Koan.Backup.RetentionPolicy`, CLI `prune --keep-*`, HTTP `POST /maintenance/prune`), restic's
 * `forget` rules. Every rule is optional and they combine: a backup is kept when any rule keeps it. Periods are UTC
 * (ISO weeks), and only periods that have a completed backup of that name count.
 */
export interface RetentionPolicy {
  /** The newest N completed backups. */
  readonly keepLast?: number;
  /** The newest completed backup of each of the last N hours that have one. */
  readonly keepHourly?: number;
  /** ... of each of the last N days that have one. */
  readonly keepDaily?: number;
  /** ... of each of the last N ISO weeks that have one. */
  readonly keepWeekly?: number;
  /** ... of each of the last N months that have one. */
  readonly keepMonthly?: number;
  /** ... of each of the last N years that have one. */
  readonly keepYearly?: number;
  /**
   * Every completed backup made within this duration before the newest backup of its name (restic's `--keep-within`:
   * relative to the newest backup, not to now, so a stopped schedule does not age everything out): `1y6m`, `30d`,
   * `12h`, `2w`, or combined such as `1y2m3d4h`.
   */
  readonly keepWithin?: string;
  /** Backups with any of these tags are never deleted (case-insensitive). Default `["keep", "permanent"]`. */
  readonly protectedTags?: readonly string[];
  /** Never delete backups younger than this many hours. Default {@link DEFAULT_MIN_AGE_HOURS}; `0` protects nothing by age. */
  readonly minAgeHours?: number;
}

/** Which backups a retention run considers; the others are left alone (and listed as outside the scope). */
export interface RetentionScope {
  /** Only backups with these names. */
  readonly names?: readonly string[];
  /** Only backups having at least one of these tags. */
  readonly tags?: readonly string[];
}

/** One backup of a plan: kept with every reason (each once), or removed with why. */
export interface RetentionEntry {
  readonly backup: BackupInfo;
  readonly reasons: string[];
}

export interface RetentionDecision {
  /** Kept backups, each with its reasons (the rules and safety rules that keep it, each named once). */
  readonly keep: RetentionEntry[];
  /** Backups to delete, each with why no rule keeps it. */
  readonly remove: BackupInfo[];
  /** Bytes the removal frees (archive sizes). */
  readonly freedBytes: number;
  /**
   * Backups in scope whose sidecar is listed but whose archive is gone (they restore nothing): never the newest
   * healthy backup of their series, and the last choice of every rule. Empty unless `archiveMissing` was given
   * (`applyRetention` always checks). Whether kept or removed, each is something to look at.
   */
  readonly missingArchives: BackupInfo[];
}

/** What a frontend was given for one prune (flags, a request body): any part may be absent. */
export interface RetentionRequest {
  /** Keep rules (`keep*`, `keepWithin`): when any is given they are the whole set of rules. */
  readonly rules?: Omit<RetentionPolicy, 'protectedTags' | 'minAgeHours'>;
  /** Tags protected in addition to the configured (or default) ones. */
  readonly protectTags?: readonly string[];
  readonly minAgeHours?: number;
  /**
   * How this frontend takes keep rules, named in the error when neither they nor the configuration give any (the
   * CLI's `--keep-*` flags, the HTTP body's `policy.keep*`). Default: the option names.
   */
  readonly rulesGivenAs?: string;
}

/**
 * The policy a prune applies, the one rule for the CLI, the HTTP API and the maintenance service: the keep rules given,
 * else the configured ones; the protected tags configured (else the defaults) **plus** any given (so protecting one
 * more tag never unprotects `keep`); `minAgeHours` given, else configured, else {@link DEFAULT_MIN_AGE_HOURS}. Neither
 * given nor configured rules: `INVALID_OPTION` (`details.option: 'policy'`).
 */
export function effectiveRetentionPolicy(
  configured: RetentionPolicy | undefined,
  given: RetentionRequest = {},
): RetentionPolicy {
  const typed = given.rules
    ? Object.fromEntries(Object.entries(given.rules).filter(([k, v]) => isRuleKey(k) && v !== undefined))
    : {};
  const rules = Object.keys(typed).length
    ? typed
    : configured && Object.fromEntries(Object.entries(configured).filter(([k]) => isRuleKey(k)));
  if (!rules || !Object.keys(rules).length)
    throw new BackupError(
      'INVALID_OPTION',
      `No retention rules to apply: none given (${given.rulesGivenAs ?? `${KEEP_COUNTS.join(', ')} or keepWithin`}), and Koan.Backup.RetentionPolicy in koan.config.json ${configured ? 'sets none (only ProtectedTags or MinAgeHours)' : 'is not set'}. Give one, or configure them, e.g. "RetentionPolicy": { "KeepDaily": 7, "KeepWeekly": 4, "KeepMonthly": 12 } under Koan.Backup (the rules: ${KEEP_COUNTS.map((k) => k[0]!.toUpperCase() + k.slice(1)).join(', ')}, KeepWithin).`,
      { details: { option: 'policy', configKey: 'Koan.Backup.RetentionPolicy' } },
    );
  const base = configured?.protectedTags ?? DEFAULT_PROTECTED_TAGS;
  const extra = (given.protectTags ?? []).filter((t) => !base.some((b) => b.toLowerCase() === t.toLowerCase()));
  return {
    ...rules,
    protectedTags: [...base, ...extra],
    minAgeHours: given.minAgeHours ?? configured?.minAgeHours ?? DEFAULT_MIN_AGE_HOURS,
  };
}

const isRuleKey = (k: string) => (KEEP_COUNTS as readonly string[]).includes(k) || k === 'keepWithin';

/** The `keepWithin` duration in milliseconds: `1y2m3d4h`, `2w`, `90m`... (y = 365 d, m = 30 d when before d/h). */
export function parseKeepWithin(text: string): number {
  const m = /^(?:(\d+)y)?(?:(\d+)m(?![a-z]))?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$/.exec(text.trim());
  if (!m || !text.trim() || m.slice(1).every((x) => x === undefined))
    throw invalidOption(
      'retentionPolicy.keepWithin',
      text,
      'a duration of years, months, weeks, days and hours such as 30d, 12h, 2w, 1y6m or 1y2m3d4h',
    );
  const [y, mo, w, d, h] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number];
  return ((y * 365 + mo * 30 + w * 7 + d) * 24 + h) * 60 * 60 * 1000;
}

/** Checks a policy and returns it with its defaults; a policy that keeps nothing is refused (`INVALID_OPTION`). */
export function resolvePolicy(policy: RetentionPolicy): Required<Omit<RetentionPolicy, 'keepWithin'>> & {
  keepWithinMs: number | undefined;
} {
  if (typeof policy !== 'object' || policy === null)
    throw invalidOption('retentionPolicy', policy, 'an object such as { keepDaily: 7, keepWeekly: 4 }');
  const counts = {} as Record<KeepCount, number>;
  for (const k of KEEP_COUNTS) {
    const v = policy[k];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0))
      throw invalidOption(`retentionPolicy.${k}`, v, 'a non-negative integer');
    counts[k] = v ?? 0;
  }
  const keepWithinMs = policy.keepWithin === undefined ? undefined : parseKeepWithin(policy.keepWithin);
  if (KEEP_COUNTS.every((k) => counts[k] === 0) && !keepWithinMs)
    throw invalidOption(
      'retentionPolicy',
      policy,
      `a policy that keeps something: at least one of ${KEEP_COUNTS.join(', ')} above 0, or keepWithin (e.g. { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 }). A policy of zeros would delete every backup except the safety rules' (the newest healthy one of each name, protected tags, younger than minAgeHours)`,
    );
  const minAgeHours = policy.minAgeHours ?? DEFAULT_MIN_AGE_HOURS;
  if (typeof minAgeHours !== 'number' || !Number.isFinite(minAgeHours) || minAgeHours < 0)
    throw invalidOption(
      'retentionPolicy.minAgeHours',
      policy.minAgeHours,
      `a non-negative number of hours (or leave it out for the default, ${DEFAULT_MIN_AGE_HOURS})`,
    );
  const protectedTags = policy.protectedTags ?? DEFAULT_PROTECTED_TAGS;
  if (!Array.isArray(protectedTags) || protectedTags.some((t) => typeof t !== 'string' || !t.trim()))
    throw invalidOption('retentionPolicy.protectedTags', protectedTags, 'an array of non-empty tags');
  return { ...counts, keepWithinMs, minAgeHours, protectedTags };
}

const hourKey = (d: Date) => d.toISOString().slice(0, 13);
const dayKey = (d: Date) => d.toISOString().slice(0, 10);
function weekKey(d: Date): string {
  // ISO week: the Thursday of the week decides its year.
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
const monthKey = (d: Date) => d.toISOString().slice(0, 7);
const yearKey = (d: Date) => d.toISOString().slice(0, 4);

const PERIODS: readonly [Exclude<KeepCount, 'keepLast'>, (d: Date) => string, string][] = [
  ['keepHourly', hourKey, 'hourly'],
  ['keepDaily', dayKey, 'daily'],
  ['keepWeekly', weekKey, 'weekly'],
  ['keepMonthly', monthKey, 'monthly'],
  ['keepYearly', yearKey, 'yearly'],
];

/** A backup whose validation failed: never preferred by retention, never the "newest healthy" one. */
const knownBad = (b: BackupInfo) => b.healthStatus === 'Critical';
const newestFirst = (a: BackupInfo, b: BackupInfo) =>
  a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id < b.id ? 1 : -1;

/** The newest backup that still restores something, preferring one whose validation did not fail. */
function newestRestorable(group: readonly BackupInfo[], missing: (b: BackupInfo) => boolean): BackupInfo | undefined {
  const restorable = group.filter((b) => b.restorable && !missing(b)).sort(newestFirst);
  return restorable.find((b) => !knownBad(b)) ?? restorable[0];
}

function inScope(b: BackupInfo, scope: RetentionScope): boolean {
  if (scope.names?.length && !scope.names.includes(b.name)) return false;
  if (scope.tags?.length) {
    const wanted = new Set(scope.tags.map((t) => t.toLowerCase()));
    if (!b.tags.some((t) => wanted.has(t.toLowerCase()))) return false;
  }
  return true;
}

/**
 * Decides which backups to keep and which to delete (see the module comment for the rules). Pure: `now` is the clock,
 * and `archiveMissing` says which backups' archives are gone (`applyRetention` lists them; without it every archive is
 * taken to exist). Each kept backup lists every reason once; backups outside `scope` are kept ("outside the scope").
 */
export function planRetention(
  backups: readonly BackupInfo[],
  policy: RetentionPolicy,
  options: { now?: Date; scope?: RetentionScope; archiveMissing?: (backup: BackupInfo) => boolean } = {},
): RetentionDecision {
  const p = resolvePolicy(policy);
  const now = options.now ?? new Date();
  const scope = options.scope ?? {};
  const missing = (b: BackupInfo) => b.archiveKey !== undefined && (options.archiveMissing?.(b) ?? false);
  // The order rules prefer backups in: healthy with an archive, then validation failed, then archive gone.
  const rank = (b: BackupInfo) => (missing(b) ? 2 : knownBad(b) ? 1 : 0);
  const note = (b: BackupInfo) => (missing(b) ? ' (archive missing)' : knownBad(b) ? ' (no healthy backup in it)' : '');
  // Keyed by id and profile: a copy in another profile has the same id, and is decided on its own.
  const reasons = new Map<string, Set<string>>();
  const copyOf = (b: BackupInfo) => `${b.id}\u0000${b.storageProfile}`;
  const keepReason = (b: BackupInfo, why: string) => {
    const set = reasons.get(copyOf(b)) ?? new Set<string>();
    set.add(why);
    reasons.set(copyOf(b), set);
  };
  const protectedTags = new Set(p.protectedTags.map((t) => t.toLowerCase()));
  // A series: one name in one profile.
  const series = new Map<string, BackupInfo[]>();
  for (const b of backups) {
    if (!inScope(b, scope)) {
      keepReason(b, 'outside the scope');
      continue;
    }
    const key = `${b.name}\u0000${b.storageProfile}`;
    series.set(key, [...(series.get(key) ?? []), b]);
  }
  const among = scope.tags?.length ? ` tagged ${scope.tags.join(' or ')}` : '';
  for (const group of series.values()) {
    const completed = group.filter((b) => b.status === 'Completed').sort(newestFirst);
    const healthy = completed.find((b) => rank(b) === 0);
    // The newest healthy one when its archive is gone: the one kept instead says so.
    const lost = completed.find((b) => !knownBad(b));
    const instead =
      lost && missing(lost)
        ? ` whose archive exists (the newer ${lost.id} from ${lost.createdAt} has lost its archive)`
        : '';
    if (healthy) keepReason(healthy, `newest healthy backup of its name${among} in this profile${instead}`);
    else {
      const fallback = newestRestorable(group, missing);
      if (fallback)
        keepReason(
          fallback,
          `newest restorable backup of its name${among} in this profile (${fallback.status}; none is completed and healthy${instead ? ' with its archive' : ''})`,
        );
    }
    // keepLast: the newest N, preferring healthy ones over failed validations, and those over lost archives.
    const last = [0, 1, 2].flatMap((r) => completed.filter((b) => rank(b) === r)).slice(0, p.keepLast);
    for (const b of last) keepReason(b, `last ${p.keepLast}${missing(b) ? ' (archive missing)' : ''}`);
    for (const [rule, bucket, label] of PERIODS) {
      const limit = p[rule];
      if (limit === 0) continue;
      // `completed` is newest first, so periods come in order and the first backup seen is its newest one.
      const chosen = new Map<string, BackupInfo>();
      for (const b of completed) {
        const k = bucket(new Date(b.createdAt));
        const best = chosen.get(k);
        if (!best) {
          if (chosen.size >= limit) break;
          chosen.set(k, b);
        } else if (rank(b) < rank(best)) chosen.set(k, b);
      }
      for (const [k, b] of chosen) keepReason(b, `${label} ${k}${note(b)}`);
    }
    if (p.keepWithinMs !== undefined && completed.length) {
      const newest = Date.parse(completed[0]!.createdAt);
      for (const b of completed)
        if (newest - Date.parse(b.createdAt) <= p.keepWithinMs) keepReason(b, `within ${policy.keepWithin}`);
    }
    for (const b of group) {
      const age = now.getTime() - Date.parse(b.createdAt);
      const tag = b.tags.find((t) => protectedTags.has(t.toLowerCase()));
      if (tag !== undefined) keepReason(b, `protected tag "${tag}"`);
      if (age < p.minAgeHours * 3_600_000) keepReason(b, `younger than ${p.minAgeHours} h`);
      else if (b.status !== 'Completed' && age < 86_400_000) keepReason(b, `${b.status}, kept a day for diagnosis`);
    }
  }
  const keep: RetentionEntry[] = [];
  const remove: BackupInfo[] = [];
  for (const b of backups) {
    const r = reasons.get(copyOf(b));
    if (r) keep.push({ backup: b, reasons: [...r] });
    else remove.push(b);
  }
  const missingArchives = [...series.values()].flat().filter(missing);
  return { keep, remove, freedBytes: remove.reduce((n, b) => n + b.sizeBytes, 0), missingArchives };
}

/**
 * The monitor's rules, as a pure function of the catalog: given what each storage profile holds (or why it could not
 * be listed), the targets and the clock, the problems. `monitorBackups` lists the profiles and calls it.
 */
import type { BackupInfo } from '../catalog.js';
import type { UnavailableProfile } from '../discovery.js';
import { BYTES_PER_MB, type MonitorRuleName, type MonitorRules } from './config.js';

/** What a problem is about: a rule of a target, a target missing from a profile, or a profile itself. */
export type MonitorCheckName = MonitorRuleName | 'NoBackups' | 'Unreachable' | 'Unreadable';

/** One target as checked: a backup name or a tag, its rules (`Defaults` with its own on top) and its profiles. */
export interface MonitorTarget {
  readonly scope: 'name' | 'tag';
  readonly target: string;
  readonly rules: Omit<MonitorRules, 'storageProfiles'>;
  readonly storageProfiles: readonly string[];
}

/** One violation: what, where, what was seen against what is allowed, and what to do. */
export interface MonitorProblem {
  /** `name` or `tag`: a target's rule; `profile`: a storage profile that could not be listed or read. */
  readonly scope: 'name' | 'tag' | 'profile';
  /** The backup name, the tag, or (scope `profile`) the storage profile. */
  readonly target: string;
  readonly storageProfile: string;
  /**
   * The rule broken: `MaxAgeHours`, `MinCount`, `MaxStorageMB`, `MustBeValidatedWithinDays`; `NoBackups` (the profile
   * holds no backup of the target); `Unreachable` (the profile could not be listed); `Unreadable` (backup records in
   * the profile could not be read).
   */
  readonly check: MonitorCheckName;
  /**
   * What was seen, in the rule's unit (hours, backups, MB, days, unreadable records); `null` when there is nothing to
   * measure (no healthy backup, never validated, no backups, profile unreachable).
   */
  readonly observed: number | null;
  /** The configured limit, in the same unit; `null` for `NoBackups` and `Unreachable`. */
  readonly limit: number | null;
  /** One line saying what is wrong, naming the target, the profile, what was seen and the limit. */
  readonly message: string;
  /** What to do about it. */
  readonly hint: string;
}

/** What one target holds in one profile that was listed: the figures the rules looked at. */
export interface MonitorCheck {
  readonly scope: 'name' | 'tag';
  readonly target: string;
  readonly storageProfile: string;
  readonly rules: Omit<MonitorRules, 'storageProfiles'>;
  /** Backups of the target in the profile, any status. */
  readonly backups: number;
  /** Restorable (Completed or PartiallyCompleted with an archive) and not found invalid. */
  readonly restorable: number;
  /** Archive bytes of all its backups. */
  readonly sizeBytes: number;
  /** `createdAt` of the newest healthy completed backup, `null` when none. */
  readonly newestHealthyAt: string | null;
  /** The newest validation that passed, `null` when none. */
  readonly lastValidatedAt: string | null;
  /** Problems found for this target in this profile. */
  readonly problems: number;
}

/** A profile's catalog as listed, or why it could not be. */
export type ProfileListing =
  | { readonly backups: readonly BackupInfo[]; readonly unreadable: readonly { key: string; message: string }[] }
  | { readonly unavailable: UnavailableProfile };

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const round = (n: number) => Math.round(n * 100) / 100;
/** MB with two decimals, or three significant digits below 1 MB (a few KB is 0.00293, not 0). */
const megabytes = (bytes: number) => {
  const mb = bytes / BYTES_PER_MB;
  return mb >= 1 || mb === 0 ? round(mb) : Number(mb.toPrecision(3));
};
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Not found invalid by a validation (a failed or cancelled backup is Critical too, and never restorable). */
const notInvalid = (b: BackupInfo) => b.healthStatus !== 'Critical';
const healthyCompleted = (b: BackupInfo) => b.status === 'Completed' && notInvalid(b);

function belongs(t: MonitorTarget, b: BackupInfo): boolean {
  return t.scope === 'name' ? b.name === t.target : b.tags.some((tag) => tag.toLowerCase() === t.target.toLowerCase());
}

/** `nightly in local` / `tag critical in local`. */
function label(t: MonitorTarget, profile: string): string {
  return `${t.scope === 'name' ? t.target : `tag ${t.target}`} in ${profile}`;
}

/** The flags of a backup command that makes a backup of the target in the profile. */
function backupCommand(t: MonitorTarget, profile: string): string {
  return t.scope === 'name'
    ? `koan-backup backup ${t.target} --profile ${profile}`
    : `koan-backup backup <name> --tag ${t.target} --profile ${profile}`;
}

function selection(t: MonitorTarget): string {
  return t.scope === 'name' ? `--name ${t.target}` : `--tag ${t.target}`;
}

/** The problems of one target in one profile that was listed, and its figures. */
function checkTarget(
  t: MonitorTarget,
  profile: string,
  all: readonly BackupInfo[],
  now: number,
): { check: MonitorCheck; problems: MonitorProblem[] } {
  // Newest first.
  const mine = all.filter((b) => belongs(t, b)).sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
  const restorable = mine.filter((b) => b.restorable && notInvalid(b));
  const newest = mine.find(healthyCompleted);
  const validated = mine
    .filter((b) => b.lastValidatedAt !== undefined && notInvalid(b))
    .map((b) => b.lastValidatedAt!)
    .sort((a, b) => Date.parse(b) - Date.parse(a))[0];
  const sizeBytes = mine.reduce((n, b) => n + b.sizeBytes, 0);
  const where = label(t, profile);
  const problems: MonitorProblem[] = [];
  const problem = (
    check: MonitorCheckName,
    observed: number | null,
    limit: number | null,
    message: string,
    hint: string,
  ) =>
    problems.push({
      scope: t.scope,
      target: t.target,
      storageProfile: profile,
      check,
      observed,
      limit,
      message: `${where}: ${message}`,
      hint,
    });
  const { maxAgeHours, minCount, maxStorageMB, mustBeValidatedWithinDays } = t.rules;
  if (!mine.length)
    problem(
      'NoBackups',
      null,
      null,
      'no backups',
      `Back up to this profile (${backupCommand(t, profile)}, or koan-backup copy <name|id> --to ${profile}), or leave ${profile} out of the target's StorageProfiles.`,
    );
  else {
    if (maxAgeHours !== undefined) {
      const age = newest ? round((now - Date.parse(newest.createdAt)) / HOUR) : null;
      if (age === null || age > maxAgeHours)
        problem(
          'MaxAgeHours',
          age,
          maxAgeHours,
          age === null
            ? `no healthy completed backup (MaxAgeHours ${maxAgeHours}); the newest is ${mine[0]!.status}${mine[0]!.healthStatus === 'Critical' ? ', health Critical' : ''}`
            : `the newest healthy completed backup is ${age} hours old (MaxAgeHours ${maxAgeHours})`,
          `Back up now (${backupCommand(t, profile)}) and check why the scheduled backups stopped or failed (koan-backup list ${selection(t)} --profile ${profile}).`,
        );
    }
    if (minCount !== undefined && restorable.length < minCount)
      problem(
        'MinCount',
        restorable.length,
        minCount,
        `${plural(restorable.length, 'restorable backup')} (MinCount ${minCount})`,
        `Check that backups succeed and that the retention policy (Koan.Backup.RetentionPolicy) keeps at least ${minCount}; or lower MinCount.`,
      );
    if (maxStorageMB !== undefined && sizeBytes > maxStorageMB * BYTES_PER_MB) {
      const mb = megabytes(sizeBytes);
      problem(
        'MaxStorageMB',
        mb,
        maxStorageMB,
        `backups take ${mb} MB (MaxStorageMB ${maxStorageMB})`,
        `Prune old backups (koan-backup prune ${selection(t)} --profile ${profile} --dry-run shows what a policy removes), or raise MaxStorageMB.`,
      );
    }
    if (mustBeValidatedWithinDays !== undefined) {
      const days = validated ? round((now - Date.parse(validated)) / DAY) : null;
      if (days === null || days > mustBeValidatedWithinDays)
        problem(
          'MustBeValidatedWithinDays',
          days,
          mustBeValidatedWithinDays,
          days === null
            ? `no backup has passed validation (MustBeValidatedWithinDays ${mustBeValidatedWithinDays})`
            : `the last validation that passed was ${days} days ago (MustBeValidatedWithinDays ${mustBeValidatedWithinDays})`,
          `Validate the newest backup (koan-backup validate ${t.scope === 'name' ? t.target : '<name|id>'} --profile ${profile}), and schedule validation.`,
        );
    }
  }
  return {
    check: {
      scope: t.scope,
      target: t.target,
      storageProfile: profile,
      rules: t.rules,
      backups: mine.length,
      restorable: restorable.length,
      sizeBytes,
      newestHealthyAt: newest?.createdAt ?? null,
      lastValidatedAt: validated ?? null,
      problems: problems.length,
    },
    problems,
  };
}

function profileProblem(profile: string, listing: ProfileListing): MonitorProblem | undefined {
  const base = { scope: 'profile', target: profile, storageProfile: profile } as const;
  if ('unavailable' in listing)
    return {
      ...base,
      check: 'Unreachable',
      observed: null,
      limit: null,
      message: `storage profile ${profile} could not be listed, so its backups were not checked (${listing.unavailable.code}: ${listing.unavailable.message})`,
      hint: `Check Koan.Storage.Profiles.${profile} (endpoint, credentials, bucket or container) and that the storage is reachable from here.`,
    };
  const n = listing.unreadable.length;
  if (!n) return undefined;
  const first = listing.unreadable[0]!;
  return {
    ...base,
    check: 'Unreadable',
    observed: n,
    limit: 0,
    message: `storage profile ${profile}: ${plural(n, 'backup record')} could not be read (${first.key}: ${first.message}${n > 1 ? `; and ${n - 1} more` : ''})`,
    hint: `Those backups are invisible to restore: inspect the files (koan-backup list --profile ${profile} --json shows them under unreadable); delete what is damaged, or restore it from a copy.`,
  };
}

/**
 * The problems of `targets` against the profiles' listings at `now`: per target and profile its rules, plus one
 * problem per profile that could not be listed (its targets are not checked there) or holds unreadable records.
 */
export function evaluateMonitor(
  targets: readonly MonitorTarget[],
  listings: ReadonlyMap<string, ProfileListing>,
  now: Date,
): { checks: MonitorCheck[]; problems: MonitorProblem[] } {
  const checks: MonitorCheck[] = [];
  const problems: MonitorProblem[] = [];
  for (const [profile, listing] of listings) {
    const p = profileProblem(profile, listing);
    if (p) problems.push(p);
  }
  for (const t of targets)
    for (const profile of t.storageProfiles) {
      const listing = listings.get(profile);
      if (!listing || 'unavailable' in listing) continue;
      const result = checkTarget(t, profile, listing.backups, now.getTime());
      checks.push(result.check);
      problems.push(...result.problems);
    }
  return { checks, problems };
}

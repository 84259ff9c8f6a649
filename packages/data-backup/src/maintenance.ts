import { Cron } from 'croner';
import { type BackupInfo, parseBackupKey } from './catalog.js';
import type { BackupConfig, BackupContext } from './context.js';
import { BackupDiscoveryService, type DeleteReceipt, type UnavailableProfile } from './discovery.js';
import { BackupError, invalidOption } from './errors.js';
import { SIDECAR_SUFFIX } from './manifest.js';

export interface LeftoverReport {
  /** Temp files / open multipart uploads / uncommitted blobs of backups removed (or found, in a dry run). */
  readonly incompleteUploads: { profile: string; key: string; startedAt: string }[];
  /**
   * Backup archives (Koan's key layout only) with no sidecar: a crash between the archive and its commit marker.
   */
  readonly orphanArchives: { profile: string; key: string; size: number }[];
  readonly dryRun: boolean;
}

/**
 * Finds and removes what interrupted backups left behind: incomplete uploads the storage driver reports,
 * and archives whose sidecar was never written. Only leftovers older than `olderThanMs` (default 1 h) are
 * touched, so a backup still running is never disturbed.
 *
 * Only keys that follow Koan's own backup key layout (`<name>/<name>-YYYYMMDD-HHmmss-<id8>.zip` and its
 * `.manifest.json` sidecar) are ever reported or removed: other files sharing the bucket or folder (a `report.zip`,
 * `user-files/photos.zip`, another application's multipart upload) are left alone. An incomplete upload whose key the
 * driver cannot tell (the local driver's temp files for very long keys) is left alone too.
 */
export async function cleanupLeftovers(
  context: BackupContext,
  options: { olderThanMs?: number; dryRun?: boolean; storageProfiles?: readonly string[]; signal?: AbortSignal } = {},
): Promise<LeftoverReport> {
  const olderThan = Date.now() - (options.olderThanMs ?? 3_600_000);
  const dryRun = options.dryRun ?? false;
  const profiles = options.storageProfiles?.length
    ? options.storageProfiles
    : [...new Set([context.profileName(), ...context.storage.names()])];
  const report: LeftoverReport = { incompleteUploads: [], orphanArchives: [], dryRun };
  const sig = options.signal ? { signal: options.signal } : {};
  for (const profile of profiles) {
    const driver = context.storage.get(profile);
    if (driver.flags.incompleteUploads && driver.listIncomplete && driver.abortIncomplete) {
      const stale = [];
      for await (const upload of driver.listIncomplete(sig))
        if (upload.startedAt.getTime() < olderThan && parseBackupKey(upload.key)) stale.push(upload);
      for (const upload of stale) {
        if (!dryRun) await driver.abortIncomplete(upload);
        report.incompleteUploads.push({ profile, key: upload.key, startedAt: upload.startedAt.toISOString() });
      }
    }
    const sidecars = new Set<string>();
    const archives: { key: string; size: number; lastModified: Date }[] = [];
    for await (const o of driver.list('', sig)) {
      if (o.key.endsWith(SIDECAR_SUFFIX)) sidecars.add(o.key.slice(0, -SIDECAR_SUFFIX.length));
      else if (parseBackupKey(o.key)?.kind === 'archive') archives.push(o);
    }
    for (const a of archives) {
      if (sidecars.has(a.key.slice(0, -'.zip'.length)) || a.lastModified.getTime() >= olderThan) continue;
      if (!dryRun) await driver.delete(a.key);
      report.orphanArchives.push({ profile, key: a.key, size: a.size });
    }
  }
  return report;
}

/**
 * Backups younger than this many hours are never removed by retention when a policy does not set `minAgeHours`:
 * the one default of the library (`planRetention`, `applyRetention`), `Koan.Backup.RetentionPolicy.MinAgeHours`,
 * `koan-backup prune` and the HTTP API's `POST /prune`. It keeps a backup that just finished (or is still being
 * listed by another process) from being deleted by a policy that counts it in an older bucket.
 */
export const DEFAULT_MIN_AGE_HOURS = 1;

/** A grandfather-father-son retention policy (`Koan.Backup.RetentionPolicy`). */
export type RetentionPolicy = Omit<NonNullable<BackupConfig['retentionPolicy']>, 'minAgeHours'> & {
  /**
   * Never remove backups younger than this many hours. Default {@link DEFAULT_MIN_AGE_HOURS} (1 h) when absent;
   * `0` protects nothing by age.
   */
  readonly minAgeHours?: number;
};

export interface RetentionDecision {
  readonly keep: { backup: BackupInfo; reasons: string[] }[];
  readonly remove: BackupInfo[];
}

const dayKey = (d: Date) => d.toISOString().slice(0, 10);
function weekKey(d: Date): string {
  // ISO week: Thursday of the week decides the year
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}
const monthKey = (d: Date) => d.toISOString().slice(0, 7);
/** A backup whose validation failed (or that validation found critical): never preferred by retention. */
const knownBad = (b: BackupInfo) => b.healthStatus === 'Critical';

/**
 * Grandfather-father-son retention, applied per backup name (backups of different names never share a
 * bucket): keep one completed backup in each of the `keepDaily` most recent days (UTC), `keepWeekly` most recent ISO
 * weeks and `keepMonthly` most recent months that have a completed backup of that name; days, weeks or months without
 * one are skipped, not counted. In each of those periods the backup kept is the newest one that is not known bad
 * (`healthStatus` `Critical`: its validation failed); a known-bad backup is kept only when the period has nothing
 * better, so it never displaces a healthy one. Failed or partial backups are kept while younger than a day (for
 * diagnosis) and removed after. Backups younger than `minAgeHours` (default {@link DEFAULT_MIN_AGE_HOURS}, 1 h) are
 * never removed.
 */
export function planRetention(
  backups: readonly BackupInfo[],
  policy: RetentionPolicy,
  now = new Date(),
): RetentionDecision {
  for (const k of ['keepDaily', 'keepWeekly', 'keepMonthly'] as const)
    if (!Number.isInteger(policy[k]) || policy[k] < 0)
      throw invalidOption(`retentionPolicy.${k}`, policy[k], 'a non-negative integer');
  const minAgeHours = policy.minAgeHours ?? DEFAULT_MIN_AGE_HOURS;
  if (typeof minAgeHours !== 'number' || !Number.isFinite(minAgeHours) || minAgeHours < 0)
    throw invalidOption(
      'retentionPolicy.minAgeHours',
      policy.minAgeHours,
      `a non-negative number of hours (or leave it out for the default, ${DEFAULT_MIN_AGE_HOURS})`,
    );
  const reasons = new Map<string, string[]>();
  const keepReason = (b: BackupInfo, why: string) => reasons.set(b.id, [...(reasons.get(b.id) ?? []), why]);
  const byName = new Map<string, BackupInfo[]>();
  for (const b of backups) byName.set(b.name, [...(byName.get(b.name) ?? []), b]);
  for (const group of byName.values()) {
    const completed = group
      .filter((b) => b.status === 'Completed')
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
    for (const [limit, bucket, label] of [
      [policy.keepDaily, dayKey, 'daily'],
      [policy.keepWeekly, weekKey, 'weekly'],
      [policy.keepMonthly, monthKey, 'monthly'],
    ] as const) {
      // `completed` is newest first, so periods come in order and, within one, the first pick is its newest backup.
      const chosen = new Map<string, BackupInfo>();
      for (const b of completed) {
        const k = bucket(new Date(b.createdAt));
        const best = chosen.get(k);
        if (!best) {
          if (chosen.size >= limit) break;
          chosen.set(k, b);
        } else if (knownBad(best) && !knownBad(b)) chosen.set(k, b);
      }
      for (const [k, b] of chosen) keepReason(b, `${label} ${k}${knownBad(b) ? ' (no healthy backup in it)' : ''}`);
    }
    for (const b of group) {
      const age = now.getTime() - Date.parse(b.createdAt);
      if (age < minAgeHours * 3_600_000) keepReason(b, `younger than ${minAgeHours} h`);
      else if (b.status !== 'Completed' && age < 86_400_000) keepReason(b, `${b.status}, kept a day for diagnosis`);
    }
  }
  const keep: RetentionDecision['keep'] = [];
  const remove: BackupInfo[] = [];
  for (const b of backups) {
    const r = reasons.get(b.id);
    if (r) keep.push({ backup: b, reasons: r });
    else remove.push(b);
  }
  return { keep, remove };
}

/**
 * Applies the retention policy across every profile (or `storageProfiles`). Deletes for real unless `dryRun`.
 * `minAgeHours` defaults to {@link DEFAULT_MIN_AGE_HOURS}. Profiles that cannot be listed are left alone and reported
 * in `unavailableProfiles` (missing backups only make retention keep more, never delete more).
 */
export async function applyRetention(
  context: BackupContext,
  options: { policy?: RetentionPolicy; dryRun?: boolean; storageProfiles?: readonly string[]; now?: Date } = {},
): Promise<RetentionDecision & { deleted: DeleteReceipt[]; unavailableProfiles: UnavailableProfile[] }> {
  const policy = options.policy ?? context.config.retentionPolicy;
  if (!policy)
    throw invalidOption(
      'retentionPolicy',
      undefined,
      'a policy in options or Koan.Backup.RetentionPolicy in koan.config.json',
    );
  const discovery = new BackupDiscoveryService(context);
  const catalog = await discovery.discoverAllBackups(
    options.storageProfiles ? { storageProfiles: options.storageProfiles } : {},
  );
  const decision = planRetention(catalog.backups, policy, options.now);
  const deleted: DeleteReceipt[] = [];
  if (!options.dryRun)
    for (const b of decision.remove)
      deleted.push(await discovery.deleteBackup(b.id, { storageProfile: b.storageProfile }));
  return { ...decision, deleted, unavailableProfiles: catalog.unavailableProfiles };
}

export interface MaintenanceRun {
  readonly startedAt: string;
  readonly durationMs: number;
  readonly leftovers: LeftoverReport;
  readonly retention?: { kept: number; deleted: number };
  readonly error?: string;
}

/** The longest delay a Node timer accepts (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** `30m`, `6h`, `1d`, `500ms`; or a .NET TimeSpan as appsettings.json writes it: `06:00:00`, `1.00:00:00`. */
export const INTERVAL_PATTERN = /^(?:\d+(?:ms|s|m|h|d)|(?:\d+\.)?(?:[01]?\d|2[0-3]):[0-5]\d:[0-5]\d)$/;

export function parseInterval(text: string): number {
  const unit = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (unit)
    return (
      Number(unit[1]) *
      { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit[2] as 'ms' | 's' | 'm' | 'h' | 'd']
    );
  const span = /^(?:(\d+)\.)?(\d{1,2}):([0-5]\d):([0-5]\d)$/.exec(text);
  if (span && Number(span[2]) < 24)
    return ((Number(span[1] ?? 0) * 24 + Number(span[2])) * 60 + Number(span[3])) * 60_000 + Number(span[4]) * 1000;
  throw invalidOption('maintenanceInterval', text, 'a duration such as 30m, 6h or 1d, or a TimeSpan such as 06:00:00');
}

export interface ScheduledBackup {
  /** Cron expression (croner syntax, e.g. `0 2 * * *`). */
  readonly cron: string;
  /**
   * Backup name passed to `run`; `{date}` is replaced with the UTC date (YYYY-MM-DD). Retention applies per backup
   * name, so keep it stable (`nightly`): a templated name such as `nightly-{date}` makes every backup its own
   * retention group, and retention then never removes any of them.
   */
  readonly name: string;
  readonly run: (name: string) => Promise<unknown>;
}

/** What failed in the background: the second argument of the service's `onError`. */
export type BackgroundFailure =
  | {
      readonly kind: 'schedule';
      /** The schedule's `name` as configured (with `{date}` if it has one). */
      readonly schedule: string;
      readonly cron: string;
      /** The backup name `run` was called with. */
      readonly name: string;
    }
  | { readonly kind: 'maintenance'; readonly run: MaintenanceRun };

/**
 * The background service: runs maintenance (leftover cleanup, then retention) every
 * `Koan.Backup.MaintenanceInterval`, and scheduled backups on their cron expressions. One run at a
 * time; `stop()` waits for the run in flight.
 *
 * Failures are never swallowed: a scheduled backup whose `run` throws (or rejects) and a maintenance pass that fails
 * are passed to `onError(error, failure)`. Without `onError`, a failed scheduled backup is written to `console.error`
 * with its schedule and backup name, and a failed maintenance pass reaches `onRun` (its `error`), or `console.error`
 * when there is no `onRun` either.
 *
 * Retention applies per backup name: give schedules a stable name (`nightly`), not a templated one
 * (`nightly-{date}`), or retention never removes their backups.
 *
 * @example
 * const service = new BackupMaintenanceService(context, {
 *   schedules: [{ cron: '0 2 * * *', name: 'nightly', run: (n) => backups.backupAllEntities(n) }],
 *   onError: (error, failure) => log.error({ err: error, failure }, 'backup maintenance failed'),
 * });
 * service.start();
 */
export class BackupMaintenanceService {
  readonly #context: BackupContext;
  readonly #intervalMs: number;

  /** Milliseconds between maintenance passes (`intervalMs`, else `Koan.Backup.MaintenanceInterval`). */
  get intervalMs(): number {
    return this.#intervalMs;
  }
  readonly #schedules: readonly ScheduledBackup[];
  readonly #onRun: ((run: MaintenanceRun) => void) | undefined;
  readonly #onError: ((error: unknown, failure: BackgroundFailure) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #crons: Cron[] = [];
  #running: Promise<unknown> = Promise.resolve();

  constructor(
    context: BackupContext,
    options: {
      intervalMs?: number;
      schedules?: readonly ScheduledBackup[];
      /** Called after every maintenance pass, failed ones included (with `error`). */
      onRun?: (run: MaintenanceRun) => void;
      /** Called with every failure of a scheduled backup or a maintenance pass (see the class documentation). */
      onError?: (error: unknown, failure: BackgroundFailure) => void;
    } = {},
  ) {
    this.#context = context;
    this.#intervalMs = options.intervalMs ?? parseInterval(context.config.maintenanceInterval);
    // setInterval runs a longer delay every millisecond instead: refuse it.
    if (!Number.isSafeInteger(this.#intervalMs) || this.#intervalMs < 1 || this.#intervalMs > MAX_TIMER_MS)
      throw options.intervalMs !== undefined
        ? invalidOption('intervalMs', options.intervalMs, `a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`)
        : invalidOption('maintenanceInterval', context.config.maintenanceInterval, 'a duration from 1ms to 24d');
    this.#schedules = options.schedules ?? [];
    for (const [i, s] of this.#schedules.entries()) {
      try {
        new Cron(s.cron, { paused: true }).stop(); // parses the expression, schedules nothing
      } catch (e) {
        throw new BackupError(
          'INVALID_OPTION',
          `Invalid option schedules[${i}].cron: ${JSON.stringify(s.cron)} (${(e as Error).message}). Expected a cron expression such as "0 2 * * *" (every day at 02:00).`,
          { cause: e, details: { option: `schedules[${i}].cron` } },
        );
      }
    }
    this.#onRun = options.onRun;
    this.#onError = options.onError;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.#pass(true), this.#intervalMs);
    this.#timer.unref();
    for (const s of this.#schedules)
      this.#crons.push(
        new Cron(s.cron, { protect: true, unref: true }, () => {
          this.#running = this.#running.then(async () => {
            const name = s.name.replace('{date}', new Date().toISOString().slice(0, 10));
            try {
              await s.run(name);
            } catch (e) {
              this.#failed(e, { kind: 'schedule', schedule: s.name, cron: s.cron, name });
            }
          });
        }),
      );
  }

  /** One maintenance pass: leftovers, then retention (when a policy is configured). */
  runOnce(): Promise<MaintenanceRun> {
    return this.#pass(false);
  }

  #pass(background: boolean): Promise<MaintenanceRun> {
    const next = this.#running.then(async () => {
      const t0 = performance.now();
      const startedAt = new Date().toISOString();
      let leftovers: LeftoverReport = { incompleteUploads: [], orphanArchives: [], dryRun: false };
      try {
        leftovers = await cleanupLeftovers(this.#context);
        const policy = this.#context.config.retentionPolicy;
        const retention = policy ? await applyRetention(this.#context, { policy }) : undefined;
        const run: MaintenanceRun = {
          startedAt,
          durationMs: performance.now() - t0,
          leftovers,
          ...(retention ? { retention: { kept: retention.keep.length, deleted: retention.deleted.length } } : {}),
        };
        this.#onRun?.(run);
        return run;
      } catch (e) {
        const run: MaintenanceRun = {
          startedAt,
          durationMs: performance.now() - t0,
          leftovers,
          error: (e as Error).message,
        };
        this.#onRun?.(run);
        // runOnce() hands the failure to its caller; a pass of the interval timer has no caller to see it.
        if (this.#onError || (background && !this.#onRun)) this.#failed(e, { kind: 'maintenance', run });
        return run;
      }
    });
    this.#running = next.catch(() => undefined);
    return next;
  }

  /** Hands a background failure to `onError`, or to `console.error` without one (or when `onError` throws). */
  #failed(error: unknown, failure: BackgroundFailure): void {
    if (this.#onError) {
      try {
        this.#onError(error, failure);
        return;
      } catch (e) {
        console.error('[koan-backup] onError threw while reporting a background failure:', e);
      }
    }
    const what =
      failure.kind === 'schedule'
        ? `Scheduled backup ${JSON.stringify(failure.name)} (schedule ${JSON.stringify(failure.schedule)}, cron ${JSON.stringify(failure.cron)}) failed:`
        : 'Backup maintenance pass failed:';
    console.error(`[koan-backup] ${what}`, error);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const c of this.#crons) c.stop();
    this.#crons = [];
    await this.#running;
  }
}

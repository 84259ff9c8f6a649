import { Cron } from 'croner';
import { type ArchiveState, adoptArchive, inspectArchive } from './archives.js';
import { type BackupInfo, parseBackupKey } from './catalog.js';
import { type BackupContext, parseInterval, provideMaintenance } from './context.js';
import {
  type BackupCatalog,
  BackupDiscoveryService,
  type DeleteReceipt,
  type UnavailableProfile,
} from './discovery.js';
import { BackupError, invalidOption } from './errors.js';
import { SIDECAR_SUFFIX } from './manifest.js';
import {
  planRetention,
  type RetentionDecision,
  type RetentionPolicy,
  type RetentionScope,
  resolvePolicy,
} from './retention.js';

/** An archive (Koan's key layout) without a sidecar, and what cleanup did with it: never deleted. */
export interface OrphanArchive {
  readonly profile: string;
  readonly key: string;
  readonly size: number;
  /** See `ArchiveState`: a complete archive is a restorable backup; a damaged one does not open or check out. */
  readonly state: ArchiveState['state'];
  /**
   * `adopted`: its sidecar was written back (option `adopt`); `kept`: reported only. An archive at a final key is never
   * deleted by cleanup (it was whole when published): a damaged one is removed only by `deleteDamagedArchive`.
   */
  readonly action: 'adopted' | 'kept';
  /** The backup it holds (complete and damaged archives whose manifest could be read). */
  readonly backup?: { readonly id: string; readonly name: string; readonly createdAt: string };
  /** Why it is damaged. */
  readonly problem?: string;
}

export interface LeftoverReport {
  /**
   * Uploads that never finished, as the storage driver reports them (temp files, open multipart uploads, uncommitted
   * blocks): never visible at a final key. Removed (or found, in a dry run).
   */
  readonly incompleteUploads: { profile: string; key: string; startedAt: string }[];
  /**
   * Backup archives (Koan's key layout only) with no sidecar: a lost catalog record, or a crash between the archive and
   * its commit marker. Complete ones are adopted (option `adopt`) or kept, damaged ones kept: none is deleted.
   */
  readonly orphanArchives: OrphanArchive[];
  readonly dryRun: boolean;
}

/**
 * Finds and removes what interrupted backups left behind, and only what provably never finished: the incomplete
 * uploads the storage driver reports (temp files, multipart uploads, uncommitted blocks) that are older than
 * `olderThanMs` (default 1 h), so a backup still running is never disturbed.
 *
 * Nothing at a final archive key is ever deleted: storage `put` is atomic (a temp name, then a commit), so an archive
 * there was whole when it was published. Archives whose sidecar is missing (older than `olderThanMs`) are read and
 * reported: a **complete** one (a ZIP whose manifest and every entry check out) is a restorable backup whose catalog
 * record was lost; with `adopt` its sidecar is written back from its manifest (`adoptArchive`), otherwise it is kept
 * for `koan-backup adopt <key>`. A **damaged** one (it does not open as a ZIP, or its manifest or an entry does not
 * check out) is kept and reported, for someone to look at and delete by key with `deleteDamagedArchive`.
 *
 * Only keys that follow Koan's own backup key layout (`<name>/<name>-YYYYMMDD-HHmmss-<id8>.zip` and its
 * `.manifest.json` sidecar) are ever reported or removed: other files sharing the bucket or folder (a `report.zip`,
 * `user-files/photos.zip`, another application's multipart upload) are left alone. An incomplete upload whose key the
 * driver cannot tell (the local driver's temp files for very long keys) is left alone too.
 */
export async function cleanupLeftovers(
  context: BackupContext,
  options: {
    olderThanMs?: number;
    dryRun?: boolean;
    storageProfiles?: readonly string[];
    /** Write the sidecar of complete orphan archives back (default false: report them). */
    adopt?: boolean;
    signal?: AbortSignal;
  } = {},
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
      const found = await inspectArchive(driver, a.key, options.signal);
      const m = found.manifest;
      let action: OrphanArchive['action'] = 'kept';
      if (found.state === 'complete' && options.adopt) {
        if (!dryRun) await adoptArchive(context, { key: a.key, profile }, sig);
        action = 'adopted';
      }
      report.orphanArchives.push({
        profile,
        key: a.key,
        size: a.size,
        state: found.state,
        action,
        ...(m ? { backup: { id: m.id, name: m.name, createdAt: m.createdAt } } : {}),
        ...(found.problem ? { problem: found.problem } : {}),
      });
    }
  }
  return report;
}

/**
 * Applies the retention policy (see `planRetention` in retention.ts) across every profile (or `storageProfiles`), to the
 * backups in `scope` (names, tags). Deletes for real unless `dryRun`. Profiles that cannot be listed are left alone and
 * reported in `unavailableProfiles` (missing backups only make retention keep more, never delete more).
 *
 * The archives of the backups in scope are listed too: a backup whose sidecar is listed but whose archive is gone
 * restores nothing, so it is never the newest healthy backup retention always keeps (the next one with its archive
 * is), and it is reported in `missingArchives`. A name in `scope.names` that no listed backup has is refused with
 * `BACKUP_NOT_FOUND` naming the known names, before anything is planned.
 */
export async function applyRetention(
  context: BackupContext,
  options: {
    policy?: RetentionPolicy;
    dryRun?: boolean;
    storageProfiles?: readonly string[];
    scope?: RetentionScope;
    now?: Date;
    signal?: AbortSignal;
  } = {},
): Promise<RetentionDecision & { deleted: DeleteReceipt[]; unavailableProfiles: UnavailableProfile[] }> {
  const policy = options.policy ?? context.config.retentionPolicy;
  if (!policy)
    throw invalidOption(
      'retentionPolicy',
      undefined,
      'a policy in options or Koan.Backup.RetentionPolicy in koan.config.json (e.g. { keepDaily: 7, keepWeekly: 4, keepMonthly: 12 })',
    );
  resolvePolicy(policy); // a bad policy fails before any profile is listed
  const discovery = new BackupDiscoveryService(context);
  const catalog = await discovery.discoverAllBackups({
    ...(options.storageProfiles ? { storageProfiles: options.storageProfiles } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const names = options.scope?.names;
  if (names?.length) assertKnownNames(names, catalog);
  const candidates = names?.length ? catalog.backups.filter((b) => names.includes(b.name)) : catalog.backups;
  const present = await archivesPresent(context, candidates, options.signal);
  const decision = planRetention(catalog.backups, policy, {
    ...(options.now ? { now: options.now } : {}),
    ...(options.scope ? { scope: options.scope } : {}),
    archiveMissing: (b) => b.archiveKey !== undefined && !present.has(`${b.storageProfile}\u0000${b.archiveKey}`),
  });
  const deleted: DeleteReceipt[] = [];
  if (!options.dryRun)
    for (const b of decision.remove)
      deleted.push(await discovery.deleteBackup(b.id, { storageProfile: b.storageProfile }));
  return { ...decision, deleted, unavailableProfiles: catalog.unavailableProfiles };
}

/** How many known names a `BACKUP_NOT_FOUND` for an unknown `scope.names` entry lists. */
const KNOWN_NAMES_SHOWN = 20;

/** Every name of `names` must be a backup name the catalog has: a typo must never plan nothing in silence. */
function assertKnownNames(names: readonly string[], catalog: BackupCatalog): void {
  const known = [...new Set(catalog.backups.map((b) => b.name))].sort();
  const unknown = names.filter((n) => !known.includes(n));
  if (!unknown.length) return;
  const shown = known.slice(0, KNOWN_NAMES_SHOWN);
  const more = known.length > shown.length ? ` and ${known.length - shown.length} more (koan-backup list)` : '';
  const unlisted = catalog.unavailableProfiles.map((p) => p.profile);
  throw new BackupError(
    'BACKUP_NOT_FOUND',
    `No backup is named ${unknown.map((n) => JSON.stringify(n)).join(', ')} in storage profile${catalog.profiles.length === 1 ? '' : 's'} ${catalog.profiles.join(', ')}${unlisted.length ? ` (${unlisted.join(', ')} could not be listed)` : ''}. ${known.length ? `The backup names there: ${shown.join(', ')}${more}.` : 'There are no backups there.'}`,
    { details: { option: 'scope.names', names: unknown, known: shown, knownCount: known.length } },
  );
}

/**
 * The archive keys that exist (`profile\0key`) among those `backups` point to: one listing per folder of them (Koan's
 * layout keeps a name's archives in one folder), so a large catalog costs a few listings, not a request per backup.
 */
async function archivesPresent(
  context: BackupContext,
  backups: readonly BackupInfo[],
  signal: AbortSignal | undefined,
): Promise<Set<string>> {
  const folders = new Map<string, Set<string>>();
  for (const b of backups) {
    if (b.archiveKey === undefined) continue;
    const set = folders.get(b.storageProfile) ?? new Set<string>();
    set.add(b.archiveKey.slice(0, b.archiveKey.lastIndexOf('/') + 1));
    folders.set(b.storageProfile, set);
  }
  const present = new Set<string>();
  for (const [profile, prefixes] of folders) {
    const driver = context.storage.get(profile);
    for (const prefix of prefixes)
      for await (const o of driver.list(prefix, signal ? { signal } : {}))
        if (o.key.endsWith('.zip')) present.add(`${profile}\u0000${o.key}`);
  }
  return present;
}

export interface MaintenanceRun {
  readonly startedAt: string;
  readonly durationMs: number;
  readonly leftovers: LeftoverReport;
  /** `missingArchives`: backups whose sidecar is listed but whose archive is gone (absent when there are none). */
  readonly retention?: { kept: number; deleted: number; missingArchives?: string[] };
  readonly error?: string;
}

/** The longest delay a Node timer accepts (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

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

  /**
   * Starts the maintenance timer and the schedules. A configured `Koan.Backup.RetentionPolicy` that retention would
   * refuse (one that keeps nothing: all zeros, or only `ProtectedTags`/`MinAgeHours`) is refused here, at start, with
   * `INVALID_OPTION`: the same rule as `applyRetention` and `koan-backup prune`, not a failure at every pass.
   */
  start(): void {
    if (this.#timer) return;
    const policy = this.#context.config.retentionPolicy;
    if (policy)
      try {
        resolvePolicy(policy);
      } catch (e) {
        throw new BackupError(
          'INVALID_OPTION',
          `Background maintenance was not started: Koan.Backup.RetentionPolicy cannot be applied. ${(e as Error).message} Fix Koan.Backup.RetentionPolicy in koan.config.json (or remove it to run maintenance without retention).`,
          { cause: e, details: { option: 'retentionPolicy', configKey: 'Koan.Backup.RetentionPolicy' } },
        );
      }
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
          ...(retention
            ? {
                retention: {
                  kept: retention.keep.length,
                  deleted: retention.deleted.length,
                  ...(retention.missingArchives.length
                    ? { missingArchives: retention.missingArchives.map((b) => `${b.storageProfile}:${b.archiveKey}`) }
                    : {}),
                },
              }
            : {}),
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

// BackupContext.fromConfig (EnableBackgroundMaintenance) and startMaintenance() make this service through the hook, so
// that context.ts, which every module here uses, does not import maintenance (and through it the whole catalog).
provideMaintenance((context) => new BackupMaintenanceService(context));

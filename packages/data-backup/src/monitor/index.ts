/**
 * `@koan/data-backup/monitor`: is the backup estate healthy? `monitorBackups` checks the rules of
 * `Koan.Backup.Monitor` (see ./config.ts) per backup name or tag and per storage profile, and reports one problem per
 * violation; an unreachable profile, a profile without backups of a watched target and unreadable backup records are
 * problems too. `checkReadiness` says whether every storage profile can be listed (a readiness probe).
 *
 * The CLI's `koan-backup monitor` and the HTTP API's `GET /health` and `GET /readyz` call these and only render them.
 *
 * @example
 * import { monitorBackups } from '@koan/data-backup/monitor';
 * const result = await monitorBackups(context); // Koan.Backup.Monitor from the context's config
 * if (!result.healthy) for (const p of result.problems) console.error(p.message, '-', p.hint);
 */
import { ConfigError, KoanError } from '@koan/data';
import { parseConfigSection } from '@koan/data/config';
import type { BackupContext } from '../context.js';
import { BackupDiscoveryService } from '../discovery.js';
import { BackupError } from '../errors.js';
import type { NotificationData } from '../notify/events.js';
import { type MonitorConfigInput, monitorConfigSchema } from './config.js';
import {
  evaluateMonitor,
  type MonitorCheck,
  type MonitorProblem,
  type MonitorTarget,
  type ProfileListing,
} from './evaluate.js';

export {
  BYTES_PER_MB,
  MONITOR_RULES,
  type MonitorConfig,
  type MonitorConfigInput,
  type MonitorRuleName,
  type MonitorRules,
  monitorConfigSchema,
} from './config.js';
export {
  evaluateMonitor,
  type MonitorCheck,
  type MonitorCheckName,
  type MonitorProblem,
  type MonitorTarget,
  type ProfileListing,
} from './evaluate.js';

/** Where an unhealthy result is reported: a `Notifications` (its `emit`), or anything with the same method. */
export interface MonitorNotifier {
  emit(type: 'health.unhealthy', data: NotificationData<'health.unhealthy'>): { readonly id: string } | undefined;
}

export interface MonitorOptions {
  /** The clock the ages are measured against. @default new Date() */
  readonly now?: Date;
  /** Only these name targets (each must be a `Name` of `Targets`). */
  readonly names?: readonly string[];
  /** Only these tag targets (each must be a `Tag` of `Targets`, any case). */
  readonly tags?: readonly string[];
  /** Only these storage profiles (each must be configured). */
  readonly storageProfiles?: readonly string[];
  readonly signal?: AbortSignal;
  /**
   * When the result is unhealthy, a `health.unhealthy` event with every problem is handed to `notify.emit` (a
   * `Notifications`, e.g. `Notifications.fromConfig(context.config.notifications)`). Every unhealthy run emits one.
   */
  readonly notify?: MonitorNotifier;
}

export interface MonitorResult {
  /** No problem found. */
  readonly healthy: boolean;
  readonly checkedAt: string;
  /** The storage profiles looked at (listed, or reported `Unreachable`). */
  readonly storageProfiles: readonly string[];
  /** What was watched: each target with its effective rules and profiles (empty when `Targets` lists none). */
  readonly targets: readonly MonitorTarget[];
  /** Per target and profile that could be listed: the figures the rules looked at. */
  readonly checks: readonly MonitorCheck[];
  /** One per violation, in the order: profiles, then targets as configured. */
  readonly problems: readonly MonitorProblem[];
  /** The id of the `health.unhealthy` event emitted, when one was (unhealthy, a notifier, a webhook taking it). */
  readonly eventId?: string;
}

const SECTION = ['Koan', 'Backup', 'Monitor'] as const;

const codeOf = (e: unknown): string =>
  e instanceof KoanError
    ? e.code
    : typeof (e as { code?: unknown })?.code === 'string'
      ? (e as { code: string }).code
      : 'ERROR';
const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

function configuredProfiles(context: BackupContext): string[] {
  return [...new Set([context.profileName(), ...context.storage.names()])];
}

function unknownProfile(path: string, profile: string, known: readonly string[]): ConfigError {
  return new ConfigError(
    'CONFIG_INVALID',
    `${path} names storage profile ${JSON.stringify(profile)}, which is not configured (Koan.Storage.Profiles has ${known.join(', ')}). Fix the name or configure the profile.`,
    { details: { path, profile } },
  );
}

/** The targets to check, `Defaults` applied and filters narrowed; every name checked against the configuration. */
function resolveTargets(
  context: BackupContext,
  config: MonitorConfigInput | undefined,
  options: MonitorOptions,
): MonitorTarget[] {
  const parsed = parseConfigSection(monitorConfigSchema, config ?? {}, [...SECTION]);
  const known = configuredProfiles(context);
  for (const p of options.storageProfiles ?? [])
    if (!known.includes(p))
      throw new BackupError(
        'INVALID_OPTION',
        `Invalid option storageProfiles: ${JSON.stringify(p)} is not a configured storage profile. Configured: ${known.join(', ')}.`,
        { details: { option: 'storageProfiles', profile: p } },
      );
  const { storageProfiles: defaultProfiles, ...defaults } = parsed.defaults;
  for (const p of defaultProfiles ?? [])
    if (!known.includes(p)) throw unknownProfile('Koan.Backup.Monitor.Defaults.StorageProfiles', p, known);
  const filter = (kind: 'names' | 'tags', values: readonly string[] | undefined, listed: readonly string[]) => {
    const same = (a: string, b: string) => (kind === 'names' ? a === b : a.toLowerCase() === b.toLowerCase());
    for (const v of values ?? [])
      if (!listed.some((l) => same(l, v)))
        throw new BackupError(
          'INVALID_OPTION',
          `Invalid option ${kind}: ${JSON.stringify(v)} is not watched. Koan.Backup.Monitor.Targets lists ${kind} ${listed.length ? listed.join(', ') : '(none)'}.`,
          { details: { option: kind, value: v } },
        );
    return (x: string) => values?.some((v) => same(v, x)) ?? false;
  };
  const names = parsed.targets.flatMap((t) => (t.name === undefined ? [] : [t.name]));
  const tags = parsed.targets.flatMap((t) => (t.tag === undefined ? [] : [t.tag]));
  const nameWanted = filter('names', options.names, names);
  const tagWanted = filter('tags', options.tags, tags);
  const narrowed = Boolean(options.names?.length || options.tags?.length);
  const targets: MonitorTarget[] = [];
  for (const [i, t] of parsed.targets.entries()) {
    const { name, tag, storageProfiles: profiles, ...own } = t;
    for (const p of profiles ?? [])
      if (!known.includes(p)) throw unknownProfile(`Koan.Backup.Monitor.Targets.${i}.StorageProfiles`, p, known);
    if (narrowed && !(name !== undefined ? nameWanted(name) : tagWanted(tag!))) continue;
    const where = (profiles ?? defaultProfiles ?? known).filter(
      (p) => !options.storageProfiles?.length || options.storageProfiles.includes(p),
    );
    if (!where.length) continue;
    targets.push({
      scope: name !== undefined ? 'name' : 'tag',
      target: (name ?? tag)!,
      rules: { ...defaults, ...Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined)) },
      storageProfiles: [...new Set(where)],
    });
  }
  // Only a profile filter can leave nothing: every target has at least one profile.
  if (!targets.length && parsed.targets.length && options.storageProfiles?.length)
    throw new BackupError(
      'INVALID_OPTION',
      `Invalid option storageProfiles: no watched target is checked in ${options.storageProfiles.join(', ')} (each target's StorageProfiles in Koan.Backup.Monitor, else Defaults.StorageProfiles, say where it is checked).`,
      { details: { option: 'storageProfiles', storageProfiles: options.storageProfiles } },
    );
  return targets;
}

/** Each profile's catalog, or why it could not be listed (a cancellation is thrown). */
async function listProfiles(
  context: BackupContext,
  profiles: readonly string[],
  signal: AbortSignal | undefined,
): Promise<Map<string, ProfileListing>> {
  const discovery = new BackupDiscoveryService(context);
  const listed = await Promise.all(
    profiles.map(async (profile): Promise<ProfileListing> => {
      try {
        const catalog = await discovery.discoverAllBackups({
          storageProfiles: [profile],
          ...(signal ? { signal } : {}),
        });
        return { backups: catalog.backups, unreadable: catalog.unreadable };
      } catch (e) {
        if (signal?.aborted) throw e;
        return { unavailable: { profile, code: codeOf(e), message: messageOf(e) } };
      }
    }),
  );
  return new Map(profiles.map((p, i) => [p, listed[i]!]));
}

/**
 * Checks `config` (default: the context's `Koan.Backup.Monitor`) against the catalog: for each target (a backup name
 * or a tag) in each of its storage profiles, `MaxAgeHours`, `MinCount`, `MaxStorageMB` and
 * `MustBeValidatedWithinDays`, and that the profile holds backups of it at all; every profile looked at must be
 * listable and its backup records readable. The result is healthy when there is no problem; each problem names the
 * target, the profile, the rule, what was seen, the limit and a fix.
 *
 * With no `Targets`, only the storage profiles are checked (every configured one, or `storageProfiles`). A bad
 * section throws a `ConfigError` naming the key path (a target's profile that is not configured included); a filter
 * naming something not watched throws `INVALID_OPTION` naming the option. Ages are measured against `now`.
 */
export async function monitorBackups(
  context: BackupContext,
  config: MonitorConfigInput | undefined = context.config.monitor,
  options: MonitorOptions = {},
): Promise<MonitorResult> {
  const targets = resolveTargets(context, config, options);
  const profiles = targets.length
    ? [...new Set(targets.flatMap((t) => t.storageProfiles))]
    : options.storageProfiles?.length
      ? [...new Set(options.storageProfiles)]
      : configuredProfiles(context);
  const listings = await listProfiles(context, profiles, options.signal);
  const now = options.now ?? new Date();
  const { checks, problems } = evaluateMonitor(targets, listings, now);
  const checkedAt = now.toISOString();
  const result: MonitorResult = {
    healthy: problems.length === 0,
    checkedAt,
    storageProfiles: profiles,
    targets,
    checks,
    problems,
  };
  if (result.healthy || !options.notify) return result;
  const event = options.notify.emit('health.unhealthy', { checkedAt, problems: problems.map((p) => ({ ...p })) });
  return event ? { ...result, eventId: event.id } : result;
}

export { checkReadiness, type ProfileReadiness, type ReadinessOptions, type ReadinessResult } from './readiness.js';

import { DataRuntime, getDataRuntime, warmup } from '@koan/data';
import { DEFAULT_BATCH_BYTES, MAX_BATCH_BYTES, parseByteSize } from '@koan/data/adapter-kit';
import { dataConfigSchema, type LoadConfigOptions, loadKoanConfig, parseConfigSection } from '@koan/data/config';
import { StorageProfiles, storageConfigSchema } from '@koan/storage';
import { z } from 'zod';
import { BackupError, invalidOption } from './errors.js';
import { BATCH_SIZE, COMPRESSION_LEVEL } from './limits.js';
import { monitorConfigSchema } from './monitor/config.js';
import { notificationsConfigSchema } from './notify/config.js';
import { DEFAULT_MIN_AGE_HOURS } from './retention.js';

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

/** `Koan.Backup.RetentionPolicy`, and the policy of `POST /maintenance/prune`: restic's forget rules. */
export const retentionPolicySchema = z
  .object({
    keepLast: z.number().int().min(0).optional().describe('The newest N completed backups of each name'),
    keepHourly: z.number().int().min(0).optional().describe('The newest backup of each of the last N hours (UTC)'),
    keepDaily: z.number().int().min(0).optional().describe('... of each of the last N days (UTC)'),
    keepWeekly: z.number().int().min(0).optional().describe('... of each of the last N ISO weeks'),
    keepMonthly: z.number().int().min(0).optional().describe('... of each of the last N months'),
    keepYearly: z.number().int().min(0).optional().describe('... of each of the last N years'),
    keepWithin: z
      .string()
      .optional()
      .describe('Every backup made within this duration before the newest one of its name: 30d, 12h, 1y6m'),
    protectedTags: z
      .array(z.string().min(1))
      .optional()
      .describe('Backups with any of these tags are never deleted (default ["keep", "permanent"])'),
    minAgeHours: z.number().min(0).default(DEFAULT_MIN_AGE_HOURS).describe('Never delete backups younger than this'),
  })
  .strict()
  .describe(
    "restic's forget rules, per backup name; the newest healthy backup of each name is always kept, and a policy that keeps nothing is refused",
  );

/** `Koan.Backup` in koan.config.json. */
export const backupConfigSchema = z
  .object({
    defaultStorageProfile: z
      .string()
      .min(1)
      .optional()
      .describe('Profile used when options name none (default: Koan.Storage.DefaultProfile)'),
    defaultBatchSize: z
      .number()
      .int()
      .min(BATCH_SIZE.min)
      .max(BATCH_SIZE.max)
      .default(1000)
      .describe('Records per batch'),
    defaultBatchBytes: z
      .union([z.number(), z.string()])
      .transform((value, ctx) => {
        const bytes = parseByteSize(value);
        if (bytes !== undefined && Number.isInteger(bytes) && bytes >= 1 && bytes <= MAX_BATCH_BYTES) return bytes;
        ctx.addIssue({
          code: 'custom',
          message: 'expected a size from 1 byte to 1 GiB: a number of bytes or a text such as 8MiB, 512KiB, 64KB',
        });
        return z.NEVER;
      })
      .default(DEFAULT_BATCH_BYTES)
      .describe(
        'Bytes per batch, default 1MiB (archive-encoded records; a number or a size such as 1MiB, 512KiB): a batch closes at DefaultBatchSize records or at this size, whichever comes first, so wide rows stay bounded in memory',
      ),
    compressionLevel: z
      .number()
      .int()
      .min(COMPRESSION_LEVEL.min)
      .max(COMPRESSION_LEVEL.max)
      .default(1)
      .describe('Deflate level; 1 is fastest, 9 smallest'),
    warmupEntitiesOnStartup: z
      .boolean()
      .default(false)
      .describe('BackupContext.fromConfig connects every source and creates every entity table before returning'),
    enableBackgroundMaintenance: z
      .boolean()
      .default(false)
      .describe(
        'BackupContext.fromConfig starts the maintenance service (cleanup + retention every MaintenanceInterval)',
      ),
    maintenanceInterval: z
      .string()
      .regex(
        INTERVAL_PATTERN,
        'expected a duration: a whole number with ms, s, m, h or d (30m, 6h, 1d), or a TimeSpan such as 06:00:00',
      )
      .default('6h')
      .describe('How often maintenance runs: e.g. 30m, 6h, 1d, or a .NET TimeSpan such as 06:00:00'),
    retentionPolicy: retentionPolicySchema.optional(),
    attentionAfterDays: z
      .number()
      .min(0)
      .default(7)
      .describe('A backup never validated for longer than this needs attention'),
    excludeEntities: z
      .array(z.string().trim().min(1))
      .default([])
      .describe(
        'Entities or tables (any case; namespace.table outside the default schema) that whole-application backups leave out on purpose; each is recorded in the manifest as omitted',
      ),
    notifications: notificationsConfigSchema.optional(),
    monitor: monitorConfigSchema.optional(),
  })
  .strict();
export type BackupConfig = z.infer<typeof backupConfigSchema>;
/** `Koan.Backup` as given in code: what has a default may be left out (a retention policy of only `keepDaily`...). */
export type BackupConfigInput = z.input<typeof backupConfigSchema>;

/** What a context runs in the background until `close()`: `BackupMaintenanceService`. */
export interface BackgroundMaintenance {
  /** Milliseconds between maintenance passes. */
  readonly intervalMs: number;
  start(): void;
  /** Stops the timers and waits for the pass in flight. */
  stop(): Promise<void>;
}

let makeMaintenance: ((context: BackupContext) => BackgroundMaintenance) | undefined;

/**
 * How `startMaintenance()` makes the default service: maintenance.ts registers `BackupMaintenanceService` here when it
 * loads (it imports this module, so this module cannot import it).
 */
export function provideMaintenance(make: (context: BackupContext) => BackgroundMaintenance): void {
  makeMaintenance = make;
}

function defaultMaintenance(context: BackupContext): BackgroundMaintenance {
  if (!makeMaintenance)
    throw new BackupError(
      'INVALID_OPTION',
      'Background maintenance is not loaded: import @koan/data-backup (its entry loads BackupMaintenanceService), not one of its modules alone.',
      { details: { option: 'enableBackgroundMaintenance' } },
    );
  return makeMaintenance(context);
}

export interface BackupContextOptions {
  readonly runtime?: DataRuntime;
  readonly storage?: StorageProfiles;
  readonly config?: BackupConfigInput;
}

/**
 * Everything a backup or restore needs: the data runtime (sources/adapters), the storage profiles and
 * the defaults. `BackupContext.fromConfig()` builds one from koan.config.json + env; the one-line
 * helpers use a process-wide one made that way on first use.
 */
export class BackupContext {
  readonly runtime: DataRuntime;
  readonly storage: StorageProfiles;
  readonly config: BackupConfig;

  constructor(options: BackupContextOptions = {}) {
    this.runtime = options.runtime ?? getDataRuntime();
    this.storage = options.storage ?? new StorageProfiles({ profiles: {} }, { cwd: this.runtime.cwd });
    this.config = Object.freeze(parseConfigSection(backupConfigSchema, options.config ?? {}, ['Koan', 'Backup']));
  }

  /** Reads koan.config.json (+ `Koan__...` env overrides) from `cwd`; uses `runtime` for data if given. */
  static async fromConfig(options: LoadConfigOptions & { runtime?: DataRuntime } = {}): Promise<BackupContext> {
    const loaded = loadKoanConfig(options);
    const cwd = options.cwd ?? process.cwd();
    const storageConfig = parseConfigSection(
      storageConfigSchema,
      loaded.koan.storage,
      ['Koan', 'Storage'],
      loaded.file,
    );
    const backup = parseConfigSection(backupConfigSchema, loaded.koan.backup, ['Koan', 'Backup'], loaded.file);
    // Data sources come from the same file and env as the rest (an explicit `file` or `env` must apply to them too).
    const data = options.runtime
      ? undefined
      : parseConfigSection(dataConfigSchema, loaded.koan.data, ['Koan', 'Data'], loaded.file);
    const context = new BackupContext({
      runtime: options.runtime ?? new DataRuntime({ cwd, ...(data?.sources ? { sources: data.sources } : {}) }),
      storage: await StorageProfiles.load(storageConfig, { cwd, ...(options.env ? { env: { ...options.env } } : {}) }),
      config: backup,
    });
    if (backup.warmupEntitiesOnStartup) await warmup(context.runtime);
    if (backup.enableBackgroundMaintenance)
      try {
        context.startMaintenance();
      } catch (e) {
        await context.close(); // a policy that keeps nothing: no half-started context is left open
        throw e;
      }
    return context;
  }

  #maintenance: BackgroundMaintenance | undefined;

  /** The background maintenance service, when started (by `startMaintenance` or `EnableBackgroundMaintenance`). */
  get maintenance(): BackgroundMaintenance | undefined {
    return this.#maintenance;
  }

  /**
   * Starts background maintenance (leftover cleanup + retention every `MaintenanceInterval`), once; `close()` stops it.
   * Pass a `BackupMaintenanceService` made with options (schedules, `onError`...) to have the context run that one.
   * A retention policy that keeps nothing is refused here (`INVALID_OPTION`), and nothing is started.
   */
  startMaintenance(service?: BackgroundMaintenance): BackgroundMaintenance {
    if (service && this.#maintenance && service !== this.#maintenance)
      throw new BackupError(
        'INVALID_OPTION',
        'This context already runs a maintenance service: stop it (close the context) before starting another.',
        { details: { option: 'service' } },
      );
    const running = this.#maintenance ?? service ?? defaultMaintenance(this);
    running.start();
    this.#maintenance = running;
    return running;
  }

  /** Name of the profile to use for `requested` (or the default). */
  profileName(requested?: string): string {
    return requested || this.config.defaultStorageProfile || this.storage.defaultName;
  }

  async close(): Promise<void> {
    await this.#maintenance?.stop();
    await Promise.allSettled([this.runtime.close(), this.storage.close()]);
  }
}

let current: Promise<BackupContext> | undefined;

/** The process-wide context used by `DataBackup`: koan.config.json on first use, sharing the entities' data runtime. */
export function getBackupContext(): Promise<BackupContext> {
  current ??= BackupContext.fromConfig({ runtime: getDataRuntime() });
  current.catch(() => {
    current = undefined;
  });
  return current;
}

/** Replaces the process-wide context (tests, apps that configure in code). */
export function setBackupContext(context: BackupContext | undefined): void {
  current = context ? Promise.resolve(context) : undefined;
}

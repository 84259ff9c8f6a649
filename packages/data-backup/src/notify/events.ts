/**
 * The notification events and their JSON body: one envelope (`id`, `type`, `timestamp`, `source`, `data`, the payload
 * shape Standard Webhooks recommends) with a `data` object per event type. The zod schemas here are the contract: the
 * JSON Schema published at `schema/notification-event.v1.schema.json` is generated from them, and every event is
 * checked against them before it is sent.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { z } from 'zod';

/** This package's version: events' `source.version` and the notifiers' user agent. */
export const LIBRARY_VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;

const isoDate = z.string().datetime({ offset: true });
const count = z.number().int().nonnegative();

/** An error as events carry it: a `KoanError` code (`BACKUP_FAILED`, `ABORTED`...) or `ERROR`, and its message. */
const errorSchema = z
  .object({
    code: z.string().min(1).describe('Stable error code (BackupError codes), or ERROR for an error without one'),
    message: z.string(),
  })
  .describe('Why it failed');

/** An entity set that failed, as `shortfallOf` names it. */
const failedSetSchema = z.object({
  entity: z.string().min(1),
  set: z.string().min(1),
  error: z.string(),
});

const scheduleField = z
  .string()
  .min(1)
  .optional()
  .describe('The schedule that ran it (its configured name), when it was a scheduled run');

const backupSucceededSchema = z
  .object({
    backupId: z.string().min(1),
    name: z.string().min(1).describe('Backup name'),
    storageProfile: z.string().min(1),
    tags: z.array(z.string()),
    createdAt: isoDate,
    completedAt: isoDate,
    durationMs: z.number().nonnegative(),
    entitySets: count.describe('Entity sets in the archive'),
    totalItemCount: count.describe('Records in the archive'),
    totalSizeBytes: count.describe('Uncompressed bytes of all entity entries'),
    archiveSizeBytes: count.describe('Bytes of the published ZIP'),
    schedule: scheduleField,
  })
  .strict();

const backupFailedSchema = z
  .object({
    name: z.string().min(1).describe('Backup name'),
    status: z
      .enum(['Failed', 'PartiallyCompleted', 'Cancelled'])
      .describe('PartiallyCompleted: published, but some entity sets failed (see failed)'),
    backupId: z.string().min(1).optional().describe('Present when the catalog holds a record of the attempt'),
    storageProfile: z.string().min(1).optional(),
    error: errorSchema,
    failed: z
      .array(failedSetSchema)
      .describe('Entity sets that failed, with why (empty when the backup as a whole did)'),
    durationMs: z.number().nonnegative().optional(),
    schedule: scheduleField,
  })
  .strict();

const restoreSucceededSchema = z
  .object({
    backupId: z.string().min(1),
    backupName: z.string().min(1),
    storageProfile: z.string().min(1),
    entitySets: count.describe('Entity sets restored'),
    totalRecords: count,
    durationMs: z.number().nonnegative(),
    targetSource: z.string().min(1).optional().describe('The source restored into, when one was named'),
  })
  .strict();

const restoreFailedSchema = z
  .object({
    backupName: z.string().min(1).optional().describe('Absent when the restore failed before a backup was chosen'),
    backupId: z.string().min(1).optional(),
    storageProfile: z.string().min(1).optional(),
    status: z.enum(['Failed', 'PartiallyCompleted', 'Cancelled']),
    error: errorSchema,
    failed: z
      .array(failedSetSchema)
      .describe('Entity sets that failed, with why (empty when the restore as a whole did)'),
    durationMs: z.number().nonnegative().optional(),
  })
  .strict();

const healthUnhealthySchema = z
  .object({
    checkedAt: isoDate,
    problems: z
      .array(
        z
          .object({
            scope: z.enum(['name', 'tag', 'profile']).describe('What the rule watches'),
            target: z.string().min(1).describe('The backup name, tag or storage profile'),
            storageProfile: z
              .string()
              .min(1)
              .optional()
              .describe('The storage profile where it was found (the target itself for scope profile)'),
            check: z
              .string()
              .min(1)
              .describe(
                'The rule broken: MaxAgeHours, MinCount, MaxStorageMB, MustBeValidatedWithinDays; NoBackups (the profile holds no backup of the target), Unreachable (a profile that could not be listed) or Unreadable (backup records that could not be read)',
              ),
            observed: z
              .number()
              .nullable()
              .optional()
              .describe(
                "What was seen, in the rule's unit (hours, backups, MB, days, records); null when there was nothing to measure",
              ),
            limit: z
              .number()
              .nullable()
              .optional()
              .describe('The configured limit, same unit; null when the rule has none'),
            message: z.string().min(1).describe('One line saying what is wrong'),
            hint: z.string().min(1).optional().describe('What to do about it'),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

const drillFailedSchema = z
  .object({
    backupId: z.string().min(1).optional().describe('Absent when no backup could be chosen to drill'),
    backupName: z.string().min(1),
    storageProfile: z.string().min(1).optional(),
    sandbox: z.string().min(1).optional().describe('Where it was restored: a temporary SQLite file, PG schema...'),
    error: errorSchema.optional().describe('Why the drill could not complete, when it did not'),
    mismatches: z
      .array(
        z
          .object({
            entity: z.string().min(1),
            set: z.string().min(1),
            expectedCount: count,
            actualCount: count,
            expectedHash: z.string().optional(),
            actualHash: z.string().optional(),
          })
          .strict(),
      )
      .describe('Entity sets whose restored count or content hash differs from the manifest'),
    durationMs: z.number().nonnegative(),
  })
  .strict();

const retentionAppliedSchema = z
  .object({
    kept: count.describe('Backups kept'),
    deleted: z
      .array(
        z
          .object({
            id: z.string().min(1),
            name: z.string().min(1),
            storageProfile: z.string().min(1),
            createdAt: isoDate,
          })
          .strict(),
      )
      .describe('Backups deleted'),
    unavailableProfiles: z
      .array(z.string())
      .describe('Profiles that could not be listed (their backups were left alone)'),
  })
  .strict();

/** The `data` schema of each event type. */
export const notificationDataSchemas = {
  'backup.succeeded': backupSucceededSchema,
  'backup.failed': backupFailedSchema,
  'restore.succeeded': restoreSucceededSchema,
  'restore.failed': restoreFailedSchema,
  'health.unhealthy': healthUnhealthySchema,
  'drill.failed': drillFailedSchema,
  'retention.applied': retentionAppliedSchema,
} as const;

export type NotificationType = keyof typeof notificationDataSchemas;
/** Every event type, in the order the documentation lists them. */
export const NOTIFICATION_TYPES = Object.freeze(Object.keys(notificationDataSchemas)) as readonly NotificationType[];
/** The `data` of an event of type `T`, as the caller gives it. */
export type NotificationData<T extends NotificationType> = z.input<(typeof notificationDataSchemas)[T]>;

const sourceSchema = z
  .object({
    library: z.literal('@koan/data-backup'),
    version: z.string(),
    host: z.string().describe('Host name of the process that sent it'),
    app: z.string().min(1).optional().describe('Koan.Backup.Notifications.App: which application or environment'),
  })
  .strict();

function envelope<T extends NotificationType>(type: T) {
  return z
    .object({
      id: z.string().uuid().describe('Unique per event; also the webhook-id header, the same on every retry'),
      type: z.literal(type),
      timestamp: isoDate.describe('When it happened (UTC)'),
      source: sourceSchema,
      data: notificationDataSchemas[type],
    })
    .strict();
}

/** The JSON body of a webhook of format `json`: one of the event types. */
export const notificationEventSchema = z.discriminatedUnion('type', [
  envelope('backup.succeeded'),
  envelope('backup.failed'),
  envelope('restore.succeeded'),
  envelope('restore.failed'),
  envelope('health.unhealthy'),
  envelope('drill.failed'),
  envelope('retention.applied'),
]);

/** An event as sent: `data` is the data of its `type`. */
export type NotificationEvent<T extends NotificationType = NotificationType> = T extends NotificationType
  ? {
      readonly id: string;
      readonly type: T;
      readonly timestamp: string;
      readonly source: z.output<typeof sourceSchema>;
      readonly data: z.output<(typeof notificationDataSchemas)[T]>;
    }
  : never;

const HOST = hostname();

/**
 * A checked event of `type` with `data`. Throws a zod error when `data` does not match the type's schema (a bug in the
 * emitter: `Notifications.emit` reports it instead of sending a body that breaks the documented contract).
 */
export function createEvent<T extends NotificationType>(
  type: T,
  data: NotificationData<T>,
  options: { app?: string | undefined; now?: Date } = {},
): NotificationEvent<T> {
  const schema = notificationDataSchemas[type] as z.ZodType;
  return Object.freeze({
    id: randomUUID(),
    type,
    timestamp: (options.now ?? new Date()).toISOString(),
    source: {
      library: '@koan/data-backup' as const,
      version: LIBRARY_VERSION,
      host: HOST,
      ...(options.app ? { app: options.app } : {}),
    },
    data: schema.parse(data),
  }) as NotificationEvent<T>;
}

/** The patterns a webhook's `events` filter accepts: `*`, a family (`restore.*`) or one event type. */
export const EVENT_PATTERNS: readonly string[] = Object.freeze([
  '*',
  ...new Set(NOTIFICATION_TYPES.map((t) => `${t.split('.')[0]}.*`)),
  ...NOTIFICATION_TYPES,
]);

/** Whether an event of `type` passes the filter `patterns` (`*`, `restore.*`, `backup.failed`). */
export function matchesEvent(patterns: readonly string[], type: NotificationType): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}

/** JSON Schema (2020-12) of the webhook body, as published in `schema/notification-event.v1.schema.json`. */
export function notificationEventJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Koan backup notification event (webhook body, format json)',
    ...(z.toJSONSchema(notificationEventSchema, { io: 'output' }) as Record<string, unknown>),
  };
}

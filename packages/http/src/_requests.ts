import { assertSetName } from '@koan/data';
import {
  assertBackupName,
  type BackupQuery,
  type BackupStatus,
  backupStatuses,
  DEFAULT_MIN_AGE_HOURS,
  type HealthStatus,
} from '@koan/data-backup';
import type { Context } from 'hono';
import { z } from 'zod';
import { httpError, invalidField } from './_errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEALTH: readonly HealthStatus[] = ['Healthy', 'Warning', 'Critical', 'Unknown'];

/** A string the library's own assertion accepts, with its message on failure. */
const checked = (assert: (value: string) => void) =>
  z.string().superRefine((value, ctx) => {
    try {
      assert(value);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });
const backupName = checked(assertBackupName);
const names = z.array(z.string().min(1).max(256)).max(1000);
const setName = checked(assertSetName);
const profile = z.string().min(1).max(256);
const batchSize = z.number().int().min(1).max(100_000);

export const backupBody = z
  .object({
    name: backupName,
    description: z.string().max(10_000).optional(),
    tags: z.array(z.string().min(1).max(128)).max(100).optional(),
    storageProfile: profile.optional(),
    batchSize: batchSize.optional(),
    compressData: z.boolean().optional(),
    compressionLevel: z.number().int().min(1).max(9).optional(),
    includeSchemaSnapshot: z.boolean().optional(),
    includeProviders: names.optional(),
    excludeProviders: names.optional(),
    includeEntityTypes: names.optional(),
    excludeEntityTypes: names.optional(),
    maxConcurrency: z.number().int().min(1).max(64).optional(),
    continueOnError: z.boolean().optional(),
  })
  .strict();

export const restoreBody = z
  .object({
    storageProfile: profile.optional(),
    dryRun: z.boolean().optional(),
    replaceExisting: z.boolean().optional(),
    mode: z.enum(['upsert', 'insert']).optional(),
    targetSet: setName.optional(),
    setMap: z.record(z.string().min(1), setName).optional(),
    includeEntityTypes: names.optional(),
    excludeEntityTypes: names.optional(),
    validateBeforeRestore: z.boolean().optional(),
    optimizeForBulkInsert: z.boolean().optional(),
    batchSize: batchSize.optional(),
    schemaPolicy: z.enum(['strict', 'lenient']).optional(),
    maxConcurrency: z.number().int().min(1).max(64).optional(),
  })
  .strict();

export const validateBody = z.object({ storageProfile: profile.optional() }).strict();

export const copyBody = z.object({ to: profile, fromProfile: profile.optional() }).strict();

export const cleanupBody = z
  .object({
    dryRun: z.boolean().default(true),
    olderThanMs: z.number().int().min(0).optional(),
    storageProfiles: z.array(profile).optional(),
  })
  .strict();

export const pruneBody = z
  .object({
    dryRun: z.boolean().default(true),
    policy: z
      .object({
        keepDaily: z.number().int().min(0).default(7),
        keepWeekly: z.number().int().min(0).default(4),
        keepMonthly: z.number().int().min(0).default(12),
        minAgeHours: z.number().min(0).default(DEFAULT_MIN_AGE_HOURS),
      })
      .strict()
      .optional(),
    storageProfiles: z.array(profile).optional(),
  })
  .strict();

function fieldOf(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') path.push(issue.keys[0] ?? '');
  return path.join('.') || '(body)';
}

/** Reads a JSON body: `Content-Type: application/json` is required (which also keeps cross-site forms out). */
export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type))
    throw httpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send a JSON body with Content-Type: application/json.');
  const text = await c.req.text();
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw httpError(400, 'INVALID_JSON', `The body is not valid JSON: ${(e as Error).message}`);
  }
}

/** Validates a body; a 400 names the first bad field and lists every issue. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ field: fieldOf(i), message: i.message }));
  const first = issues[0]!;
  const what = first.field === '(body)' ? 'Invalid body' : `Invalid body field ${first.field}`;
  throw invalidField(first.field, `${what}: ${first.message}`, { issues });
}

/** A backup id (UUID) or name; anything else is refused before it reaches storage keys. */
export function parseRef(ref: string): string {
  if (UUID.test(ref)) return ref.toLowerCase();
  try {
    assertBackupName(ref);
  } catch (e) {
    throw invalidField('ref', `Invalid backup reference: ${(e as Error).message} Or pass the backup's id.`);
  }
  return ref;
}

/** Query parameters a route accepts; any other one is a 400 naming it (a typo must not silently widen a filter). */
export function queryParams(c: Context, allowed: readonly string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [key, values] of Object.entries(c.req.queries())) {
    if (!allowed.includes(key))
      throw invalidField(key, `Unknown query parameter ${key}. Accepted: ${allowed.join(', ') || 'none'}.`);
    out.set(key, values);
  }
  return out;
}

export function single(params: Map<string, string[]>, name: string): string | undefined {
  const values = params.get(name);
  if (!values) return undefined;
  if (values.length > 1)
    throw invalidField(name, `Query parameter ${name} is given ${values.length} times; pass it once.`);
  return values[0];
}

function list(params: Map<string, string[]>, name: string): string[] | undefined {
  const values = params.get(name)?.flatMap((v) => v.split(',').map((s) => s.trim()));
  const clean = values?.filter(Boolean);
  return clean?.length ? clean : undefined;
}

function choice<T extends string>(value: string, name: string, choices: readonly T[]): T {
  const found = choices.find((ch) => ch.toLowerCase() === value.toLowerCase());
  if (!found)
    throw invalidField(name, `Invalid ${name} ${JSON.stringify(value)}: expected one of ${choices.join(', ')}.`);
  return found;
}

function integer(params: Map<string, string[]>, name: string, min: number): number | undefined {
  const raw = single(params, name);
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw invalidField(name, `Invalid ${name} ${JSON.stringify(raw)}: expected an integer of at least ${min}.`);
  return n;
}

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/** Why an ISO-8601 date names no real day or time (`Date.parse` rolls 2024-02-30 over to March 1st), or undefined. */
function impossibleDate(raw: string): string | undefined {
  const m = ISO_DATE.exec(raw);
  if (!m) return 'not an ISO-8601 date';
  const [year, month, day, hour = 0, minute = 0, second = 0] = m
    .slice(1, 7)
    .map((x) => (x === undefined ? 0 : Number(x)));
  if (month! < 1 || month! > 12) return `there is no month ${m[2]}`;
  const days = new Date(Date.UTC(year!, month!, 0)).getUTCDate();
  if (day! < 1 || day! > days) return `${m[1]}-${m[2]} has ${days} days`;
  if (hour! > 23 || minute! > 59 || second! > 59)
    return `${m[4]}:${m[5]}${m[6] === undefined ? '' : `:${m[6]}`} is not a time of day`;
  return Number.isNaN(Date.parse(raw)) ? 'not an ISO-8601 date' : undefined;
}

const DAY_MS = 86_400_000;

/**
 * An ISO-8601 date or date-time as the instant the library uses (an impossible date is refused, never rolled over).
 * Both bounds are inclusive: a date-only `dateTo` is the end of that day (23:59:59.999 UTC), as in the library and
 * the CLI, and the echoed `query` shows it so.
 */
function date(params: Map<string, string[]>, name: 'dateFrom' | 'dateTo'): string | undefined {
  const raw = single(params, name);
  if (raw === undefined) return undefined;
  const text = raw.trim();
  const problem = impossibleDate(text);
  if (problem)
    throw invalidField(
      name,
      `Invalid ${name} ${JSON.stringify(raw)} (${problem}): expected an ISO-8601 date or date-time such as 2024-12-17 or 2024-12-17T08:00:00Z.`,
    );
  const time = Date.parse(text);
  const dateOnly = ISO_DATE.exec(text)?.[4] === undefined;
  return new Date(name === 'dateTo' && dateOnly ? time + DAY_MS - 1 : time).toISOString();
}

export const BACKUP_QUERY_PARAMS = [
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

/**
 * Every `BackupQuery` field from the query string; lists repeat the parameter or use commas. This parses the strings;
 * `queryBackups` then checks the query with the library's own validator, so the rules cannot drift apart.
 */
export function parseBackupQuery(c: Context): BackupQuery {
  const params = queryParams(c, BACKUP_QUERY_PARAMS);
  const statuses = list(params, 'statuses')?.map((s) => choice<BackupStatus>(s, 'statuses', backupStatuses));
  const healthStatuses = list(params, 'healthStatuses')?.map((s) => choice(s, 'healthStatuses', HEALTH));
  const sortBy = single(params, 'sortBy');
  const sortDirection = single(params, 'sortDirection');
  const searchTerm = single(params, 'searchTerm')?.trim();
  const query: Record<string, unknown> = {
    tags: list(params, 'tags'),
    entityTypes: list(params, 'entityTypes'),
    dateFrom: date(params, 'dateFrom'),
    dateTo: date(params, 'dateTo'),
    storageProfiles: list(params, 'storageProfiles'),
    statuses,
    healthStatuses,
    searchTerm: searchTerm || undefined,
    minSizeBytes: integer(params, 'minSizeBytes', 0),
    maxSizeBytes: integer(params, 'maxSizeBytes', 0),
    sortBy: sortBy === undefined ? undefined : choice(sortBy, 'sortBy', ['name', 'createdAt', 'size'] as const),
    sortDirection:
      sortDirection === undefined ? undefined : choice(sortDirection, 'sortDirection', ['asc', 'desc'] as const),
    skip: integer(params, 'skip', 0),
    // 0 is a count-only query (totalCount, no backups), as in the library and the CLI.
    take: integer(params, 'take', 0),
  };
  // Rules across fields (minSizeBytes <= maxSizeBytes, dateFrom <= dateTo) are the library's: queryBackups checks the
  // whole query before listing anything, and GET /backups answers its INVALID_OPTION as a 400 naming the field.
  for (const key of Object.keys(query)) if (query[key] === undefined) delete query[key];
  return query as BackupQuery;
}

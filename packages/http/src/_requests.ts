import { assertSetName, MAX_BATCH_BYTES, parseByteSize } from '@koan/data/adapter-kit';
import type { BackupQuery } from '@koan/data-backup';
import { assertBackupName, BACKUP_QUERY_FIELDS, isBackupId, parseIsoInstant } from '@koan/data-backup/catalog';
import { retentionPolicySchema } from '@koan/data-backup/maintenance';
import { BATCH_SIZE, COMPRESSION_LEVEL, MAX_CONCURRENCY } from '@koan/data-backup/schemas';
import type { Context } from 'hono';
import { z } from 'zod';
import { httpError, invalidField } from './_errors.js';

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
const batchSize = z.number().int().min(BATCH_SIZE.min).max(BATCH_SIZE.max);
const maxConcurrency = z.number().int().min(MAX_CONCURRENCY.min).max(MAX_CONCURRENCY.max);
/** A number of bytes or a size such as "8MiB" (the library's units), 1 byte to 1 GiB. */
const batchBytes = z.union([z.number(), z.string().max(32)]).superRefine((value, ctx) => {
  const bytes = parseByteSize(value);
  if (bytes === undefined || !Number.isInteger(bytes) || bytes < 1 || bytes > MAX_BATCH_BYTES)
    ctx.addIssue({
      code: 'custom',
      message: 'expected a size from 1 byte to 1 GiB: a number of bytes or a text such as "8MiB", "512KiB", "64KB"',
    });
});

export const backupBody = z
  .object({
    name: backupName,
    description: z.string().max(10_000).optional(),
    tags: z.array(z.string().min(1).max(128)).max(100).optional(),
    storageProfile: profile.optional(),
    batchSize: batchSize.optional(),
    batchBytes: batchBytes.optional(),
    compressData: z.boolean().optional(),
    // 1-9: storing uncompressed (the library's level 0) is spelled compressData: false.
    compressionLevel: z.number().int().min(1).max(COMPRESSION_LEVEL.max).optional(),
    includeSchemaSnapshot: z.boolean().optional(),
    includeProviders: names.optional(),
    excludeProviders: names.optional(),
    includeEntityTypes: names.optional(),
    excludeEntityTypes: names.optional(),
    maxConcurrency: maxConcurrency.optional(),
    continueOnError: z.boolean().optional(),
    introspect: z.boolean().optional(),
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
    batchBytes: batchBytes.optional(),
    schemaPolicy: z.enum(['strict', 'lenient']).optional(),
    maxConcurrency: maxConcurrency.optional(),
    /** By name: restore the newest backup of the reachable profiles when some cannot be listed. */
    allowUnreachableProfiles: z.boolean().optional(),
    /** Into the same kind of store, create missing tables from the archived native structure (default true). */
    structure: z.boolean().optional(),
  })
  .strict();

export const validateBody = z
  .object({ storageProfile: profile.optional(), allowUnreachableProfiles: z.boolean().optional() })
  .strict();

export const copyBody = z.object({ to: profile, fromProfile: profile.optional() }).strict();

export const cleanupBody = z
  .object({
    dryRun: z.boolean().default(true),
    olderThanMs: z.number().int().min(0).optional(),
    storageProfiles: z.array(profile).optional(),
    /** Write the sidecar of complete archives that lost it (default: report them). */
    adopt: z.boolean().optional(),
  })
  .strict();

export const pruneBody = z
  .object({
    dryRun: z.boolean().default(true),
    // The library's own policy schema: the same rules, names and defaults as Koan.Backup.RetentionPolicy.
    policy: retentionPolicySchema.optional(),
    scope: z
      .object({ names: z.array(z.string().min(1)).optional(), tags: z.array(z.string().min(1)).optional() })
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
  if (isBackupId(ref)) return ref.toLowerCase();
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

/** A boolean query parameter: `true`/`false` (any case), `1`/`0`; absent is false. */
export function flag(params: Map<string, string[]>, name: string): boolean {
  const raw = single(params, name);
  if (raw === undefined) return false;
  const text = raw.trim().toLowerCase();
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw invalidField(name, `Invalid ${name} ${JSON.stringify(raw)}: expected true or false.`);
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

function integer(params: Map<string, string[]>, name: string, min: number): number | undefined {
  const raw = single(params, name);
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw invalidField(name, `Invalid ${name} ${JSON.stringify(raw)}: expected an integer of at least ${min}.`);
  return n;
}

/**
 * An ISO-8601 date or date-time as the instant the library uses (`parseIsoInstant`: an impossible date is refused, never
 * rolled over). Both bounds are inclusive: a date-only `dateTo` is the end of that day (23:59:59.999 UTC), and the
 * echoed `query` shows it so.
 */
function date(params: Map<string, string[]>, name: 'dateFrom' | 'dateTo'): string | undefined {
  const raw = single(params, name);
  if (raw === undefined) return undefined;
  const parsed = parseIsoInstant(raw, { endOfDay: name === 'dateTo' });
  if ('problem' in parsed)
    throw invalidField(
      name,
      `Invalid ${name} ${JSON.stringify(raw)} (${parsed.problem}): expected an ISO-8601 date or date-time such as 2024-12-17 or 2024-12-17T08:00:00Z.`,
    );
  return new Date(parsed.time).toISOString();
}

/**
 * Every `BackupQuery` field from the query string; lists repeat the parameter or use commas. This parses the strings;
 * `queryBackups` then checks the query with the library's own validator, so the rules cannot drift apart.
 */
export function parseBackupQuery(c: Context): BackupQuery {
  const params = queryParams(c, BACKUP_QUERY_FIELDS);
  const sortBy = single(params, 'sortBy');
  const sortDirection = single(params, 'sortDirection');
  const searchTerm = single(params, 'searchTerm')?.trim();
  const query: Record<string, unknown> = {
    tags: list(params, 'tags'),
    entityTypes: list(params, 'entityTypes'),
    dateFrom: date(params, 'dateFrom'),
    dateTo: date(params, 'dateTo'),
    storageProfiles: list(params, 'storageProfiles'),
    // Checked by the library, in any case (completed is Completed), as sortBy and sortDirection are.
    statuses: list(params, 'statuses'),
    healthStatuses: list(params, 'healthStatuses'),
    searchTerm: searchTerm || undefined,
    minSizeBytes: integer(params, 'minSizeBytes', 0),
    maxSizeBytes: integer(params, 'maxSizeBytes', 0),
    // Checked by the library (which also takes the spec's spellings, e.g. CreatedAt and Descending).
    sortBy,
    sortDirection,
    skip: integer(params, 'skip', 0),
    // 0 is a count-only query (totalCount, no backups), as in the library and the CLI.
    take: integer(params, 'take', 0),
  };
  // Rules across fields (minSizeBytes <= maxSizeBytes, dateFrom <= dateTo) are the library's: queryBackups checks the
  // whole query before listing anything, and GET /backups answers its INVALID_OPTION as a 400 naming the field.
  for (const key of Object.keys(query)) if (query[key] === undefined) delete query[key];
  return query as BackupQuery;
}

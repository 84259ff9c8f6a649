/**
 * The archive manifest, format version 2 (format 1 archives are still read). `manifest.json` inside the archive and
 * the `.manifest.json` sidecar beside it hold the same manifest; the sidecar adds `archive` (key, size, SHA-256 of the
 * ZIP) and, once validated, `validation`. The JSON Schema is published at `schema/manifest.v2.schema.json`.
 *
 * Format 2 differs from 1 in the entity lines (json fields are strings holding their exact JSON text: the line
 * format `koan-jsonl/2`, see `@koan/data`'s line-format.ts), in key types (any ordered type, or `none` for a table without a primary key), and in
 * `omitted`: what the backup does not hold, and why.
 */
import { KEY_TYPES, LINE_FORMAT } from '@koan/data/adapter-kit';
import { z } from 'zod';
import { BackupError } from './errors.js';

/** The manifest format written today; its entity lines are in the line format of the same version (`koan-jsonl/2`). */
export const FORMAT_VERSION = LINE_FORMAT;
/** Every manifest format this version reads. */
export const READABLE_FORMATS = [1, 2] as const;

export const backupStatuses = ['InProgress', 'Completed', 'PartiallyCompleted', 'Failed', 'Cancelled'] as const;
export type BackupStatus = (typeof backupStatuses)[number];

export const healthStatuses = ['Healthy', 'Warning', 'Critical', 'Unknown'] as const;
export type HealthStatus = (typeof healthStatuses)[number];

const isoDate = z.string().datetime({ offset: true });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const entityManifestSchema = z.object({
  entityType: z.string().min(1).describe('Entity name'),
  set: z.string().min(1).describe('Set (partition); "root" is the default set'),
  source: z.string().min(1),
  provider: z.string().min(1),
  keyType: z
    .enum(KEY_TYPES as [string, ...string[]])
    .describe('Type of the key field; "none" for a table without a primary key (every row kept, restored by insert)'),
  itemCount: z.number().int().nonnegative(),
  sizeBytes: z.number().int().nonnegative().describe('Uncompressed bytes of the JSONL entry'),
  compressedSizeBytes: z.number().int().nonnegative(),
  contentHash: sha256.describe('SHA-256 (hex) of the exact JSONL bytes'),
  storedHash: sha256
    .optional()
    .describe(
      'SHA-256 (hex) of the entry data as stored in the archive (the deflated bytes); a restore checks it as it reads (archives before it: contentHash)',
    ),
  storageFile: z.string().min(1).describe('Entry path inside the archive'),
  consistency: z.enum(['snapshot', 'fuzzy']),
  status: z.enum(['Completed', 'Failed']),
  errorMessage: z.string().optional(),
  durationMs: z.number().nonnegative(),
});
export type EntityManifest = z.infer<typeof entityManifestSchema>;

export const validationResultSchema = z.object({
  isValid: z.boolean(),
  healthStatus: z.enum(healthStatuses),
  issues: z.array(z.string()),
  warnings: z.array(z.string()),
  validatedAt: isoDate,
  durationMs: z.number().nonnegative(),
  checkedEntries: z.number().int().nonnegative(),
  checkedLines: z.number().int().nonnegative(),
});
export type ValidationResult = z.infer<typeof validationResultSchema>;

/** Something of a source that the backup does not hold, named with why (never left out without a word). */
export const omittedSchema = z.object({
  source: z.string().min(1),
  /** The table, view, function... (`namespace.name` outside the source's default namespace). */
  name: z.string().min(1),
  /** `table`, `entity`, `view`, `materialized view`, `partition`, `function`, `trigger`... */
  kind: z.string().min(1),
  reason: z.string().min(1),
});
export type OmittedObject = z.infer<typeof omittedSchema>;

export const manifestSchema = z.object({
  formatVersion: z.union([z.literal(1), z.literal(2)]),
  id: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    .describe('UUIDv7: sorts by creation time'),
  name: z.string().min(1),
  description: z.string().optional(),
  tags: z.array(z.string()),
  createdAt: isoDate,
  completedAt: isoDate.optional(),
  status: z.enum(backupStatuses),
  errorMessage: z.string().optional(),
  storageProfile: z.string().min(1),
  entities: z.array(entityManifestSchema),
  omitted: z
    .array(omittedSchema)
    .optional()
    .describe(
      'What the sources hold that this backup does not: tables excluded by the user (with why), views and other objects that are not data, structure that is not recreated (functions, triggers)',
    ),
  sources: z.array(z.object({ name: z.string(), provider: z.string(), consistency: z.enum(['snapshot', 'fuzzy']) })),
  verification: z.object({
    totalItemCount: z.number().int().nonnegative(),
    totalSizeBytes: z.number().int().nonnegative().describe('Uncompressed bytes of all entity entries'),
    checksumAlgorithm: z.literal('sha256'),
    overallChecksum: sha256.describe('SHA-256 of verification/checksums.json'),
  }),
  options: z.object({
    compressData: z.boolean(),
    compressionLevel: z.number().int().min(0).max(9),
    batchSize: z.number().int().positive(),
    includeSchemaSnapshot: z.boolean(),
  }),
  timings: z.object({ totalMs: z.number().nonnegative() }),
  producer: z.object({ library: z.string(), version: z.string(), node: z.string() }),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

/** The catalog record of a backup: the manifest plus where its archive is. Stored as `<base>.manifest.json`. */
export const sidecarSchema = manifestSchema.extend({
  archive: z
    .object({
      key: z.string(),
      sizeBytes: z.number().int().nonnegative(),
      sha256,
    })
    .optional()
    .describe('Absent for failed backups: nothing restorable was published'),
  validation: validationResultSchema.optional(),
});
export type BackupSidecar = z.infer<typeof sidecarSchema>;

export const checksumsSchema = z.object({
  algorithm: z.literal('sha256'),
  files: z.record(z.string(), sha256),
});
export type ChecksumsFile = z.infer<typeof checksumsSchema>;

/** Archive entry of an entity set: `entities/<Entity>.jsonl`, or `entities/<Entity>@<set>.jsonl` for other sets. */
export function entityEntryName(entity: string, set: string): string {
  return set === 'root' ? `entities/${entity}.jsonl` : `entities/${entity}@${set}.jsonl`;
}

export const MANIFEST_ENTRY = 'manifest.json';
export const CHECKSUMS_ENTRY = 'verification/checksums.json';
export const SCHEMAS_ENTRY = 'verification/schema-snapshots.json';
export const SIDECAR_SUFFIX = '.manifest.json';

/** UUIDv7 (RFC 9562): 48-bit ms timestamp, random rest. */
export function uuidv7(now = Date.now()): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  const ts = BigInt(now);
  for (let i = 0; i < 6; i++) bytes[i] = Number((ts >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Storage keys of a backup: `<name>/<name>-YYYYMMDD-HHmmss-<id8>.zip` and the sidecar beside it. */
export function backupKeys(
  name: string,
  id: string,
  createdAt: Date,
): { archive: string; sidecar: string; base: string } {
  const stamp = createdAt.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const base = `${name}/${name}-${stamp}-${id.slice(-8)}`;
  return { base, archive: `${base}.zip`, sidecar: `${base}${SIDECAR_SUFFIX}` };
}

const BACKUP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks a backup name (it becomes a storage key prefix): 1-128 characters from `A-Z a-z 0-9 . _ -`, starting with a
 * letter or digit, never containing `..`. Throws a {@link BackupError} with code `INVALID_NAME` otherwise.
 */
export function assertBackupName(name: string): void {
  if (typeof name !== 'string' || !BACKUP_NAME.test(name) || name.includes('..'))
    throw new BackupError(
      'INVALID_NAME',
      `Invalid backup name ${JSON.stringify(name)}: use 1-128 characters from A-Z a-z 0-9 . _ - starting with a letter or digit, without ".." (e.g. "daily-users-2024-12-17").`,
      { details: { name } },
    );
}

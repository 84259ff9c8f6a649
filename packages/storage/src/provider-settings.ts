/**
 * The settings schemas of the storage providers, strict (an unknown key fails, naming the known ones). The S3 and
 * Azure Blob ones live here, beside `local` and `memory`, so that the JSON Schema of koan.config.json can describe
 * every provider's `Settings`; @koan/storage-s3 and @koan/storage-azure use and re-export them.
 */
import { z } from 'zod';
import { boolSetting, intSetting, retrySettingsShape } from './settings.js';

const MiB = 1024 * 1024;

const trim = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** Settings of a `local` profile (see `LocalStorageOptions`). */
export const localSettingsSchema = z
  .object({
    root: z.string().min(1).default('./backups').describe('Directory of the backups, relative to the app directory'),
    pruneEmptyDirs: boolSetting().optional(),
    fsync: boolSetting().optional(),
  })
  .strict();

/** Settings of a `memory` profile: none. */
export const memorySettingsSchema = z.object({}).strict();

/** Settings of an `s3` profile (camelCase keys). */
export const s3SettingsSchema = z
  .object({
    bucket: z.string().min(1).optional(),
    bucketName: z.string().min(1).optional(),
    region: z.preprocess(trim, z.string().optional()),
    endpoint: z.preprocess(trim, z.url().optional()),
    forcePathStyle: boolSetting().optional(),
    accessKeyId: z.preprocess(trim, z.string().optional()),
    secretAccessKey: z.preprocess(trim, z.string().optional()),
    sessionToken: z.preprocess(trim, z.string().optional()),
    prefix: z.string().optional(),
    partSizeBytes: intSetting()
      .refine((n) => n >= 5 * MiB, 'S3 parts must be at least 5 MiB (5242880)')
      .optional(),
    queueSize: intSetting()
      .refine((n) => n >= 1, 'must be at least 1')
      .optional(),
    conditionalPut: boolSetting().optional(),
    multipartManagement: boolSetting().optional(),
    ...retrySettingsShape,
  })
  .strict()
  .refine((s) => s.bucket ?? s.bucketName, { message: 'is required (the bucket name)', path: ['bucket'] })
  .refine((s) => Boolean(s.accessKeyId) === Boolean(s.secretAccessKey), {
    message: 'accessKeyId and secretAccessKey go together: set both, or neither to use the AWS credential chain',
    path: ['secretAccessKey'],
  });

/** Settings of an `azure-blob` profile (camelCase keys). */
export const azureBlobSettingsSchema = z
  .object({
    connectionString: z.preprocess(trim, z.string().optional()),
    accountName: z.preprocess(trim, z.string().optional()),
    accountKey: z.preprocess(trim, z.string().optional()),
    url: z.preprocess(trim, z.url().optional()),
    containerName: z
      .string()
      .regex(/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/, 'must be 3-63 lowercase letters, digits and single hyphens'),
    prefix: z.string().optional(),
    blockSizeBytes: intSetting()
      .refine((n) => n >= 1 && n <= 4000 * MiB, 'must be between 1 byte and 4000 MiB')
      .optional(),
    concurrency: intSetting()
      .refine((n) => n >= 1, 'must be at least 1')
      .optional(),
    createContainer: boolSetting().optional(),
    ...retrySettingsShape,
  })
  .strict()
  .refine((s) => s.connectionString || s.url || (s.accountName && s.accountKey), {
    message: 'is required: set ConnectionString, or AccountName with AccountKey, or a Url with a SAS token',
    path: ['connectionString'],
  });

/** The settings schema of each provider this library knows, by provider name (for the JSON Schema of the config). */
export const providerSettingsSchemas: Readonly<Record<string, z.ZodType>> = Object.freeze({
  local: localSettingsSchema,
  memory: memorySettingsSchema,
  s3: s3SettingsSchema,
  'azure-blob': azureBlobSettingsSchema,
});

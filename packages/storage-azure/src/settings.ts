/** The settings of an `azure-blob` profile (`Koan.Storage.Profiles.<name>.Settings`), camelCase keys, strict. */
import { boolSetting, intSetting, retrySettingsShape, timeoutSettingsShape } from '@koan/storage';
import { z } from 'zod';

const MiB = 1024 * 1024;

const trim = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** Settings of an `azure-blob` profile (camelCase keys, strict: an unknown key fails, naming the known ones). */
export const settingsSchema = z
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
    ...timeoutSettingsShape,
  })
  .strict()
  .refine((s) => s.connectionString || s.url || (s.accountName && s.accountKey), {
    message: 'is required: set ConnectionString, or AccountName with AccountKey, or a Url with a SAS token',
    path: ['connectionString'],
  });

/** The former name of {@link settingsSchema}. */
export const azureBlobSettingsSchema = settingsSchema;

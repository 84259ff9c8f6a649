/** The settings of an `s3` profile (`Koan.Storage.Profiles.<name>.Settings`), camelCase keys, strict. */
import { boolSetting, intSetting, retrySettingsShape, timeoutSettingsShape } from '@koan/storage';
import { z } from 'zod';

const MiB = 1024 * 1024;

const trim = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** Settings of an `s3` profile (camelCase keys, strict: an unknown key fails, naming the known ones). */
export const settingsSchema = z
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
    ...timeoutSettingsShape,
  })
  .strict()
  .refine((s) => s.bucket ?? s.bucketName, { message: 'is required (the bucket name)', path: ['bucket'] })
  .refine((s) => Boolean(s.accessKeyId) === Boolean(s.secretAccessKey), {
    message: 'accessKeyId and secretAccessKey go together: set both, or neither to use the AWS credential chain',
    path: ['secretAccessKey'],
  });

/** The former name of {@link settingsSchema}. */
export const s3SettingsSchema = settingsSchema;

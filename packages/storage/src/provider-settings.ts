/**
 * The settings schemas of the built-in storage providers, strict (an unknown key fails, naming the known ones). Each
 * provider package exports its own (`settingsSchema` of @koan/storage-s3 and @koan/storage-azure); the JSON Schema of
 * koan.config.json is made from all of them (scripts/emit-schemas.mjs).
 */
import { z } from 'zod';
import { boolSetting } from './settings.js';

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

/** The settings schema of each built-in provider, by provider name (for the JSON Schema of the config). */
export const providerSettingsSchemas: Readonly<Record<string, z.ZodType>> = Object.freeze({
  local: localSettingsSchema,
  memory: memorySettingsSchema,
});

/**
 * @koan/storage: the streaming storage contract, storage profiles, and the local disk and memory
 * drivers. S3 and Azure Blob drivers live in @koan/storage-s3 and @koan/storage-azure.
 */
export {
  assertKey,
  type Body,
  type GetOptions,
  type IncompleteUpload,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageDriver,
  StorageError,
  type StorageFlags,
  type StorageProvider,
} from './driver.js';
export { createLocalStorage, type LocalStorageOptions, localProvider, TEMP_DIR } from './local.js';
export { createMemoryStorage, type MemoryStorageOptions, memoryProvider } from './memory.js';
export {
  EMBEDDED_DEFAULT_PROFILE,
  type StorageConfig,
  type StorageProfileConfig,
  StorageProfiles,
  type StorageProfilesOptions,
  storageConfigSchema,
  storageProfileSchema,
} from './profiles.js';
export {
  azureBlobSettingsSchema,
  localSettingsSchema,
  memorySettingsSchema,
  providerSettingsSchemas,
  s3SettingsSchema,
} from './provider-settings.js';
export { backoffDelay, isTransientError, type RetryOptions, withRetry } from './retry.js';
export {
  boolSetting,
  intSetting,
  parseSettings,
  resolveEnvReferences,
  retrySettingsShape,
  settingPath,
} from './settings.js';
export {
  abortedError,
  type BodyPart,
  compareKeys,
  expectBytes,
  parseContentRange,
  type ResumableBodyOptions,
  resolveRange,
  resumableBody,
  toReadable,
} from './streams.js';

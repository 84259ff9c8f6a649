/**
 * @koan/storage: the streaming storage contract, storage profiles, the local disk and memory drivers, and the
 * driver kit (layers that wrap any driver: `validated`, `mapErrors`, `prefixed`, `withRetry`). S3 and Azure Blob
 * drivers live in @koan/storage-s3 and @koan/storage-azure.
 */
export {
  assertKey,
  type Body,
  type GetOptions,
  type IncompleteUpload,
  type ListIncompleteOptions,
  type ListOptions,
  type ListPage,
  type ListPageOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageDriver,
  StorageError,
  type StorageFlags,
  type StorageProvider,
} from './driver.js';
export { type DriverLayer, decorate, mapIteration, pagedList } from './kit/decorate.js';
export { type ErrorContext, type ErrorMap, mapErrors } from './kit/map-errors.js';
export { normalizePrefix, prefixed } from './kit/prefixed.js';
export {
  DEFAULT_CONNECTION_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  RequestTimeoutError,
  requestTimeoutKind,
  type TimeoutKind,
  type Timeouts,
  timeoutError,
  timeoutSettingsShape,
  timeoutsOf,
} from './kit/timeouts.js';
export { assertRange, validated } from './kit/validated.js';
export { type RetryPolicy, withRetry } from './kit/with-retry.js';
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
export { localSettingsSchema, memorySettingsSchema, providerSettingsSchemas } from './provider-settings.js';
export { backoffDelay, isTransientError, type RetryOptions, retry } from './retry.js';
export {
  boolSetting,
  intSetting,
  parseSettings,
  resolveEnvReferences,
  retrySettingsShape,
  settingPath,
} from './settings.js';
export {
  abortError,
  type BodyPart,
  compareKeys,
  expectBytes,
  parseContentRange,
  type ResumableBodyOptions,
  resolveRange,
  resumableBody,
  toReadable,
} from './streams.js';

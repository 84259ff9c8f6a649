/**
 * @koan/storage-s3: the S3 storage driver. `put` is a streaming multipart upload (lib-storage
 * `Upload`) whose completion is the atomic publish; `get` streams and resumes a cut body with a
 * ranged re-request pinned to the object's ETag.
 */
export { createS3Storage, provider, type S3Storage, type S3StorageOptions } from './driver.js';
export { DRIVER_NAME, isTransientS3Error, mapS3Error } from './errors.js';
export { s3SettingsSchema, settingsSchema } from './settings.js';

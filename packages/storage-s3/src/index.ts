/** @koan/storage-s3: the S3 storage driver (src/driver.ts). */
export * from './driver.js';

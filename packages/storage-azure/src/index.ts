/** @koan/storage-azure: the Azure Blob storage driver (src/driver.ts). */
export * from './driver.js';

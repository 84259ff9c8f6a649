/**
 * @koan/storage-azure: the Azure Blob storage driver. `put` stages blocks from the stream with
 * bounded memory and commits the block list last: uncommitted blocks are invisible, so the
 * commit is the atomic publish.
 */
export { type AzureBlobStorage, type AzureBlobStorageOptions, createAzureBlobStorage, provider } from './driver.js';
export { DRIVER_NAME, isTransientAzureError, mapAzureError } from './errors.js';
export { azureBlobSettingsSchema, settingsSchema } from './settings.js';

/**
 * `@koan/data-backup/schemas`: the schemas of what this package reads and writes: `Koan.Backup` (zod), the JSON
 * Schemas of `koan.config.json` and of manifests and sidecars (the files in `schema/` are generated from these), and
 * the bounds of the numeric options that the engines, the config schema, the CLI and the HTTP API all check.
 */
export { type BackupConfigInput, backupConfigSchema } from '../context.js';
export { configJsonSchema, manifestJsonSchemas } from '../json-schemas.js';
export { BATCH_SIZE, COMPRESSION_LEVEL, MAX_CONCURRENCY } from '../limits.js';

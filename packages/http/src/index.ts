/**
 * @koan/backup-http: an HTTP API and a small web dashboard over @koan/data-backup, built on Hono.
 *
 * - {@link createBackupApi} returns a Hono app to mount in an existing server (any runtime Hono runs on).
 * - {@link serve} runs it on Node's HTTP server, on 127.0.0.1 unless told otherwise.
 * - Backups, restores, validations and copies run as cancellable jobs with progress over server-sent events.
 */

export type { ErrorInfo } from './_errors.js';
export type { JobEvent, JobKind, JobSnapshot, JobStatus } from './_jobs.js';
export { type BackupApiOptions, createBackupApi, shutdownBackupApi } from './api.js';
export { type AuthCheck, type AuthGuardOptions, authGuard, bearerToken, MIN_TOKEN_LENGTH } from './auth.js';
export { type BackupServer, type ServeOptions, serve } from './serve.js';

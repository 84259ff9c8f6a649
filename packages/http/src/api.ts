import type { BackupContext } from '@koan/data-backup';
import { Hono } from 'hono';
import { JobQueue } from './_jobs.js';
import { backupRoutes } from './_routes/backups.js';
import { catalogRoutes } from './_routes/catalog.js';
import { dashboardRoutes } from './_routes/dashboard.js';
import { healthRoutes } from './_routes/health.js';
import { jobRoutes } from './_routes/jobs.js';
import { maintenanceRoutes } from './_routes/maintenance.js';
import { installMiddleware } from './_routes/middleware.js';
import { restoreRoutes } from './_routes/restores.js';
import { ApiScope } from './_routes/scope.js';
import type { AuthCheck } from './auth.js';

export interface BackupApiOptions {
  /** Prefix of every route, e.g. `/admin/backups`. Default: none. */
  readonly basePath?: string;
  /**
   * Checks each API request (e.g. {@link bearerToken}); a `false` is a 401. The dashboard page itself is public: it
   * holds no data and asks for the token; so are the liveness and readiness probes `GET /healthz` and `GET /readyz`
   * (no backup data; `GET /health` is checked). Default: no check, so keep the server on 127.0.0.1.
   */
  readonly auth?: AuthCheck;
  /** Backup, restore, validation and copy jobs running at once; the rest wait in order. Default 1. */
  readonly maxConcurrentJobs?: number;
  /** Finished jobs remembered by `GET /jobs`. Default 100. */
  readonly jobHistory?: number;
  /** Minimum milliseconds between progress events of a job. Default 250. */
  readonly progressIntervalMs?: number;
}

const queues = new WeakMap<object, JobQueue>();

/**
 * The backup HTTP API and dashboard over a {@link BackupContext}, as a Hono app. Long operations (backup, restore,
 * validate, copy) are jobs: the request returns `202 { job }` at once, and the job reports progress through
 * `GET /jobs/:id` and the `GET /jobs/:id/events` stream.
 *
 * @example
 * const context = await BackupContext.fromConfig();
 * const app = createBackupApi(context, { basePath: '/admin/backups', auth: bearerToken(process.env.TOKEN!) });
 * parentApp.route('/', app); // or: serve(context, { port: 8787 })
 */
export function createBackupApi(context: BackupContext, options: BackupApiOptions = {}): Hono {
  const { basePath = '', auth, maxConcurrentJobs = 1, jobHistory = 100, progressIntervalMs = 250 } = options;
  if (!Number.isInteger(maxConcurrentJobs) || maxConcurrentJobs < 1)
    throw new TypeError(`createBackupApi: maxConcurrentJobs must be a positive integer, not ${maxConcurrentJobs}.`);
  const base = basePath.replace(/\/+$/, '');
  if (base && !base.startsWith('/'))
    throw new TypeError(`createBackupApi: basePath must start with "/", not ${basePath}.`);
  const jobs = new JobQueue({
    concurrency: maxConcurrentJobs,
    historyLimit: jobHistory,
    maxActive: 100,
    eventBuffer: 200,
  });
  const api = new ApiScope(context, jobs, base, progressIntervalMs);
  // Every route also answers with one trailing slash (`/backups/`, `/admin/`), the dashboard included. Mounted in
  // another app with `app.route`, the parent's own `strict` option decides instead.
  const app = base ? new Hono({ strict: false }).basePath(base) : new Hono({ strict: false });
  queues.set(app, jobs);

  installMiddleware(app, api, auth);
  dashboardRoutes(app, api, auth !== undefined);
  healthRoutes(app, api);
  catalogRoutes(app, api);
  backupRoutes(app, api);
  restoreRoutes(app, api);
  maintenanceRoutes(app, api);
  jobRoutes(app, api);
  return app;
}

/**
 * Cancels the API's queued and running jobs and waits until they have stopped (a cancelled backup publishes
 * nothing). Call it before closing the context.
 *
 * @example
 * await shutdownBackupApi(app);
 * await context.close();
 */
export async function shutdownBackupApi(app: Hono): Promise<void> {
  await queues.get(app)?.shutdown();
}

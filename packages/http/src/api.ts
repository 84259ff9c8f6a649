import {
  applyRetention,
  type BackupContext,
  BackupDiscoveryService,
  type BackupResult,
  backupAllEntities,
  checkRestoreSelection,
  cleanupLeftovers,
  copyBackup,
  describeEntities,
  isRestorable,
  locateForRestore,
  planBackup,
  type RestoreReport,
  restoreAllEntities,
  shortfallOf,
} from '@koan/data-backup';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { streamSSE } from 'hono/streaming';
import { dashboardHtml } from './_dashboard.js';
import { type ErrorInfo, httpError, invalidField, optionAsField, respondWithError } from './_errors.js';
import { type JobEvent, JobQueue, type JobSnapshot } from './_jobs.js';
import {
  backupBody,
  cleanupBody,
  copyBody,
  flag,
  parseBackupQuery,
  parseBody,
  parseRef,
  pruneBody,
  queryParams,
  readJson,
  restoreBody,
  single,
  validateBody,
} from './_requests.js';
import { type AuthCheck, authGuard } from './auth.js';

export interface BackupApiOptions {
  /** Prefix of every route, e.g. `/admin/backups`. Default: none. */
  readonly basePath?: string;
  /**
   * Checks each API request (e.g. {@link bearerToken}); a `false` is a 401. The dashboard page itself is public: it
   * holds no data and asks for the token. Default: no check, so keep the server on 127.0.0.1.
   */
  readonly auth?: AuthCheck;
  /** Backup, restore, validation and copy jobs running at once; the rest wait in order. Default 1. */
  readonly maxConcurrentJobs?: number;
  /** Finished jobs remembered by `GET /jobs`. Default 100. */
  readonly jobHistory?: number;
  /** Minimum milliseconds between progress events of a job. Default 250. */
  readonly progressIntervalMs?: number;
}

const DASHBOARD_PATHS = new Set(['', '/', '/dashboard']);
const SSE_BUFFER = 1000;
const MAX_BODY_BYTES = 1024 * 1024;
const HEARTBEAT_MS = 15_000;
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
  const discovery = new BackupDiscoveryService(context);
  // Every route also answers with one trailing slash (`/backups/`, `/admin/`), the dashboard included. Mounted in
  // another app with `app.route`, the parent's own `strict` option decides instead.
  const app = base ? new Hono({ strict: false }).basePath(base) : new Hono({ strict: false });
  queues.set(app, jobs);

  app.onError(respondWithError);
  app.notFound((c) =>
    c.json({ error: { code: 'NOT_FOUND', message: `No route ${c.req.method} ${c.req.path}`, details: {} } }, 404),
  );
  app.use(async function securityHeaders(c, next) {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });
  // A request body the server never read (a 413, a 401, a 404, a bad query parameter...) is still on the socket: reply
  // `Connection: close` so the client opens a new connection for its next request instead of reusing one that the
  // server closes (keep-alive would fail with "other side closed" / "socket hang up").
  app.use(async function closeUnreadBody(c, next) {
    await next();
    if (c.req.raw.body && !c.req.raw.bodyUsed) c.header('Connection', 'close');
  });
  if (auth) app.use(authGuard({ check: auth, skip: (c) => c.req.method === 'GET' && DASHBOARD_PATHS.has(local(c)) }));
  app.use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => {
        // The rest of the body stays unread (a chunked one is partly read, so closeUnreadBody cannot tell).
        c.header('Connection', 'close');
        throw httpError(413, 'PAYLOAD_TOO_LARGE', `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
      },
    }),
  );

  function local(c: Context): string {
    return c.req.path.slice(base.length);
  }

  function assertProfile(name: string | undefined, field: string): void {
    if (name === undefined) return;
    const known = context.storage.names();
    if (!known.includes(name))
      throw invalidField(field, `Storage profile ${name} is not configured. Configured: ${known.join(', ')}.`, {
        profile: name,
      });
  }

  function accepted(c: Context, job: JobSnapshot): Response {
    const self = `${base}/jobs/${job.id}`;
    c.header('Location', self);
    return c.json({ jobId: job.id, job, links: { self, events: `${self}/events` } }, 202);
  }

  function profileParam(
    c: Context,
    extra: readonly string[] = [],
  ): { storageProfile?: string; params: Map<string, string[]> } {
    const params = queryParams(c, ['storageProfile', ...extra]);
    const storageProfile = single(params, 'storageProfile');
    assertProfile(storageProfile, 'storageProfile');
    return { ...(storageProfile ? { storageProfile } : {}), params };
  }

  // ---- dashboard ---------------------------------------------------------------------------------
  const page = (c: Context) => {
    const nonce = crypto.randomUUID().replaceAll('-', '');
    c.header(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    return c.html(dashboardHtml({ basePath: base, nonce, authRequired: auth !== undefined }));
  };
  app.get('/', page);
  app.get('/dashboard', page);

  // ---- catalog -----------------------------------------------------------------------------------
  app.get('/entities', async (c) => {
    const params = queryParams(c, ['introspect']);
    return c.json(await describeEntities(context, { introspect: flag(params, 'introspect') }));
  });

  app.get('/backups', async (c) => {
    const query = parseBackupQuery(c);
    for (const p of query.storageProfiles ?? []) assertProfile(p, 'storageProfiles');
    const result = await discovery.queryBackups(query).catch((e: unknown) => {
      throw optionAsField(e);
    });
    // `take` is always there: null when the page is unlimited (JSON has no undefined).
    return c.json({ query, ...result, take: result.take ?? null });
  });

  app.get('/stats', async (c) => {
    queryParams(c, []);
    return c.json(await discovery.getCatalogStats());
  });

  app.get('/backups/:ref', async (c) => {
    const { storageProfile } = profileParam(c);
    return c.json(await discovery.getBackup(parseRef(c.req.param('ref')), storageProfile ? { storageProfile } : {}));
  });

  app.delete('/backups/:ref', async (c) => {
    const { storageProfile, params } = profileParam(c, ['confirm']);
    const info = await discovery.getBackup(parseRef(c.req.param('ref')), storageProfile ? { storageProfile } : {});
    const confirm = single(params, 'confirm');
    const details = { field: 'confirm', id: info.id, name: info.name, storageProfile: info.storageProfile };
    if (!confirm)
      throw httpError(
        400,
        'CONFIRMATION_REQUIRED',
        `Deleting backup ${info.name} needs ?confirm=<its id>; its id is ${info.id}.`,
        details,
      );
    if (confirm.toLowerCase() !== info.id)
      throw httpError(
        400,
        'CONFIRMATION_REQUIRED',
        `?confirm=${confirm} does not match backup ${info.name} (id ${info.id}); nothing was deleted.`,
        details,
      );
    const busy = jobs.activeFor(info.name);
    if (busy)
      throw httpError(
        409,
        'JOB_CONFLICT',
        `A ${busy.kind} job (${busy.id}) is ${busy.status} for backup ${info.name}.`,
        {
          jobId: busy.id,
        },
      );
    return c.json(await discovery.deleteBackup(info.id, { storageProfile: info.storageProfile }));
  });

  // ---- jobs that start work ----------------------------------------------------------------------
  app.post('/backups', async (c) => {
    queryParams(c, []);
    const body = parseBody(backupBody, await readJson(c));
    const { name, ...options } = body;
    assertProfile(options.storageProfile, 'storageProfile');
    // Planned now, so a selection that matches nothing, or a table that cannot be backed up, is this request's error.
    await planBackup(context, options).catch((e: unknown) => {
      throw optionAsField(e);
    });
    const job = jobs.enqueue(
      'backup',
      name,
      body,
      ({ signal, onProgress }) =>
        backupAllEntities(context, name, { ...options, signal, onProgress, progressIntervalMs }),
      shortfall,
    );
    return accepted(c, job);
  });

  app.post('/backups/:ref/restore', async (c) => {
    queryParams(c, []);
    const ref = parseRef(c.req.param('ref'));
    const body = parseBody(restoreBody, await readJson(c));
    assertProfile(body.storageProfile, 'storageProfile');
    // The same choice the library makes (by name: the newest completed one), kept for the job.
    const located = await locateForRestore(context, ref, body);
    const sidecar = located.sidecar;
    if (!isRestorable(sidecar))
      throw httpError(
        409,
        'BACKUP_NOT_RESTORABLE',
        `Backup ${sidecar.name} (${sidecar.id}) has status ${sidecar.status}.`,
        {
          id: sidecar.id,
          status: sidecar.status,
        },
      );
    // An unknown name in either list is refused: a typo must neither restore nothing nor restore what was excluded.
    try {
      checkRestoreSelection(sidecar, body);
    } catch (e) {
      throw optionAsField(e);
    }
    const job = jobs.enqueue(
      'restore',
      sidecar.name,
      { ...body, backupId: sidecar.id },
      ({ signal, onProgress }) =>
        restoreAllEntities(context, located, {
          ...body,
          signal,
          onProgress,
          progressIntervalMs,
        }),
      shortfall,
    );
    return accepted(c, job);
  });

  app.post('/backups/:ref/validate', async (c) => {
    queryParams(c, []);
    const ref = parseRef(c.req.param('ref'));
    const body = parseBody(validateBody, await readJson(c));
    assertProfile(body.storageProfile, 'storageProfile');
    const info = await discovery.getBackup(ref, body);
    const job = jobs.enqueue('validate', info.name, { ...body, backupId: info.id }, ({ signal, onProgress }) =>
      discovery.validateBackup(info.id, { storageProfile: info.storageProfile, signal, onProgress }),
    );
    return accepted(c, job);
  });

  app.post('/backups/:ref/copy', async (c) => {
    queryParams(c, []);
    const ref = parseRef(c.req.param('ref'));
    const body = parseBody(copyBody, await readJson(c));
    assertProfile(body.to, 'to');
    assertProfile(body.fromProfile, 'fromProfile');
    const info = await discovery.getBackup(ref, body.fromProfile ? { storageProfile: body.fromProfile } : {});
    if (info.storageProfile === body.to)
      throw invalidField(
        'to',
        `Backup ${info.name} is already in storage profile ${body.to}; pick another destination.`,
      );
    if (!info.restorable)
      throw httpError(409, 'BACKUP_NOT_RESTORABLE', `Backup ${info.name} (${info.id}) has status ${info.status}.`, {
        id: info.id,
        status: info.status,
      });
    const job = jobs.enqueue('copy', info.name, { ...body, backupId: info.id }, ({ signal }) =>
      copyBackup(context, info.id, body.to, { fromProfile: info.storageProfile, signal }),
    );
    return accepted(c, job);
  });

  // ---- maintenance -------------------------------------------------------------------------------
  app.post('/maintenance/cleanup', async (c) => {
    queryParams(c, []);
    const body = parseBody(cleanupBody, await readJson(c));
    for (const p of body.storageProfiles ?? []) assertProfile(p, 'storageProfiles');
    // A leftover younger than olderThanMs is never touched, but olderThanMs can be 0: never race a running writer.
    if (!body.dryRun && jobs.hasActive(['backup', 'copy']))
      throw httpError(409, 'JOB_CONFLICT', 'A backup or copy job is running; clean up when it has finished.');
    return c.json(await cleanupLeftovers(context, body));
  });

  app.post('/maintenance/prune', async (c) => {
    queryParams(c, []);
    const body = parseBody(pruneBody, await readJson(c));
    for (const p of body.storageProfiles ?? []) assertProfile(p, 'storageProfiles');
    if (!body.policy && !context.config.retentionPolicy)
      throw invalidField(
        'policy',
        'No retention policy: send one in policy ({ keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly, keepWithin, protectedTags, minAgeHours }: any of the keep rules) or configure Koan.Backup.RetentionPolicy.',
      );
    if (!body.dryRun && jobs.hasActive())
      throw httpError(
        409,
        'JOB_CONFLICT',
        'Jobs are running (one may be reading a backup to prune); prune when they have finished.',
      );
    const decision = await applyRetention(context, body);
    return c.json({ dryRun: body.dryRun, ...decision });
  });

  // ---- jobs --------------------------------------------------------------------------------------
  app.get('/jobs', (c) => {
    queryParams(c, []);
    return c.json({ jobs: jobs.list() });
  });
  app.get('/jobs/:id', (c) => c.json(jobs.get(c.req.param('id'))));
  app.delete('/jobs/:id', (c) => c.json(jobs.cancel(c.req.param('id')), 202));

  app.get('/jobs/:id/events', (c) => {
    const id = c.req.param('id');
    jobs.get(id); // 404 before the stream starts
    const lastEventId = Number.parseInt(c.req.header('last-event-id') ?? '0', 10) || 0;
    return streamSSE(c, async function jobEvents(stream) {
      const pending: JobEvent[] = [];
      let wake: (() => void) | undefined;
      let stopped = false;
      const stop = () => {
        stopped = true;
        wake?.();
      };
      const request = c.req.raw.signal;
      request.addEventListener('abort', stop, { once: true });
      stream.onAbort(stop);
      const unsubscribe = jobs.subscribe(
        id,
        (event) => {
          // A client that stops reading must not grow memory: keep the newest events.
          if (pending.length >= SSE_BUFFER) pending.splice(0, pending.length - SSE_BUFFER + 1);
          pending.push(event);
          wake?.();
        },
        lastEventId,
      );
      const heartbeat = setInterval(() => void stream.write(': keep-alive\n\n'), HEARTBEAT_MS);
      heartbeat.unref();
      try {
        while (!stopped && !request.aborted) {
          const event = pending.shift();
          if (!event) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
            continue;
          }
          await stream.writeSSE({ id: String(event.id), event: event.type, data: JSON.stringify(event.data) });
          if (event.type === 'done') break;
        }
      } finally {
        unsubscribe();
        clearInterval(heartbeat);
        request.removeEventListener('abort', stop);
      }
    });
  });

  return app;
}

/** A backup or restore job whose result left entity sets failed ends `failed`, with what failed and why. */
function shortfall(result: unknown): ErrorInfo | undefined {
  const s = shortfallOf(result as BackupResult | RestoreReport);
  return s && { code: s.code, message: s.message, details: { status: s.status, failed: s.failed } };
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

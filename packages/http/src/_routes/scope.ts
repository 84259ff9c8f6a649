/**
 * What every route group of one backup API shares: the context, the job queue and the base path, and the few request
 * steps all groups take the same way (a storage profile named by the request must be configured; a started job is
 * answered `202` with its links).
 */
import {
  type BackupContext,
  BackupDiscoveryService,
  type BackupResult,
  type RestoreReport,
  shortfallOf,
} from '@koan/data-backup';
import type { Context } from 'hono';
import { type ErrorInfo, invalidField } from '../_errors.js';
import type { JobQueue, JobSnapshot } from '../_jobs.js';
import { queryParams, single } from '../_requests.js';

export class ApiScope {
  readonly discovery: BackupDiscoveryService;

  constructor(
    readonly context: BackupContext,
    readonly jobs: JobQueue,
    /** The routes' prefix, without a trailing slash (`''` when none). */
    readonly base: string,
    /** Minimum milliseconds between progress events of a job. */
    readonly progressIntervalMs: number,
  ) {
    this.discovery = new BackupDiscoveryService(context);
  }

  /** The request's path below the base path. */
  local(c: Context): string {
    return c.req.path.slice(this.base.length);
  }

  assertProfile(name: string | undefined, field: string): void {
    if (name === undefined) return;
    const known = this.context.storage.names();
    if (!known.includes(name))
      throw invalidField(field, `Storage profile ${name} is not configured. Configured: ${known.join(', ')}.`, {
        profile: name,
      });
  }

  accepted(c: Context, job: JobSnapshot): Response {
    const self = `${this.base}/jobs/${job.id}`;
    c.header('Location', self);
    return c.json({ jobId: job.id, job, links: { self, events: `${self}/events` } }, 202);
  }

  profileParam(c: Context, extra: readonly string[] = []): { storageProfile?: string; params: Map<string, string[]> } {
    const params = queryParams(c, ['storageProfile', ...extra]);
    const storageProfile = single(params, 'storageProfile');
    this.assertProfile(storageProfile, 'storageProfile');
    return { ...(storageProfile ? { storageProfile } : {}), params };
  }
}

/** A backup or restore job whose result left entity sets failed ends `failed`, with what failed and why. */
export function shortfall(result: unknown): ErrorInfo | undefined {
  const s = shortfallOf(result as BackupResult | RestoreReport);
  return s && { code: s.code, message: s.message, details: { status: s.status, failed: s.failed } };
}

/**
 * The maintenance routes, answered at once (they default to a dry run): removing leftovers of interrupted backups,
 * and applying a retention policy. Neither runs while the jobs it could disturb are running.
 */
import {
  applyRetention,
  cleanupLeftovers,
  effectiveRetentionPolicy,
  KEEP_COUNTS,
  type RetentionPolicy,
} from '@koan/data-backup/maintenance';
import type { Hono } from 'hono';
import { httpError, optionAsField } from '../_errors.js';
import { cleanupBody, parseBody, pruneBody, queryParams, readJson } from '../_requests.js';
import type { ApiScope } from './scope.js';

export function maintenanceRoutes(app: Hono, api: ApiScope): void {
  const { context, jobs } = api;

  app.post('/maintenance/cleanup', async (c) => {
    queryParams(c, []);
    const body = parseBody(cleanupBody, await readJson(c));
    for (const p of body.storageProfiles ?? []) api.assertProfile(p, 'storageProfiles');
    // A leftover younger than olderThanMs is never touched, but olderThanMs can be 0: never race a running writer.
    if (!body.dryRun && jobs.hasActive(['backup', 'copy']))
      throw httpError(409, 'JOB_CONFLICT', 'A backup or copy job is running; clean up when it has finished.');
    return c.json(await cleanupLeftovers(context, body));
  });

  app.post('/maintenance/prune', async (c) => {
    queryParams(c, []);
    const body = parseBody(pruneBody, await readJson(c));
    for (const p of body.storageProfiles ?? []) api.assertProfile(p, 'storageProfiles');
    // The library's rule: the rules sent (else the configured ones), protectedTags added to the configured ones; with
    // neither, its error names Koan.Backup.RetentionPolicy (a 400 with details.field 'policy').
    const { protectedTags, minAgeHours, ...rules } = body.policy ?? {};
    let policy: RetentionPolicy;
    try {
      policy = effectiveRetentionPolicy(context.config.retentionPolicy, {
        rules,
        rulesGivenAs: `policy.${KEEP_COUNTS.join(', policy.')} or policy.keepWithin in the request body`,
        ...(protectedTags ? { protectTags: protectedTags } : {}),
        ...(minAgeHours !== undefined ? { minAgeHours } : {}),
      });
    } catch (e) {
      throw optionAsField(e);
    }
    if (!body.dryRun && jobs.hasActive())
      throw httpError(
        409,
        'JOB_CONFLICT',
        'Jobs are running (one may be reading a backup to prune); prune when they have finished.',
      );
    // A name in scope.names that no backup has: 404 BACKUP_NOT_FOUND naming the field and the known names.
    const decision = await applyRetention(context, { ...body, policy }).catch((e: unknown) => {
      throw (e as { code?: unknown }).code === 'BACKUP_NOT_FOUND' ? optionAsField(e) : e;
    });
    return c.json({ dryRun: body.dryRun, policy, ...decision });
  });
}

/**
 * The routes that start work on backups as jobs: a new backup (`POST /backups`), a deep validation and a copy to
 * another profile. Each checks the request, and what the library can refuse before any work starts, then answers
 * `202` with the job.
 */
import { backupAllEntities } from '@koan/data-backup';
import { copyBackup, locateForCopy } from '@koan/data-backup/catalog';
import { planBackup } from '@koan/data-backup/plan';
import type { Hono } from 'hono';
import { optionAsField } from '../_errors.js';
import { backupBody, copyBody, parseBody, parseRef, queryParams, readJson, validateBody } from '../_requests.js';
import { type ApiScope, shortfall } from './scope.js';

export function backupRoutes(app: Hono, api: ApiScope): void {
  const { context, discovery, jobs, progressIntervalMs } = api;

  app.post('/backups', async (c) => {
    queryParams(c, []);
    const body = parseBody(backupBody, await readJson(c));
    const { name, ...options } = body;
    api.assertProfile(options.storageProfile, 'storageProfile');
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
    return api.accepted(c, job);
  });

  app.post('/backups/:ref/validate', async (c) => {
    queryParams(c, []);
    const ref = parseRef(c.req.param('ref'));
    const body = parseBody(validateBody, await readJson(c));
    api.assertProfile(body.storageProfile, 'storageProfile');
    const info = await discovery.getBackup(ref, body);
    const job = jobs.enqueue('validate', info.name, { ...body, backupId: info.id }, ({ signal, onProgress }) =>
      discovery.validateBackup(info.id, { storageProfile: info.storageProfile, signal, onProgress }),
    );
    return api.accepted(c, job);
  });

  app.post('/backups/:ref/copy', async (c) => {
    queryParams(c, []);
    const ref = parseRef(c.req.param('ref'));
    const body = parseBody(copyBody, await readJson(c));
    api.assertProfile(body.to, 'to');
    api.assertProfile(body.fromProfile, 'fromProfile');
    // The backup the library copies (by name: the newest restorable one), refused as it refuses it, kept for the job.
    const located = await locateForCopy(context, ref, body.to, body).catch((e: unknown) => {
      throw optionAsField(e, { toProfile: 'to' });
    });
    const { sidecar, profile } = located;
    const job = jobs.enqueue('copy', sidecar.name, { ...body, backupId: sidecar.id }, ({ signal }) =>
      copyBackup(context, sidecar.id, body.to, { fromProfile: profile, signal }),
    );
    return api.accepted(c, job);
  });
}

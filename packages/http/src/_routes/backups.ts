/**
 * The routes that start work on backups as jobs: a new backup (`POST /backups`), a deep validation and a copy to
 * another profile. Each checks the request, and what the library can refuse before any work starts, then answers
 * `202` with the job.
 */
import { backupAllEntities, copyBackup, planBackup } from '@koan/data-backup';
import type { Hono } from 'hono';
import { httpError, invalidField, optionAsField } from '../_errors.js';
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
    return api.accepted(c, job);
  });
}

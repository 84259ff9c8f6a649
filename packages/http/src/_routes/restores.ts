/**
 * The restore route (`POST /backups/:ref/restore`): the backup the library would pick, pinned for the job, and the
 * request's selection checked against it before the job starts.
 */
import { restoreAllEntities } from '@koan/data-backup';
import { assertRestorable } from '@koan/data-backup/catalog';
import { checkRestoreSelection, locateForRestore } from '@koan/data-backup/plan';
import type { Hono } from 'hono';
import { optionAsField } from '../_errors.js';
import { parseBody, parseRef, queryParams, readJson, restoreBody } from '../_requests.js';
import { type ApiScope, shortfall } from './scope.js';

export function restoreRoutes(app: Hono, api: ApiScope): void {
  const { context, jobs, progressIntervalMs } = api;

  app.post('/backups/:ref/restore', async (c) => {
    queryParams(c, []);
    const ref = parseRef(c.req.param('ref'));
    const body = parseBody(restoreBody, await readJson(c));
    api.assertProfile(body.storageProfile, 'storageProfile');
    // The same choice the library makes (by name: the newest completed one), kept for the job.
    const located = await locateForRestore(context, ref, body);
    const sidecar = located.sidecar;
    // Refused now (409), not by the job: the library's own check and message.
    assertRestorable(sidecar);
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
    return api.accepted(c, job);
  });
}

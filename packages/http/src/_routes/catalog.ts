/**
 * The catalog routes, answered at once: the entities a backup would take, the backup list and query, the catalog
 * statistics, one backup's detail, and deleting a backup (confirmed by its id, refused while a job works on it).
 */
import { describeEntities } from '@koan/data-backup/plan';
import type { Hono } from 'hono';
import { httpError, optionAsField } from '../_errors.js';
import { flag, parseBackupQuery, parseRef, queryParams, single } from '../_requests.js';
import type { ApiScope } from './scope.js';

export function catalogRoutes(app: Hono, api: ApiScope): void {
  const { context, discovery, jobs } = api;

  app.get('/entities', async (c) => {
    const params = queryParams(c, ['introspect']);
    return c.json(await describeEntities(context, { introspect: flag(params, 'introspect') }));
  });

  app.get('/backups', async (c) => {
    const query = parseBackupQuery(c);
    for (const p of query.storageProfiles ?? []) api.assertProfile(p, 'storageProfiles');
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
    const { storageProfile, params } = api.profileParam(c, ['allowUnreachableProfiles']);
    // By name, with a profile that cannot be listed: the newest of the reachable ones only when asked
    // (`unavailableProfiles` then names the others), as the CLI's --allow-unreachable-profiles.
    const allowUnreachableProfiles = flag(params, 'allowUnreachableProfiles');
    return c.json(
      await discovery.getBackup(parseRef(c.req.param('ref')), {
        ...(storageProfile ? { storageProfile } : {}),
        ...(allowUnreachableProfiles ? { allowUnreachableProfiles } : {}),
      }),
    );
  });

  app.delete('/backups/:ref', async (c) => {
    const { storageProfile, params } = api.profileParam(c, ['confirm']);
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
}

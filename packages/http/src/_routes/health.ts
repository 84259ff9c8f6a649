/**
 * Health routes. `GET /healthz` (liveness: the process serves) and `GET /readyz` (readiness: every storage profile can
 * be listed) answer without credentials, as orchestrators probe them; they carry no backup data (readiness names the
 * profiles and their error codes, not the error messages). `GET /health` is the backup monitor's verdict
 * (`Koan.Backup.Monitor`): 200 healthy, 503 unhealthy, the same JSON either way; it names backups, sizes and storage
 * errors, so it asks for the API's credentials like every other route. It never sends notifications: it is polled.
 */
import { KoanError } from '@koan/data';
import { checkReadiness, monitorBackups } from '@koan/data-backup/monitor';
import type { Context, Hono } from 'hono';
import { invalidField } from '../_errors.js';
import { queryParams } from '../_requests.js';
import type { ApiScope } from './scope.js';

/** Paths below the base path that need no credentials. */
export const PUBLIC_HEALTH_PATHS: readonly string[] = ['/healthz', '/readyz'];

/** Time each storage profile has to answer a readiness probe. */
const READY_TIMEOUT_MS = 5_000;

/** Query parameter of `GET /health` for each library option. */
const PARAMS = { names: 'name', tags: 'tag', storageProfiles: 'storageProfile' } as const;

function list(params: Map<string, string[]>, name: string): string[] | undefined {
  const values = params
    .get(name)
    ?.flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
  return values?.length ? values : undefined;
}

export function healthRoutes(app: Hono, api: ApiScope): void {
  const { context } = api;

  app.get('/healthz', (c) => {
    queryParams(c, []);
    return c.json({ status: 'ok' });
  });

  app.get('/readyz', async (c: Context) => {
    queryParams(c, []);
    const result = await checkReadiness(context, { timeoutMs: READY_TIMEOUT_MS });
    const profiles = result.profiles.map(({ message: _, ...p }) => p);
    return c.json({ ...result, profiles }, result.ready ? 200 : 503);
  });

  app.get('/health', async (c) => {
    const params = queryParams(c, Object.values(PARAMS));
    const names = list(params, PARAMS.names);
    const tags = list(params, PARAMS.tags);
    const storageProfiles = list(params, PARAMS.storageProfiles);
    const result = await monitorBackups(context, context.config.monitor, {
      ...(names ? { names } : {}),
      ...(tags ? { tags } : {}),
      ...(storageProfiles ? { storageProfiles } : {}),
    }).catch((e: unknown) => {
      // The library names its option (`names`); the request named the query parameter (`name`).
      const option = e instanceof KoanError ? e.details.option : undefined;
      if (e instanceof KoanError && e.code === 'INVALID_OPTION' && typeof option === 'string' && option in PARAMS) {
        const field = PARAMS[option as keyof typeof PARAMS];
        throw invalidField(field, e.message.replace(`option ${option}`, `query parameter ${field}`));
      }
      throw e;
    });
    return c.json(result, result.healthy ? 200 : 503);
  });
}

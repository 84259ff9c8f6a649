/**
 * Records with a time to live that ends between backup and restore: the restore does not bring them back, and its
 * report accounts for every archived record (expired ones are counted as skipped, and as `expired`).
 */
import { randomBytes } from 'node:crypto';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { serviceUrls } from '@koan/data/testing';
import { backupEntity, restoreEntity } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import { deleteRedisKeys, probeRedis } from './scratch-databases.js';

const prefix = `rexp${randomBytes(3).toString('hex')}`;
const RxSession = defineEntity({
  name: 'RxSession',
  key: 'id',
  source: 'rx_redis',
  fields: { id: t.string(), expiresAt: t.datetime().optional().ttl() },
});

let env: Awaited<ReturnType<typeof makeContext>> | undefined;
const skip = await probeRedis();

beforeAll(async () => {
  if (skip) return;
  env = await makeContext({ rx_redis: { provider: 'redis', settings: { url: serviceUrls.redis, keyPrefix: prefix } } });
});

afterAll(async () => {
  unregisterEntity('RxSession');
  await env?.cleanup();
  if (!skip) await deleteRedisKeys(prefix);
});

describe('restoring records whose TTL ended after the backup', () => {
  it('skips them and reports them as expired, so the report adds up to the archive', async (ctx) => {
    if (skip || !env) return ctx.skip(skip ?? 'redis unavailable');
    const sessions = RxSession.withRuntime(env.context.runtime);
    const soon = new Date(Date.now() + 400).toISOString();
    await sessions.upsertMany([
      { id: 'gone', expiresAt: soon },
      { id: 'kept', expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
      { id: 'forever' },
    ]);
    const m = await backupEntity(env.context, sessions, 'sessions');
    expect(m.verification.totalItemCount).toBe(3);
    await sessions.removeAll();
    await new Promise((r) => setTimeout(r, 500));
    const report = await restoreEntity(env.context, sessions, 'sessions');
    expect(report.entities[0]).toMatchObject({ inserted: 2, skipped: 1, expired: 1, failed: 0 });
    expect((await sessions.all()).map((s) => s.id).sort()).toEqual(['forever', 'kept']);
  });
});

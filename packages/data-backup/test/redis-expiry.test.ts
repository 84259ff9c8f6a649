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
    // The short TTL must still be running while the backup reads it, however loaded the machine is: when the backup
    // already missed it, the same steps run again with a TTL four times longer (no outcome depends on timing).
    let expiresAt = 0;
    for (const ttl of [400, 1_600, 6_400, 25_600]) {
      expiresAt = Date.now() + ttl;
      await sessions.upsertMany([
        { id: 'gone', expiresAt: new Date(expiresAt).toISOString() },
        { id: 'kept', expiresAt: new Date(Date.now() + 3_600_000).toISOString() },
        { id: 'forever' },
      ]);
      const m = await backupEntity(env.context, sessions, 'sessions');
      await sessions.removeAll();
      if (m.verification.totalItemCount === 3) break;
    }
    // Restored only once the TTL has certainly passed (Redis decides with its own clock, on this machine).
    while (Date.now() <= expiresAt + 20)
      await new Promise((r) => setTimeout(r, Math.max(5, expiresAt + 25 - Date.now())));
    const report = await restoreEntity(env.context, sessions, 'sessions');
    expect(report.entities[0]).toMatchObject({ inserted: 2, skipped: 1, expired: 1, failed: 0 });
    expect((await sessions.all()).map((s) => s.id).sort()).toEqual(['forever', 'kept']);
  });
});

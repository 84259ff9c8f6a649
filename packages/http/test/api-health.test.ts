/**
 * GET /health (the backup monitor: 200 healthy, 503 unhealthy, the same JSON), GET /healthz (liveness) and GET /readyz
 * (every storage profile can be listed), on real backups in a local storage profile; the unready case is a real S3
 * profile on a closed loopback port. Liveness and readiness need no credentials; /health does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupContext, BackupService } from '@koan/data-backup';
import { monitorBackups } from '@koan/data-backup/monitor';
import type { BackupConfigInput } from '@koan/data-backup/schemas';
import { StorageProfiles } from '@koan/storage';
import { closedLoopbackPort, unreachableS3Settings } from '@koan/storage/testing';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerToken, createBackupApi, shutdownBackupApi } from '../src/index.js';

const HealthItem = defineEntity({
  name: 'HealthItem',
  key: 'id',
  source: 'http_health_mem',
  fields: { id: t.integer(), title: t.string() },
});

const TOKEN = 'health-test-token-0123456789';
const MONITOR: BackupConfigInput['monitor'] = {
  defaults: { minCount: 1, maxAgeHours: 1000 },
  targets: [{ name: 'items' }, { name: 'missing' }],
};

let dir: string;
const contexts: BackupContext[] = [];
const apps: Hono[] = [];

async function contextWith(profiles: Record<string, { provider: string; settings: Record<string, unknown> }>) {
  const runtime = new DataRuntime({ cwd: dir, sources: { http_health_mem: { provider: 'memory' } } });
  const storage = await StorageProfiles.load({ defaultProfile: 'local', profiles }, { cwd: dir });
  const context = new BackupContext({ runtime, storage, config: { monitor: MONITOR } });
  contexts.push(context);
  return context;
}

function api(context: BackupContext, options: Parameters<typeof createBackupApi>[1] = {}): Hono {
  const app = createBackupApi(context, options);
  apps.push(app);
  return app;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON responses are read loosely in assertions
async function get(app: Hono, path: string, token?: string): Promise<{ status: number; json: any }> {
  const res = await app.request(path, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, json: await res.json() };
}

let context: BackupContext;
let down: BackupContext;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-backup-http-health-'));
  const local = { provider: 'local', settings: { root: join(dir, 'backups') } };
  context = await contextWith({ local });
  await HealthItem.withRuntime(context.runtime).upsertMany([{ id: 1, title: 'one' }]);
  await new BackupService(context).backupEntity(HealthItem, 'items');
  down = await contextWith({
    local,
    s3: { provider: 's3', settings: unreachableS3Settings(await closedLoopbackPort()) },
  });
});

afterAll(async () => {
  for (const app of apps) await shutdownBackupApi(app);
  for (const c of contexts) await c.close();
  unregisterEntity('HealthItem');
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /health', () => {
  it('503 with the monitor result when unhealthy; 200 with it when healthy (here: only the healthy target)', async () => {
    const app = api(context);
    const sick = await get(app, '/health');
    expect(sick.status).toBe(503);
    const expected = await monitorBackups(context);
    expect(sick.json).toEqual({ ...expected, checkedAt: expect.any(String) });
    expect(sick.json.problems).toEqual([
      expect.objectContaining({ target: 'missing', storageProfile: 'local', check: 'NoBackups' }),
    ]);
    const fine = await get(app, '/health?name=items');
    expect(fine.status).toBe(200);
    expect(fine.json).toMatchObject({ healthy: true, problems: [], checks: [{ target: 'items', restorable: 1 }] });
  });

  it('query parameters name, tag and storageProfile are checked: a bad one is a 400 naming it', async () => {
    const app = api(context);
    const name = await get(app, '/health?name=nightly');
    expect(name.status).toBe(400);
    expect(name.json.error).toEqual({
      code: 'INVALID_OPTION',
      message:
        'Invalid query parameter name: "nightly" is not watched. Koan.Backup.Monitor.Targets lists names items, missing.',
      details: { field: 'name' },
    });
    const profile = await get(app, '/health?storageProfile=s9');
    expect(profile.status).toBe(400);
    expect(profile.json.error.details).toEqual({ field: 'storageProfile' });
    const unknown = await get(app, '/health?profile=local');
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.details.field).toBe('profile');
  });

  it('an unreachable profile is a problem of the result (503), not an error; the reachable one is still checked', async () => {
    const res = await get(api(down), '/health?name=items');
    expect(res.status).toBe(503);
    expect(res.json.problems.map((p: { check: string; target: string }) => `${p.check} ${p.target}`)).toEqual([
      'Unreachable s3',
    ]);
    expect(res.json.checks).toMatchObject([{ target: 'items', storageProfile: 'local', restorable: 1 }]);
  });
});

describe('GET /healthz and GET /readyz', () => {
  it('liveness is always 200; readiness is 200 when every profile lists, 503 naming the one that does not', async () => {
    expect(await get(api(down), '/healthz')).toEqual({ status: 200, json: { status: 'ok' } });
    const ready = await get(api(context), '/readyz');
    expect(ready).toEqual({
      status: 200,
      json: { ready: true, checkedAt: expect.any(String), profiles: [{ profile: 'local', ready: true }] },
    });
    const unready = await get(api(down), '/readyz');
    expect(unready.status).toBe(503);
    // Profile names and error codes, never the messages (which may name endpoints): the probe is public.
    expect(unready.json.profiles).toEqual([
      { profile: 'local', ready: true },
      { profile: 's3', ready: false, code: 'TRANSIENT' },
    ]);
  });

  it('with auth: liveness and readiness need no credentials (under basePath, with a trailing slash too); /health does', async () => {
    const app = api(down, { auth: bearerToken(TOKEN), basePath: '/admin' });
    for (const path of ['/admin/healthz', '/admin/healthz/']) expect((await get(app, path)).status, path).toBe(200);
    for (const path of ['/admin/readyz', '/admin/readyz/']) expect((await get(app, path)).status, path).toBe(503);
    expect((await get(app, '/admin/health')).status).toBe(401);
    expect((await get(app, '/admin/health', TOKEN)).status).toBe(503);
  });
});

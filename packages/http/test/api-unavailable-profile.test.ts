/**
 * GET /backups and GET /stats with one storage profile that cannot be reached (a real S3 profile on a closed loopback
 * port, retries turned down): the reachable profile is listed and the unreachable one is reported in
 * `unavailableProfiles`; a query limited to the unreachable profile fails with its error code.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupContext, type BackupResult, BackupService } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import { closedLoopbackPort, unreachableS3Settings } from '@koan/storage/testing';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupApi, shutdownBackupApi } from '../src/index.js';

const HttpUpItem = defineEntity({
  name: 'HttpUpItem',
  key: 'id',
  source: 'http_up_mem',
  fields: { id: t.integer(), title: t.string() },
});

let dir: string;
let dead: number;
let context: BackupContext;
let app: Hono;
let backup: BackupResult;

beforeAll(async () => {
  dead = await closedLoopbackPort();
  dir = mkdtempSync(join(tmpdir(), 'koan-backup-http-unavailable-'));
  const runtime = new DataRuntime({ cwd: dir, sources: { http_up_mem: { provider: 'memory' } } });
  const storage = await StorageProfiles.load(
    {
      defaultProfile: 'local',
      profiles: {
        local: { provider: 'local', settings: { root: join(dir, 'backups') } },
        s3: { provider: 's3', settings: unreachableS3Settings(dead) },
      },
    },
    { cwd: dir },
  );
  context = new BackupContext({ runtime, storage });
  await HttpUpItem.withRuntime(runtime).upsertMany([{ id: 1, title: 'one' }]);
  backup = await new BackupService(context).backupEntity(HttpUpItem, 'items');
  app = createBackupApi(context);
});

afterAll(async () => {
  if (app) await shutdownBackupApi(app);
  await context?.close();
  unregisterEntity('HttpUpItem');
  rmSync(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: JSON responses are read loosely in assertions
async function get(path: string): Promise<{ status: number; json: any }> {
  const res = await app.request(path);
  return { status: res.status, json: await res.json() };
}

const s3Unavailable = {
  profile: 's3',
  code: 'TRANSIENT',
  message: expect.stringContaining('127.0.0.1'),
};

describe('HTTP API with an unreachable storage profile', () => {
  it('GET /backups lists the local backups and reports s3 in unavailableProfiles', async () => {
    const res = await get('/backups');
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json.backups.map((b: { id: string }) => b.id)).toEqual([backup.id]);
    expect(res.json.totalCount).toBe(1);
    expect(res.json.unavailableProfiles).toEqual([s3Unavailable]);
  });

  it('GET /stats counts the local backups and reports s3 in unavailableProfiles', async () => {
    const res = await get('/stats');
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    expect(res.json).toMatchObject({ totalBackups: 1, byStorageProfile: { local: 1 } });
    expect(res.json.unavailableProfiles).toEqual([s3Unavailable]);
  });

  it('GET /backups/:name stops at the unreachable profile unless allowUnreachableProfiles=true, as the CLI flag', async () => {
    const stopped = await get('/backups/items');
    expect(stopped.status).toBe(503);
    expect(stopped.json.error).toMatchObject({
      code: 'PROFILE_UNAVAILABLE',
      details: { candidate: { id: backup.id, profile: 'local' }, unavailableProfiles: [s3Unavailable] },
    });
    const allowed = await get('/backups/items?allowUnreachableProfiles=true');
    expect(allowed.status, JSON.stringify(allowed.json)).toBe(200);
    expect(allowed.json).toMatchObject({ id: backup.id, storageProfile: 'local' });
    expect(allowed.json.unavailableProfiles).toEqual([s3Unavailable]);
    // by id, or once told which profile, nothing is uncertain: no unavailableProfiles
    expect((await get(`/backups/${backup.id}?allowUnreachableProfiles=true`)).json.unavailableProfiles).toBeUndefined();
    const local = await get('/backups/items?storageProfile=local&allowUnreachableProfiles=1');
    expect(local.status).toBe(200);
    expect(local.json.unavailableProfiles).toBeUndefined();
    const bad = await get('/backups/items?allowUnreachableProfiles=maybe');
    expect(bad.status).toBe(400);
    expect(bad.json.error.details.field).toBe('allowUnreachableProfiles');
  });

  it('GET /backups?storageProfiles=s3 fails with the storage error code, as 503 (try again later)', async () => {
    const res = await get('/backups?storageProfiles=s3');
    expect(res.status).toBe(503);
    expect(res.json.error).toMatchObject({ code: 'TRANSIENT', message: expect.stringContaining('127.0.0.1') });
  });
});

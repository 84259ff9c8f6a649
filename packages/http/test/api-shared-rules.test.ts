/**
 * The rules the HTTP API takes from the library rather than writing them again: the status of every kind of error
 * (`errorKind`, the table the CLI's exit codes come from too), which backup a copy by name takes and what it refuses
 * (`locateForCopy`), a backup that cannot be restored (`assertRestorable`), and query values in any case. Through
 * `app.request()`, on a real SQLite file and two local-disk profiles; the newest `flaky` backup failed, an older one
 * completed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, Entity, type FieldsShape, KoanError, t, unregisterEntity } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { BackupContext, type BackupResult, BackupService, type ErrorKind, errorKind } from '@koan/data-backup';
import { locateBackup } from '@koan/data-backup/catalog';
import { StorageProfiles } from '@koan/storage';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeError, statusOf, statusOfCode } from '../src/_errors.js';
import { createBackupApi, shutdownBackupApi } from '../src/index.js';

const RuleItem = defineEntity({
  name: 'RuleItem',
  key: 'id',
  source: 'http_rules',
  fields: { id: t.integer(), title: t.string() },
});

let dir: string;
let context: BackupContext;
let app: Hono;
let completed: BackupResult;
let failedId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-backup-http-rules-'));
  const runtime = new DataRuntime({
    cwd: dir,
    sources: { http_rules: { provider: 'sqlite', settings: { path: 'rules.sqlite' } } },
  });
  const storage = await StorageProfiles.load(
    {
      defaultProfile: 'local',
      profiles: {
        local: { provider: 'local', settings: { root: join(dir, 'backups') } },
        offsite: { provider: 'local', settings: { root: join(dir, 'offsite') } },
      },
    },
    { cwd: dir },
  );
  context = new BackupContext({ runtime, storage });
  await RuleItem.withRuntime(runtime).upsertMany([
    { id: 1, title: 'one' },
    { id: 2, title: 'two' },
  ]);
  const service = new BackupService(context);
  completed = await service.backupAllEntities('flaky', { includeEntityTypes: ['RuleItem'] });
  // A table holding only its key column, declared with one more: reading it fails, so this backup is Failed.
  const keyOnly = { id: t.integer() } as FieldsShape;
  await new Entity(
    buildSchema({ name: 'RuleBroken', key: 'id', fields: keyOnly, source: 'http_rules' }, 'declared'),
    keyOnly,
  )
    .withRuntime(runtime)
    .upsertMany([{ id: 1 }]);
  defineEntity({ name: 'RuleBroken', key: 'id', source: 'http_rules', fields: { id: t.integer(), name: t.string() } });
  await expect(
    service.backupAllEntities('flaky', { includeEntityTypes: ['RuleBroken'], continueOnError: false }),
  ).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
  const newest = await locateBackup(context, 'flaky', { anyStatus: true });
  expect(newest.sidecar.status).toBe('Failed');
  failedId = newest.sidecar.id;
  app = createBackupApi(context, { progressIntervalMs: 0 });
});

afterAll(async () => {
  if (app) await shutdownBackupApi(app);
  await context?.close();
  unregisterEntity('RuleItem');
  unregisterEntity('RuleBroken');
  rmSync(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: JSON responses are read loosely in assertions
type Json = any;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await app.request(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, json: await res.json() };
}

async function finished(jobId: string): Promise<Json> {
  for (let i = 0; i < 2000; i++) {
    const { json } = await call('GET', `/jobs/${jobId}`);
    if (['succeeded', 'failed', 'cancelled'].includes(json.status)) return json;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`job ${jobId} did not finish`);
}

describe('statuses come from the library’s errorKind', () => {
  const byKind: Record<ErrorKind, number> = {
    invalid: 400,
    configuration: 500,
    'not-found': 404,
    conflict: 409,
    integrity: 422,
    unavailable: 503,
    cancelled: 500,
    failure: 500,
  };

  it('every kind has its status; a library error is answered with its kind’s', () => {
    for (const code of ['INVALID_OPTION', 'INVALID_KEY', 'CONFIG_INVALID', 'BACKUP_NOT_FOUND', 'ALREADY_EXISTS']) {
      const kind = errorKind(code)!;
      const e = new KoanError(code, 'x');
      expect(statusOf(e, describeError(e)), code).toBe(byKind[kind]);
    }
    for (const code of ['ARCHIVE_CORRUPT', 'PROFILE_UNAVAILABLE', 'ABORTED', 'DUPLICATE_KEY'])
      expect(statusOfCode(code), code).toBe(byKind[errorKind(code)!]);
    // the decisions the table records: a bad storage key is the request's fault, a copy already there a conflict
    expect(statusOfCode('INVALID_KEY')).toBe(400);
    expect(statusOfCode('ALREADY_EXISTS')).toBe(409);
  });

  it("the API's own codes keep theirs; a code nobody classifies is a 500", () => {
    expect(
      ['INVALID_JSON', 'CONFIRMATION_REQUIRED', 'UNAUTHORIZED', 'JOB_NOT_FOUND', 'JOB_CONFLICT'].map(statusOfCode),
    ).toEqual([400, 400, 401, 404, 409]);
    expect(['JOB_FINISHED', 'UNSUPPORTED_MEDIA_TYPE', 'TOO_MANY_JOBS', 'WHATEVER'].map(statusOfCode)).toEqual([
      409, 415, 503, 500,
    ]);
  });

  it('a failed backup reports the code of what it wraps, with both details', () => {
    const cause = new KoanError('SOURCE_UNAVAILABLE', 'down', { details: { source: 's' } });
    const info = describeError(new KoanError('BACKUP_FAILED', 'failed', { cause, details: { name: 'n' } }));
    expect(info).toEqual({ code: 'SOURCE_UNAVAILABLE', message: 'failed', details: { source: 's', name: 'n' } });
  });
});

describe('POST /backups/:ref/copy', () => {
  it('by name copies the newest restorable backup, as the CLI does, though a newer one of that name failed', async () => {
    const started = await call('POST', '/backups/flaky/copy', { to: 'offsite' });
    expect(started.status, JSON.stringify(started.json)).toBe(202);
    expect(started.json.job.request.backupId).toBe(completed.id);
    const job = await finished(started.json.jobId);
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    expect(job.result).toMatchObject({ id: completed.id, from: 'local', to: 'offsite' });
  });

  it('refuses, before any job, the profile the backup is in (field to) and a backup that is not restorable', async () => {
    const same = await call('POST', `/backups/${completed.id}/copy`, { to: 'local', fromProfile: 'local' });
    expect(same.status).toBe(400);
    expect(same.json.error).toMatchObject({ code: 'INVALID_OPTION', details: { field: 'to', profile: 'local' } });
    const failed = await call('POST', `/backups/${failedId}/copy`, { to: 'offsite' });
    expect(failed.status).toBe(409);
    expect(failed.json.error).toMatchObject({
      code: 'BACKUP_NOT_RESTORABLE',
      details: { backupId: failedId, id: failedId, status: 'Failed' },
    });
    expect(failed.json.error.message).toMatch(/has status Failed: .+; only restorable backups are copied\.$/);
  });
});

describe('POST /backups/:ref/restore', () => {
  it("refuses a backup that cannot be restored with the library's message, before any job", async () => {
    const res = await call('POST', `/backups/${failedId}/restore`, { dryRun: true });
    expect(res.status).toBe(409);
    expect(res.json.error).toMatchObject({
      code: 'BACKUP_NOT_RESTORABLE',
      details: { backupId: failedId, id: failedId, status: 'Failed' },
    });
    expect(res.json.error.message).toMatch(/^Backup flaky \(.+\) has status Failed: .+; it cannot be restored\.$/);
    expect((await call('GET', '/jobs')).json.jobs.filter((j: Json) => j.kind === 'restore')).toEqual([]);
  });
});

describe('GET /backups', () => {
  it('takes statuses and healthStatuses in any case; a bad one is the library’s 400 naming the field', async () => {
    const lower = await call(
      'GET',
      '/backups?storageProfiles=local&statuses=completed,FAILED&healthStatuses=unknown,critical',
    );
    expect(lower.status, JSON.stringify(lower.json)).toBe(200);
    expect(lower.json.backups.map((b: Json) => b.id).sort()).toEqual([completed.id, failedId].sort());
    const bad = await call('GET', '/backups?statuses=Done');
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ code: 'INVALID_OPTION', details: { field: 'statuses' } });
    expect(bad.json.error.message).toContain('Invalid option statuses: "Done"');
  });
});

/**
 * The HTTP API tells what a backup leaves out and whether a job did everything it was asked, through the library's
 * own rules: tables that cannot be backed up (a real SQLite table whose Koan meta row is unreadable) and selection
 * values that match nothing are the request's error; the backup detail carries the manifest's `omitted`; a backup or
 * restore job whose entity sets failed ends `failed` with the result kept.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, registeredEntities, t, unregisterEntity } from '@koan/data';
import { BackupContext } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import Database from 'better-sqlite3';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackupApi, type JobSnapshot, shutdownBackupApi } from '../src/index.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON responses are read loosely in assertions
type Json = any;

const HtKeep = defineEntity({ name: 'HtKeep', key: 'id', source: 'ht', fields: { id: t.integer(), v: t.string() } });
const HtDrift = defineEntity({ name: 'HtDrift', key: 'id', source: 'ht', fields: { id: t.integer(), v: t.string() } });

let dir: string;
const contexts: BackupContext[] = [];
const apps: Hono[] = [];
let app: Hono;
let legacyApp: Hono;

async function apiOver(sources: Record<string, { provider: string; settings: Record<string, unknown> }>) {
  const runtime = new DataRuntime({ cwd: dir, sources });
  const storage = await StorageProfiles.load(
    { defaultProfile: 'local', profiles: { local: { provider: 'local', settings: { root: join(dir, 'backups') } } } },
    { cwd: dir },
  );
  const context = new BackupContext({ runtime, storage });
  contexts.push(context);
  const api = createBackupApi(context, { progressIntervalMs: 0 });
  apps.push(api);
  return { context, api };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-http-trust-'));
  const legacy = new Database(join(dir, 'legacy.sqlite'));
  legacy.exec(`
    CREATE TABLE ht_customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    INSERT INTO ht_customers VALUES (1, 'Ada'), (2, 'Grace');
    CREATE TABLE ht_legacy (id INTEGER PRIMARY KEY, v TEXT);
    CREATE TABLE _koan_entities (physical TEXT NOT NULL PRIMARY KEY, entity TEXT NOT NULL, schema TEXT NOT NULL);
    INSERT INTO _koan_entities VALUES ('ht_legacy', 'ht_legacy', '{ not json');
  `);
  legacy.close();
  const main = await apiOver({ ht: { provider: 'sqlite', settings: { path: 'app.sqlite' } } });
  app = main.api;
  await HtKeep.withRuntime(main.context.runtime).upsertMany([
    { id: 1, v: 'a' },
    { id: 2, v: 'b' },
  ]);
  await HtDrift.withRuntime(main.context.runtime).upsertMany([{ id: 1, v: 'x' }]);
  legacyApp = (await apiOver({ legacy: { provider: 'sqlite', settings: { path: 'legacy.sqlite' } } })).api;
});

afterAll(async () => {
  for (const a of apps) await shutdownBackupApi(a);
  for (const c of contexts) await c.close();
  for (const e of registeredEntities()) if (['ht', 'legacy'].includes(e.schema.source)) unregisterEntity(e.schema.name);
  rmSync(dir, { recursive: true, force: true });
});

async function call(
  target: Hono,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Json }> {
  const res = await target.request(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function runJob(target: Hono, path: string, body: unknown): Promise<JobSnapshot & Json> {
  const started = await call(target, 'POST', path, body);
  expect(started.status, JSON.stringify(started.json)).toBe(202);
  for (let i = 0; i < 2000; i++) {
    const { json } = await call(target, 'GET', `/jobs/${started.json.jobId}`);
    if (['succeeded', 'failed', 'cancelled'].includes(json.status)) return json;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('the job did not finish');
}

describe('nothing left out silently, over HTTP', () => {
  it('GET /entities?introspect=true lists the tables that cannot be backed up, with why', async () => {
    const { status, json } = await call(legacyApp, 'GET', '/entities?introspect=true');
    expect(status).toBe(200);
    expect(json.entities.map((e: Json) => [e.name, e.origin, e.records, e.totalRecords])).toEqual([
      ['ht_customers', 'introspected', { root: 2 }, 2],
    ]);
    expect(json.skipped).toEqual([
      { source: 'legacy', table: 'ht_legacy', reason: expect.stringContaining('unreadable schema') },
    ]);
    expect(json.notData).toEqual([]);
    const bad = await call(legacyApp, 'GET', '/entities?introspect=maybe');
    expect(bad.status).toBe(400);
    expect(bad.json.error.details.field).toBe('introspect');
  });

  it('POST /backups with introspect refuses (422) a table that cannot be backed up; excluded, the detail shows it omitted', async () => {
    const refused = await call(legacyApp, 'POST', '/backups', { name: 'legacy', introspect: true });
    expect(refused.status).toBe(422);
    expect(refused.json.error).toMatchObject({
      code: 'TABLES_NOT_BACKED_UP',
      message: expect.stringContaining('ht_legacy (source legacy)'),
      details: { tables: [{ source: 'legacy', table: 'ht_legacy' }] },
    });
    const job = await runJob(legacyApp, '/backups', {
      name: 'legacy',
      introspect: true,
      excludeEntityTypes: ['ht_legacy'],
    });
    expect(job.status, JSON.stringify(job.error)).toBe('succeeded');
    const detail = await call(legacyApp, 'GET', '/backups/legacy');
    expect(detail.json.omitted).toEqual([
      { source: 'legacy', name: 'ht_legacy', kind: 'table', reason: expect.stringMatching(/^excluded on request/) },
    ]);
  });

  it('a selection value that matches nothing is a 400 naming the field and the known values', async () => {
    const r = await call(app, 'POST', '/backups', { name: 'typo', excludeEntityTypes: ['HtKept'] });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({
      code: 'INVALID_OPTION',
      details: { field: 'excludeEntityTypes', unknown: ['HtKept'], known: ['HtDrift', 'HtKeep'] },
    });
    const provider = await call(app, 'POST', '/backups', { name: 'typo', includeProviders: ['postgres'] });
    expect(provider.json.error.details).toMatchObject({ field: 'includeProviders', known: ['sqlite'] });
  });
});

describe('job statuses tell the truth', () => {
  it('a restore job whose entity sets failed (lenient drift) ends failed with RESTORE_PARTIAL, its report kept', async () => {
    const backup = await runJob(app, '/backups', { name: 'both' });
    expect(backup.status).toBe('succeeded');
    // The app now declares HtDrift with a new required field: the archived rows cannot fill it.
    unregisterEntity('HtDrift');
    defineEntity({
      name: 'HtDrift',
      key: 'id',
      source: 'ht',
      fields: { id: t.integer(), v: t.string(), w: t.string() },
    });
    try {
      const job = await runJob(app, '/backups/both/restore', { schemaPolicy: 'lenient' });
      expect(job.status).toBe('failed');
      expect(job.error).toMatchObject({
        code: 'RESTORE_PARTIAL',
        message: expect.stringMatching(/is PartiallyCompleted: 1 of 2 entity sets failed \(HtDrift@root: /),
        details: { status: 'PartiallyCompleted', failed: [{ entity: 'HtDrift', set: 'root' }] },
      });
      expect(job.result.status).toBe('PartiallyCompleted');
      const only = await runJob(app, '/backups/both/restore', {
        schemaPolicy: 'lenient',
        includeEntityTypes: ['HtDrift'],
      });
      expect(only.error.code).toBe('RESTORE_FAILED');
      expect(only.result.status).toBe('Failed');
      const dry = await runJob(app, '/backups/both/restore', { schemaPolicy: 'lenient', dryRun: true });
      expect([dry.status, dry.error.code, dry.result.status]).toEqual(['failed', 'RESTORE_WOULD_FAIL', 'DryRun']);
      const clean = await runJob(app, '/backups/both/restore', { includeEntityTypes: ['HtKeep'] });
      expect([clean.status, clean.result.status]).toEqual(['succeeded', 'Completed']);
    } finally {
      unregisterEntity('HtDrift');
    }
  });
});

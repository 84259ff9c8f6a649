/**
 * The backup HTTP API through `app.request()` (no network), on a real SQLite file, a memory source and local-disk
 * storage in a temp dir; plus one test over real HTTP with `serve`.
 *
 * Cancellation is made deterministic with a "gated" memory provider: while armed, its snapshot reader hands out the
 * first batch of an entity and then waits until the backup's AbortSignal fires.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, KoanError, MemoryAdapter, t, unregisterEntity } from '@koan/data';
import type { DataProvider, DataReader, ExportOptions } from '@koan/data/adapter-kit';
import { BackupContext } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearerToken,
  createBackupApi,
  type JobSnapshot,
  MIN_TOKEN_LENGTH,
  serve,
  shutdownBackupApi,
} from '../src/index.js';

const gate = { armed: false };

async function* untilAborted<T>(batches: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  let n = 0;
  for await (const batch of batches) {
    if (n++ > 0 && gate.armed && signal && !signal.aborted)
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    yield batch;
  }
}

class GatedAdapter extends MemoryAdapter {
  override readSnapshot<T>(fn: (reader: DataReader & { readonly consistency: 'snapshot' }) => Promise<T>): Promise<T> {
    return super.readSnapshot((reader) =>
      fn({
        consistency: 'snapshot',
        count: (entity, set) => reader.count(entity, set),
        exportEntity: (entity, set, options?: ExportOptions) =>
          untilAborted(reader.exportEntity(entity, set, options), options?.signal),
      }),
    );
  }
}
const gatedProvider: DataProvider = { name: 'gated', create: () => new GatedAdapter() };

const HttpItem = defineEntity({
  name: 'HttpItem',
  key: 'id',
  source: 'http_sqlite',
  fields: { id: t.integer(), title: t.string() },
});
const HttpNote = defineEntity({
  name: 'HttpNote',
  key: 'id',
  source: 'http_sqlite',
  fields: { id: t.integer(), text: t.string() },
});
const HttpBulk = defineEntity({
  name: 'HttpBulk',
  key: 'id',
  source: 'http_gated',
  fields: { id: t.integer(), body: t.string() },
});

let dir: string;
let context: BackupContext;
let app: Hono;
const ITEMS = 300;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-backup-http-'));
  const runtime = new DataRuntime({
    cwd: dir,
    providers: [gatedProvider],
    sources: {
      http_sqlite: { provider: 'sqlite', settings: { path: 'app.sqlite' } },
      http_gated: { provider: 'gated' },
    },
  });
  const storage = await StorageProfiles.load(
    {
      defaultProfile: 'local',
      profiles: {
        local: { provider: 'local', settings: { root: join(dir, 'backups') } },
        archive: { provider: 'local', settings: { root: join(dir, 'archive') } },
      },
    },
    { cwd: dir },
  );
  context = new BackupContext({ runtime, storage });
  await HttpItem.withRuntime(runtime).upsertMany(
    Array.from({ length: ITEMS }, (_, i) => ({ id: i + 1, title: `item <b>${i}</b>` })),
  );
  await HttpNote.withRuntime(runtime).upsertMany(Array.from({ length: 40 }, (_, i) => ({ id: i + 1, text: `n${i}` })));
  await HttpBulk.withRuntime(runtime).upsertMany(
    Array.from({ length: 2000 }, (_, i) => ({ id: i + 1, body: `bulk ${i} `.repeat(4) })),
  );
  app = createBackupApi(context, { progressIntervalMs: 0 });
});

afterAll(async () => {
  gate.armed = false;
  if (app) await shutdownBackupApi(app);
  await context?.close();
  for (const n of ['HttpItem', 'HttpNote', 'HttpBulk']) unregisterEntity(n);
  rmSync(dir, { recursive: true, force: true });
});

// biome-ignore lint/suspicious/noExplicitAny: JSON responses are read loosely in assertions
type Json = any;

async function call(
  method: string,
  path: string,
  body?: unknown,
  target: Hono = app,
): Promise<{ status: number; json: Json; headers: Headers }> {
  const res = await target.request(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
const FINISHED = ['succeeded', 'failed', 'cancelled'];

async function waitFor(jobId: string, until: (job: JobSnapshot) => boolean = (j) => FINISHED.includes(j.status)) {
  for (let i = 0; i < 2000; i++) {
    const { json } = await call('GET', `/jobs/${jobId}`);
    if (until(json)) return json as JobSnapshot & Json;
    await tick();
  }
  throw new Error(`job ${jobId} did not reach the expected state`);
}

async function runJob(path: string, body: unknown): Promise<JobSnapshot & Json> {
  const started = await call('POST', path, body);
  expect(started.status, JSON.stringify(started.json)).toBe(202);
  expect(started.json.jobId).toBe(started.json.job.id);
  expect(started.headers.get('location')).toBe(`/jobs/${started.json.jobId}`);
  return waitFor(started.json.jobId);
}

function expectError(res: { status: number; json: Json }, status: number, code: string, field?: string) {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  expect(res.json.error.code).toBe(code);
  expect(typeof res.json.error.message).toBe('string');
  if (field) expect(res.json.error.details.field).toBe(field);
}

let nightlyId: string;

describe('catalog and jobs', () => {
  it('GET /entities lists the discovered entities with their record counts', async () => {
    const { status, json } = await call('GET', '/entities');
    expect(status).toBe(200);
    const byName = Object.fromEntries(json.entities.map((e: Json) => [e.name, e]));
    expect(byName.HttpItem).toMatchObject({ source: 'http_sqlite', provider: 'sqlite', keyType: 'integer' });
    expect(byName.HttpItem.records).toEqual({ root: ITEMS });
    expect(byName.HttpBulk).toMatchObject({ source: 'http_gated', totalRecords: 2000 });
  });

  it('POST /backups starts a job that succeeds with the manifest as its result', async () => {
    const job = await runJob('/backups', {
      name: 'nightly',
      description: 'every <night>',
      tags: ['daily', 'http'],
      excludeEntityTypes: ['HttpBulk'],
      batchSize: 50,
      batchBytes: '64KiB',
    });
    expect(job.status).toBe('succeeded');
    expect(job.kind).toBe('backup');
    expect(job.result.status).toBe('Completed');
    expect(job.result.verification.totalItemCount).toBe(ITEMS + 40);
    expect(job.progress?.phase).toBe('done');
    nightlyId = job.result.id;
    const weekly = await runJob('/backups', { name: 'weekly', tags: ['weekly'], includeEntityTypes: ['HttpNote'] });
    expect(weekly.result.status).toBe('Completed');
  });

  it('GET /backups filters, sorts and pages by every BackupQuery field', async () => {
    const q = async (qs: string) => {
      const res = await call('GET', `/backups?${qs}`);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      return res.json;
    };
    const daily = await q('tags=daily&statuses=Completed&healthStatuses=Warning,Healthy,Unknown&minSizeBytes=1');
    expect(daily.backups.map((b: Json) => b.name)).toEqual(['nightly']);
    const both = await q('entityTypes=HttpNote&sortBy=name&sortDirection=asc&storageProfiles=local');
    expect(both.backups.map((b: Json) => b.name)).toEqual(['nightly', 'weekly']);
    expect((await q('searchTerm=WEEK')).backups.map((b: Json) => b.name)).toEqual(['weekly']);
    expect((await q('tags=daily&tags=weekly')).totalCount).toBe(2);
    const page = await q('dateFrom=2000-01-01&dateTo=2999-12-31T00:00:00Z&sortBy=name&skip=1&take=1');
    expect(page).toMatchObject({ totalCount: 2, skip: 1, take: 1 });
    expect(page.backups.map((b: Json) => b.name)).toEqual(['nightly']); // desc by default
    expect((await q('maxSizeBytes=1')).totalCount).toBe(0);
    // skip and take are always there; take is null when the page is unlimited.
    expect(await q('tags=daily')).toMatchObject({ skip: 0, take: null });
    // take=0 is a count-only query, as in the library and the CLI
    expect(await q('take=0')).toMatchObject({ backups: [], totalCount: 2, skip: 0, take: 0 });
    // both date bounds are inclusive, and a date-only dateTo covers that whole day (UTC)
    const day = (await call('GET', '/backups/nightly')).json.createdAt.slice(0, 10);
    const sameDay = await q(`tags=daily&dateFrom=${day}&dateTo=${day}`);
    expect(sameDay.backups.map((b: Json) => b.name)).toEqual(['nightly']);
    expect(sameDay.query).toMatchObject({ dateFrom: `${day}T00:00:00.000Z`, dateTo: `${day}T23:59:59.999Z` });
  });

  it('GET /backups answers 400 naming the bad parameter', async () => {
    expectError(await call('GET', '/backups?take=abc'), 400, 'INVALID_OPTION', 'take');
    expectError(await call('GET', '/backups?sortBy=colour'), 400, 'INVALID_OPTION', 'sortBy');
    expectError(await call('GET', '/backups?statuses=Completed,Done'), 400, 'INVALID_OPTION', 'statuses');
    expectError(await call('GET', '/backups?dateFrom=yesterday'), 400, 'INVALID_OPTION', 'dateFrom');
    // Impossible dates are refused, not rolled over to the next month.
    for (const [qs, field, problem] of [
      ['dateFrom=2024-02-30', 'dateFrom', 'February 2024 has 29 days'],
      ['dateTo=2024-02-31T10:00:00Z', 'dateTo', 'February 2024 has 29 days'],
      ['dateFrom=2024-00-10', 'dateFrom', 'there is no month 00'],
      ['dateTo=2024-04-01T23:60:00Z', 'dateTo', '23:60:00 is not a time of day'],
    ] as const) {
      const res = await call('GET', `/backups?${qs}`);
      expectError(res, 400, 'INVALID_OPTION', field);
      expect(res.json.error.message).toContain(problem);
    }
    expect((await call('GET', '/backups?dateFrom=2024-02-29&dateTo=2024-02-29T23:59:59Z')).status).toBe(200);
    expectError(await call('GET', '/backups?minSizeBytes=10&maxSizeBytes=1'), 400, 'INVALID_OPTION', 'minSizeBytes');
    expectError(await call('GET', '/backups?dateFrom=2024-12-18&dateTo=2024-12-17'), 400, 'INVALID_OPTION', 'dateFrom');
    // a date-only dateTo ends its day, so a later time on that day is not "after" it
    expect((await call('GET', '/backups?dateFrom=2024-12-17T18:00:00Z&dateTo=2024-12-17')).status).toBe(200);
    expectError(await call('GET', '/backups?take=-1'), 400, 'INVALID_OPTION', 'take');
    expectError(await call('GET', '/backups?minSizeBytes=NaN'), 400, 'INVALID_OPTION', 'minSizeBytes');
    expectError(await call('GET', '/backups?skip=1&skip=2'), 400, 'INVALID_OPTION', 'skip');
    expectError(await call('GET', '/backups?tag=daily'), 400, 'INVALID_OPTION', 'tag');
    expectError(await call('GET', '/backups?storageProfiles=nowhere'), 400, 'INVALID_OPTION', 'storageProfiles');
  });

  it('GET /backups/:ref finds a backup by name or id; GET /stats summarises the catalog', async () => {
    const byName = await call('GET', '/backups/nightly');
    expect(byName.status).toBe(200);
    expect(byName.json).toMatchObject({ id: nightlyId, description: 'every <night>', restorable: true });
    expect((await call('GET', `/backups/${nightlyId}`)).json.name).toBe('nightly');
    const stats = await call('GET', '/stats');
    expect(stats.json).toMatchObject({ totalBackups: 2, byStatus: { Completed: 2 } });
    expect(stats.json.totalSizeBytes).toBeGreaterThan(0);
  });

  it('validates request bodies, naming the field', async () => {
    expectError(await call('POST', '/backups', { name: 'x', batchSize: 0 }), 400, 'INVALID_OPTION', 'batchSize');
    expectError(await call('POST', '/backups', { name: 'x', batchBytes: 'lots' }), 400, 'INVALID_OPTION', 'batchBytes');
    expectError(await call('POST', '/backups/nightly/restore', { batchBytes: 0 }), 400, 'INVALID_OPTION', 'batchBytes');
    expectError(await call('POST', '/backups', { name: 'bad name!' }), 400, 'INVALID_OPTION', 'name');
    expectError(await call('POST', '/backups', { name: 'a', colour: 'red' }), 400, 'INVALID_OPTION', 'colour');
    expectError(await call('POST', '/backups', { tags: ['x'] }), 400, 'INVALID_OPTION', 'name');
    expectError(await call('POST', '/backups', { name: 'a', storageProfile: 'nowhere' }), 400, 'INVALID_OPTION');
    expectError(await call('POST', '/backups/nightly/restore', { mode: 'merge' }), 400, 'INVALID_OPTION', 'mode');
    expectError(
      await call('POST', '/backups/nightly/restore', { setMap: { HttpItem: '../x' } }),
      400,
      'INVALID_OPTION',
    );
    expectError(
      await call('POST', '/backups', { name: 'a', includeEntityTypes: ['Nope'] }),
      400,
      'INVALID_OPTION',
      'includeEntityTypes',
    );
    // A restore refuses names the backup does not hold, excluded ones too (a typo would restore what was meant to be skipped).
    for (const field of ['includeEntityTypes', 'excludeEntityTypes'])
      expectError(
        await call('POST', '/backups/nightly/restore', { [field]: ['HttpItm'] }),
        404,
        'ENTITY_NOT_FOUND',
        field,
      );
    const noType = await app.request('/backups', { method: 'POST', body: '{"name":"a"}' });
    expect(noType.status).toBe(415);
    const broken = await app.request('/backups', {
      method: 'POST',
      body: '{"name":',
      headers: { 'content-type': 'application/json' },
    });
    expectError({ status: broken.status, json: await broken.json() }, 400, 'INVALID_JSON');
    const huge = await app.request('/backups', {
      method: 'POST',
      body: JSON.stringify({ name: 'a', description: 'x'.repeat(2 * 1024 * 1024) }),
      headers: { 'content-type': 'application/json' },
    });
    expectError({ status: huge.status, json: await huge.json() }, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('a validate job checks the archive and the catalog then shows it healthy', async () => {
    const job = await runJob('/backups/nightly/validate', {});
    expect(job.status).toBe('succeeded');
    expect(job.result).toMatchObject({ isValid: true, healthStatus: 'Healthy', backupId: nightlyId });
    expect((await call('GET', '/backups/nightly')).json.healthStatus).toBe('Healthy');
  });

  it('restore: a dry run writes nothing, then the real restore brings the records back', async () => {
    const items = HttpItem.withRuntime(context.runtime);
    await items.removeMany(Array.from({ length: 10 }, (_, i) => i + 1));
    const dry = await runJob('/backups/nightly/restore', { dryRun: true, includeEntityTypes: ['HttpItem'] });
    expect(dry.status).toBe('succeeded');
    expect(dry.result.dryRun).toBe(true);
    expect(dry.result.entities.map((e: Json) => e.entityType)).toEqual(['HttpItem']);
    expect(await items.count()).toBe(ITEMS - 10);
    const real = await runJob('/backups/nightly/restore', { includeEntityTypes: ['HttpItem'], mode: 'upsert' });
    expect(real.status, JSON.stringify(real.error)).toBe('succeeded');
    expect(real.result).toMatchObject({ dryRun: false, backupId: nightlyId, totalRecords: ITEMS });
    expect(await items.count()).toBe(ITEMS);
    expect(real.request).toMatchObject({ includeEntityTypes: ['HttpItem'], backupId: nightlyId });
  });

  it('GET /jobs/:id/events streams progress events and a final done event', async () => {
    const started = await call('POST', '/backups', {
      name: 'streamed',
      excludeEntityTypes: ['HttpBulk'],
      batchSize: 20,
    });
    const res = await app.request(`/jobs/${started.json.jobId}/events`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text(); // the stream ends after `done`
    const events = text
      .split('\n\n')
      .filter((chunk) => chunk.includes('event:'))
      .map((chunk) => ({
        event: /^event: (.*)$/m.exec(chunk)![1],
        id: Number(/^id: (.*)$/m.exec(chunk)![1]),
        data: JSON.parse(/^data: (.*)$/m.exec(chunk)![1]!),
      }));
    const progress = events.filter((e) => e.event === 'progress');
    expect(progress[0]!.data.phase).toBe('start');
    expect(progress.some((e) => e.data.phase === 'progress' && e.data.records > 0)).toBe(true);
    expect(events.at(-1)!.event).toBe('done');
    expect(events.at(-1)!.data).toMatchObject({ status: 'succeeded', kind: 'backup', backup: 'streamed' });
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    // Reconnecting with Last-Event-ID resumes after it: only `done` is left.
    const resumed = await app.request(`/jobs/${started.json.jobId}/events`, {
      headers: { 'last-event-id': String(events.at(-2)!.id) },
    });
    expect((await resumed.text()).match(/^event: .*$/gm)).toEqual(['event: done']);
  });

  it('copies a backup to another storage profile', async () => {
    const job = await runJob(`/backups/${nightlyId}/copy`, { to: 'archive' });
    expect(job.status).toBe('succeeded');
    expect(job.result).toMatchObject({ from: 'local', to: 'archive' });
    const there = await call('GET', '/backups?storageProfiles=archive');
    expect(there.json.backups.map((b: Json) => b.id)).toEqual([nightlyId]);
    expectError(
      await call('POST', '/backups/nightly/copy', { to: 'local', fromProfile: 'local' }),
      400,
      'INVALID_OPTION',
      'to',
    );
  });
});

describe('cancellation', () => {
  it('DELETE /jobs/:id cancels a running backup, which publishes nothing; a queued job is cancelled at once', async () => {
    gate.armed = true;
    try {
      const started = await call('POST', '/backups', {
        name: 'bulk-cancel',
        includeEntityTypes: ['HttpBulk'],
        batchSize: 20,
      });
      expect(started.status).toBe(202);
      const id = started.json.jobId as string;
      const running = await waitFor(id, (j) => j.progress?.phase === 'progress');
      expect(running.status).toBe('running');

      // one job per backup name; others queue behind the running one (maxConcurrentJobs 1)
      expectError(await call('POST', '/backups', { name: 'bulk-cancel' }), 409, 'JOB_CONFLICT');
      const queued = await call('POST', '/backups/nightly/validate', {});
      expect(queued.json.job.status).toBe('queued');
      const dropped = await call('DELETE', `/jobs/${queued.json.jobId}`);
      expect(dropped.status).toBe(202);
      expect(dropped.json.status).toBe('cancelled');

      // an SSE client that goes away stops its stream; the job keeps running
      const controller = new AbortController();
      const stream = await app.request(`/jobs/${id}/events`, { signal: controller.signal });
      const reader = stream.body!.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toMatch(/event: progress/);
      controller.abort();
      let ended = false;
      for (let i = 0; i < 100 && !ended; i++) ended = (await reader.read().catch(() => ({ done: true }))).done;
      expect(ended).toBe(true);
      expect((await call('GET', `/jobs/${id}`)).json.status).toBe('running');

      const cancel = await call('DELETE', `/jobs/${id}`);
      expect(cancel.status).toBe(202);
      expect(cancel.json.cancelRequested).toBe(true);
      const done = await waitFor(id);
      expect(done.status).toBe('cancelled');
      expect(done.error.code).toBe('ABORTED');
      expect(done.result).toBeUndefined();
      expectError(await call('DELETE', `/jobs/${id}`), 409, 'JOB_FINISHED');
    } finally {
      gate.armed = false;
    }
    expect((await call('GET', '/backups?searchTerm=bulk-cancel')).json.totalCount).toBe(0);
    expectError(await call('GET', '/backups/bulk-cancel'), 404, 'BACKUP_NOT_FOUND');
    expect(existsSync(join(dir, 'backups', 'bulk-cancel'))).toBe(false);
    const leftovers = readdirSync(join(dir, 'backups'), { recursive: true }).map(String);
    expect(leftovers.filter((f) => f.includes('bulk-cancel'))).toEqual([]);
    const { json } = await call('GET', '/jobs');
    expect(json.jobs.filter((j: Json) => j.status === 'cancelled')).toHaveLength(2);
  });
});

describe('delete, maintenance and errors', () => {
  it('DELETE /backups/:ref requires ?confirm=<id> matching the backup', async () => {
    const weekly = (await call('GET', '/backups/weekly')).json;
    const missing = await call('DELETE', '/backups/weekly');
    expectError(missing, 400, 'CONFIRMATION_REQUIRED', 'confirm');
    expect(missing.json.error.details.id).toBe(weekly.id);
    expectError(await call('DELETE', `/backups/weekly?confirm=${nightlyId}`), 400, 'CONFIRMATION_REQUIRED');
    expect((await call('GET', '/backups/weekly')).status).toBe(200);
    const receipt = await call('DELETE', `/backups/weekly?confirm=${weekly.id}`);
    expect(receipt.status).toBe(200);
    expect(receipt.json).toMatchObject({ id: weekly.id, name: 'weekly', storageProfile: 'local' });
    expect(receipt.json.deletedKeys).toHaveLength(2);
    expectError(await call('GET', '/backups/weekly'), 404, 'BACKUP_NOT_FOUND');
  });

  it('answers 404 for unknown backups, jobs and routes, and 400 for malformed references', async () => {
    expectError(await call('GET', '/backups/never-made'), 404, 'BACKUP_NOT_FOUND');
    expectError(await call('POST', '/backups/never-made/restore', {}), 404, 'BACKUP_NOT_FOUND');
    expectError(await call('POST', '/backups/never-made/validate', {}), 404, 'BACKUP_NOT_FOUND');
    expectError(await call('DELETE', '/backups/never-made?confirm=x'), 404, 'BACKUP_NOT_FOUND');
    expectError(await call('GET', '/jobs/no-such-job'), 404, 'JOB_NOT_FOUND');
    expectError(await call('GET', '/nowhere'), 404, 'NOT_FOUND');
    expectError(await call('GET', '/backups/..%2Fetc'), 400, 'INVALID_OPTION', 'ref');
    expectError(
      await call('POST', '/backups/nightly/restore', { includeEntityTypes: ['Nope'] }),
      404,
      'ENTITY_NOT_FOUND',
    );
  });

  it('maintenance: cleanup and prune default to a dry run', async () => {
    const cleanup = await call('POST', '/maintenance/cleanup', { olderThanMs: 0 });
    expect(cleanup.status).toBe(200);
    expect(cleanup.json).toMatchObject({ dryRun: true, orphanArchives: [] });
    const prune = await call('POST', '/maintenance/prune', { policy: { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 } });
    expect(prune.status, JSON.stringify(prune.json)).toBe(200);
    expect(prune.json.dryRun).toBe(true);
    expect(prune.json.remove).toEqual([]); // all younger than minAgeHours (1 h)
    expect(prune.json.deleted).toEqual([]);
    expectError(await call('POST', '/maintenance/prune', {}), 400, 'INVALID_OPTION', 'policy'); // none configured
    expectError(
      await call('POST', '/maintenance/prune', { policy: { keepDaily: -1 } }),
      400,
      'INVALID_OPTION',
      'policy.keepDaily',
    );
    // A policy that keeps nothing is refused (it would delete everything but the safety rules' backups).
    const zeros = await call('POST', '/maintenance/prune', {
      policy: { keepDaily: 0, keepWeekly: 0, keepMonthly: 0, minAgeHours: 0 },
      dryRun: false,
    });
    expect(zeros.status, JSON.stringify(zeros.json)).toBe(400);
    expect(JSON.stringify(zeros.json)).toMatch(/keeps something/);
    // restic's rules and a scope: keepLast alone, only the backups named "nightly".
    const scoped = await call('POST', '/maintenance/prune', {
      policy: { keepLast: 1, minAgeHours: 0 },
      scope: { names: ['nightly'] },
    });
    expect(scoped.status, JSON.stringify(scoped.json)).toBe(200);
    const keep = scoped.json.keep as { backup: { name: string }; reasons: string[] }[];
    expect(keep.filter((k) => k.backup.name !== 'nightly').every((k) => k.reasons[0] === 'outside the scope')).toBe(
      true,
    );
    expect(keep.find((k) => k.backup.name === 'nightly')?.reasons).toContain(
      'newest healthy backup of its name in this profile',
    );
    expect(typeof scoped.json.freedBytes).toBe('number');
    expect(scoped.json.missingArchives).toEqual([]);
    // A name no backup has: a 404 naming the field and the names there, never an empty plan.
    const typo = await call('POST', '/maintenance/prune', { policy: { keepLast: 1 }, scope: { names: ['nightlyy'] } });
    expectError(typo, 404, 'BACKUP_NOT_FOUND', 'scope.names');
    expect(JSON.stringify(typo.json)).toMatch(
      /No backup is named \\"nightlyy\\".*The backup names there: .*\bnightly\b/,
    );
    // No keep rule sent and none configured: the error names the body fields and Koan.Backup.RetentionPolicy.
    const none = await call('POST', '/maintenance/prune', { policy: { protectedTags: ['release'] } });
    expectError(none, 400, 'INVALID_OPTION', 'policy');
    expect(JSON.stringify(none.json)).toMatch(
      /policy\.keepLast, .* or policy\.keepWithin in the request body\), and Koan\.Backup\.RetentionPolicy/,
    );
  });

  it('the dashboard is one self-contained page with a per-response CSP nonce', async () => {
    for (const path of ['/', '/dashboard']) {
      const res = await app.request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const csp = res.headers.get('content-security-policy')!;
      const nonce = /'nonce-([0-9a-f]+)'/.exec(csp)![1]!;
      const html = await res.text();
      expect(html).toContain(`<script nonce="${nonce}">`);
      expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\//);
      expect(html).not.toMatch(/\.innerHTML\s*=|insertAdjacentHTML|outerHTML/);
    }
  });

  it('auth: the API answers 401 without credentials; the dashboard page stays reachable; basePath prefixes routes', async () => {
    const token = 'test-token-0123456789abcdef';
    const guarded = createBackupApi(context, { auth: bearerToken(token), basePath: '/admin/backups' });
    const denied = await guarded.request('/admin/backups/stats');
    expect(denied.status).toBe(401);
    expect(denied.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await denied.json()) as Json).error.code).toBe('UNAUTHORIZED');
    const wrong = await guarded.request('/admin/backups/stats', { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const ok = await guarded.request('/admin/backups/stats', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    const page = await guarded.request('/admin/backups/dashboard');
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<meta name="koan-base" content="/admin/backups">');
    expect((await guarded.request('/stats', { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  });
});

describe('serve', () => {
  it('serves the dashboard and the API over real HTTP on 127.0.0.1, then closes', async () => {
    const server = await serve(context, { port: 0 });
    try {
      expect(server.hostname).toBe('127.0.0.1');
      expect(server.port).toBeGreaterThan(0);
      const page = await fetch(`${server.url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>Koan backups</title>');
      const stats = await fetch(`${server.url}/stats`);
      expect(stats.status).toBe(200);
      expect(((await stats.json()) as Json).totalBackups).toBe(3); // nightly, streamed and nightly's copy
      const started = await fetch(`${server.url}/backups/nightly/validate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(started.status).toBe(202);
      const events = await fetch(`${server.url}/jobs/${((await started.json()) as Json).jobId}/events`);
      expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(await events.text()).toMatch(/^event: done$/m);
      // a DNS-rebinding page reaches 127.0.0.1 under its own host name: refused
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = request(`${server.url}/stats`, { headers: { host: 'evil.example:80' } }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on('error', reject).end();
      });
      expect(status).toBe(421);
    } finally {
      await server.close();
    }
    await expect(serve(context, { port: 0, hostname: '0.0.0.0' })).rejects.toThrow(/without auth/);
  });

  it('refuses unsafe options with a KoanError and a stable code, so callers (the CLI) can map them', async () => {
    const refused = await serve(context, { port: 0, hostname: '0.0.0.0' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(KoanError);
    expect(refused).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'auth', hostname: '0.0.0.0' } });
    let short: unknown;
    try {
      bearerToken('too-short');
    } catch (e) {
      short = e;
    }
    expect(short).toBeInstanceOf(KoanError);
    expect(short).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'token', minLength: MIN_TOKEN_LENGTH } });
  });
});

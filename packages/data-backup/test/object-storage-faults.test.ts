/**
 * Fault injection at the backup level: full backups (several, on a deterministic schedule) run through the storage
 * packages' fault proxy (503s, connection resets before forwarding, response bodies cut in half) in front of s3rver
 * and azurite. Every attempt must either complete (then it validates and restores exactly) or reject with a
 * BackupError/StorageError; after every attempt the catalog, read over a clean link, lists only backups whose
 * archives validate. Restores and validations through a link that cuts bodies must fail (without retries) or
 * resume to verified bytes (with retries), never accept short data. Leftovers of the failed attempts are then found
 * and removed. Counts are printed like packages/storage-s3/test/faults.test.ts does.
 *
 * s3rver cannot list or abort multipart uploads (see /work/shared/DEPENDENCIES.md), so incomplete S3 uploads left by
 * failed attempts are not findable here (packages/storage-s3/test/s3-multipart.test.ts covers that with a fake).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineEntity, type Entity, t, unregisterEntity } from '@koan/data';
import {
  BackupContext,
  BackupDiscoveryService,
  BackupError,
  backupAllEntities,
  restoreAllEntities,
} from '@koan/data-backup';
import { cleanupLeftovers } from '@koan/data-backup/maintenance';
import { StorageError, StorageProfiles } from '@koan/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AzuriteHandle, startAzurite } from '../../storage-azure/test/azurite-harness.js';
import { type Fault, type FaultProxy, type ProxyRequest, startFaultProxy } from '../../storage-s3/test/fault-proxy.js';
import { type S3rverHandle, startS3rver } from '../../storage-s3/test/s3rver-harness.js';
import { makeContext } from './helpers.js';

const MiB = 1024 * 1024;
const KINDS: Fault[] = ['503', 'reset', 'truncate'];

const FxUser = defineEntity({
  name: 'FxUser',
  key: 'id',
  source: 'fx_sqlite',
  fields: { id: t.integer(), email: t.string(), at: t.datetime() },
});
const FxBlob = defineEntity({
  name: 'FxBlob',
  key: 'id',
  source: 'fx_sqlite',
  fields: { id: t.integer(), userId: t.integer().references('FxUser', 'id'), data: t.string() },
});
const FX = ['FxUser', 'FxBlob'];
const BLOB_ROWS = 14_000; // ~7 MiB of JSONL: two S3 parts (5 MiB), two Azure blocks (4 MiB) when uncompressed

function blobRow(i: number) {
  let x = (i * 2654435761) >>> 0;
  let data = '';
  for (let k = 0; k < 60; k++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data += x.toString(36).padStart(7, '0').slice(0, 7);
  }
  return { id: i + 1, userId: (i % 500) + 1, data };
}

/**
 * The schedule, one backup per step: `off` (baseline), `flaky-K` (every Kth request faults, the kinds in turn: the
 * SDK retries through), `burst` (10 faults in a row out of every 16 requests: more than the 3 retries, so it can fail
 * part-way through an upload), `outage` (everything fails) and `die` (the first PUT gets through, then everything
 * fails: a one-request archive lands without its sidecar, or a multi-part upload is left incomplete).
 * Uncompressed steps write ~7 MiB archives: several S3 parts / Azure blocks.
 */
type Mode = 'off' | 'flaky-3' | 'flaky-2' | 'flaky-5' | 'burst' | 'outage' | 'die' | 'truncate-gets';
const ATTEMPTS: { mode: Mode; compress: boolean }[] = [
  { mode: 'off', compress: false },
  { mode: 'flaky-3', compress: true },
  { mode: 'burst', compress: false },
  { mode: 'flaky-2', compress: false },
  { mode: 'outage', compress: true },
  { mode: 'die', compress: true },
  { mode: 'flaky-5', compress: true },
  { mode: 'die', compress: false },
];

/**
 * The time budget of one heavy test: one ~7 MiB backup through a faulty proxy with its restore and validations (one
 * step of the schedule), or the cut-body reads, or the cleanup. Beside two CPU hogs (`node -e 'for(;;){}'` x2) and
 * another test run on a 2-core machine, a step took 5-42 s and the whole schedule 150-180 s: over half of this budget
 * when it was one test's for all eight steps. Each step now has it on its own. No outcome depends on time.
 */
const HEAVY = { timeout: 300_000 };

const totals = { faultsInjected: 0, retriedToSuccess: 0, failedCleanly: 0, failedUncleanly: 0, partialVisible: 0 };

let env: Awaited<ReturnType<typeof makeContext>>;
let want: Record<string, unknown>[][];
const entities = (): Entity[] => [FxUser, FxBlob].map((e) => e.withRuntime(env.context.runtime));
const sortById = (xs: Record<string, unknown>[]) =>
  [...xs].sort((a, b) => ((a.id as number) < (b.id as number) ? -1 : 1));
const snapshotAll = async () => Promise.all(entities().map(async (e) => sortById(await e.all())));

let tmp: string;
let previousTmp: string | undefined;

beforeAll(async () => {
  // Spool files of failed and cancelled work land in a private temp dir, so "none left" is checked exactly.
  previousTmp = process.env.TMPDIR;
  tmp = mkdtempSync(join(tmpdir(), 'koan-osf-test-'));
  process.env.TMPDIR = tmp;
  env = await makeContext({ fx_sqlite: { provider: 'sqlite', settings: { path: 'fx.sqlite' } } });
  await FxUser.withRuntime(env.context.runtime).upsertMany(
    Array.from({ length: 500 }, (_, i) => ({ id: i + 1, email: `u${i}@x.io`, at: '2024-02-03T04:05:06.789Z' })),
  );
  const blobs = FxBlob.withRuntime(env.context.runtime);
  for (let i = 0; i < BLOB_ROWS; i += 5000)
    await blobs.upsertMany(Array.from({ length: Math.min(5000, BLOB_ROWS - i) }, (_, k) => blobRow(i + k)));
  want = await snapshotAll();
});

afterAll(async () => {
  await env?.cleanup();
  for (const n of FX) unregisterEntity(n);
  const leftover = readdirSync(tmp).filter((f) => f.startsWith('koan-spool-'));
  if (previousTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previousTmp;
  rmSync(tmp, { recursive: true, force: true });
  expect(leftover).toEqual([]);
  console.log(`[backup fault injection] total: ${JSON.stringify(totals)}`);
});

interface Backend {
  readonly name: 's3' | 'azure';
  start(): Promise<{ target: string; settings: (endpoint?: string) => Record<string, unknown>; stop(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 's3',
    async start() {
      const server: S3rverHandle = await startS3rver('fx');
      return {
        target: server.endpoint,
        settings: (endpoint = server.endpoint) => ({
          ...server.settings,
          endpoint,
          conditionalPut: false, // s3rver ignores If-None-Match
          multipartManagement: false, // s3rver has no ListMultipartUploads / AbortMultipartUpload
          partSizeBytes: 5 * MiB,
        }),
        stop: () => server.stop(),
      };
    },
  },
  {
    name: 'azure',
    async start() {
      const server: AzuriteHandle = await startAzurite();
      return {
        target: `http://127.0.0.1:${server.port}`,
        settings: (endpoint) => ({
          connectionString: server.connectionString(endpoint ? `${endpoint}/devstoreaccount1` : undefined),
          containerName: 'fx-backups',
          createContainer: true,
          blockSizeBytes: 4 * MiB,
        }),
        stop: () => server.stop(),
      };
    },
  },
];

describe.each(backends)('backups through a faulty link: $name', (backend) => {
  const provider = backend.name === 's3' ? 's3' : 'azure-blob';
  let mode: Mode = 'off';
  let faultNo = 0;
  let putPassed = false;
  const cut = new Set<string>();
  const schedule = (req: ProxyRequest): Fault | undefined => {
    const flaky = /^flaky-(\d)$/.exec(mode);
    if (flaky && req.n % Number(flaky[1]) === 1) return KINDS[faultNo++ % KINDS.length];
    if (mode === 'burst' && req.n % 16 >= 6) return KINDS[faultNo++ % KINDS.length];
    if (mode === 'outage') return req.n % 2 ? '503' : 'reset';
    if (mode === 'die') {
      if (!putPassed && req.method === 'PUT') {
        putPassed = true;
        return undefined;
      }
      return req.n % 2 ? '503' : 'reset';
    }
    if (mode === 'truncate-gets' && req.method === 'GET' && req.url.split('?')[0]!.endsWith('.zip')) {
      // Cut the first response from each archive (whole or ranged); the resumed read then goes through.
      if (!cut.has(req.url)) {
        cut.add(req.url);
        return 'truncate';
      }
    }
    return undefined;
  };
  let server: Awaited<ReturnType<Backend['start']>>;
  let proxy: FaultProxy;
  let faulty: StorageProfiles;
  let faultyNoRetry: StorageProfiles;
  let clean: StorageProfiles;
  /** Backups through the proxy (with and without retries) and the clean ground truth share the data runtime. */
  let viaProxy: BackupContext;
  let viaProxyNoRetry: BackupContext;
  let direct: BackupContext;
  const stats = { faultsInjected: 0, retriedToSuccess: 0, failedCleanly: 0, failedUncleanly: 0, partialVisible: 0 };
  const succeeded = new Set<string>();
  const outcomes: string[] = [];
  const validated = new Set<string>();
  const injected = () => proxy.counts['503'] + proxy.counts.reset + proxy.counts.truncate;

  /** Runs one operation under `m`, attributing the faults injected meanwhile to it. */
  async function op<T>(m: Mode, fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    const before = injected();
    mode = m;
    putPassed = false;
    try {
      const value = await fn();
      if (injected() > before) stats.retriedToSuccess++;
      return { ok: true, value };
    } catch (error) {
      if (error instanceof BackupError || error instanceof StorageError) stats.failedCleanly++;
      else {
        stats.failedUncleanly++;
        console.error('unclean failure', error);
      }
      return { ok: false, error };
    } finally {
      mode = 'off';
    }
  }

  /** Over the clean link: every listed, restorable backup is one that succeeded, and its archive validates. */
  async function checkCatalog(): Promise<void> {
    const discovery = new BackupDiscoveryService(direct);
    const catalog = await discovery.discoverAllBackups();
    stats.partialVisible += catalog.unreadable.length;
    for (const b of catalog.backups) {
      if (!b.restorable) {
        expect(b.status).toBe('Failed'); // a record of a failed attempt: no archive, never restorable
        expect(succeeded.has(b.id)).toBe(false);
        continue;
      }
      if (!succeeded.has(b.id)) {
        stats.partialVisible++;
        continue;
      }
      if (validated.has(b.id)) continue;
      const v = await discovery.validateBackup(b.id, { store: false });
      if (!v.isValid) stats.partialVisible++;
      validated.add(b.id);
    }
    for (const id of succeeded) expect(catalog.backups.some((b) => b.id === id && b.restorable)).toBe(true);
  }

  beforeAll(async () => {
    server = await backend.start();
    proxy = await startFaultProxy({ target: server.target, schedule });
    const load = (settings: Record<string, unknown>) =>
      StorageProfiles.load({ profiles: { [backend.name]: { provider, settings } } }, { cwd: env.dir });
    const retry = { retryBaseDelayMs: 5, retryMaxDelayMs: 50 };
    faulty = await load({ ...server.settings(proxy.url), ...retry, maxRetries: 3 });
    faultyNoRetry = await load({ ...server.settings(proxy.url), ...retry, maxRetries: 0 });
    clean = await load(server.settings());
    const runtime = env.context.runtime;
    viaProxy = new BackupContext({ runtime, storage: faulty });
    viaProxyNoRetry = new BackupContext({ runtime, storage: faultyNoRetry });
    direct = new BackupContext({ runtime, storage: clean });
  });

  afterAll(async () => {
    stats.faultsInjected = injected();
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += stats[k];
    console.log(`[backup fault injection] ${backend.name}: ${JSON.stringify(stats)} attempts: ${outcomes.join(', ')}`);
    await Promise.allSettled([faulty?.close(), faultyNoRetry?.close(), clean?.close()]);
    await proxy?.stop();
    await server?.stop();
  });

  // One test per step of the schedule, each with its own budget: a loaded machine slows every step, and a budget for
  // the whole schedule would be the sum of them.
  for (const [i, { mode: m, compress }] of ATTEMPTS.entries())
    it(
      `backup ${i} (${m}${compress ? '' : ', multipart'}) completes (then validates and restores exactly) or fails cleanly; 0 partial visible after it`,
      HEAVY,
      async () => {
        const result = await op(m, () =>
          backupAllEntities(viaProxy, `fx-${i}`, { includeEntityTypes: FX, compressData: compress, batchSize: 2000 }),
        );
        outcomes.push(
          `${m}${compress ? '' : '/multipart'}: ${result.ok ? 'ok' : (result.error as { code?: string }).code}`,
        );
        if (result.ok) {
          expect(result.value.status).toBe('Completed');
          succeeded.add(result.value.id);
        } else if (m === 'off') throw result.error;
        await checkCatalog();
        if (result.ok) {
          // Restore through the same flaky schedule: exact records, or a clean failure (then once more without faults).
          const restored = await op(m === 'outage' ? 'off' : m, () =>
            restoreAllEntities(viaProxy, `fx-${i}`, { backupId: result.value.id, replaceExisting: true }),
          );
          if (!restored.ok)
            await restoreAllEntities(direct, `fx-${i}`, { backupId: result.value.id, replaceExisting: true });
          expect(await snapshotAll()).toEqual(want);
        }
      },
    );

  it('over the whole schedule: no unclean failure, nothing partial visible, retries got through and the outage failed', () => {
    expect(outcomes).toHaveLength(ATTEMPTS.length); // every step ran (a failed step fails its own test above)
    expect(stats.failedUncleanly).toBe(0);
    expect(stats.partialVisible).toBe(0);
    expect(succeeded.size).toBeGreaterThanOrEqual(3);
    expect(stats.failedCleanly).toBeGreaterThanOrEqual(1); // the outage at least
    expect(stats.retriedToSuccess).toBeGreaterThanOrEqual(1);
  });

  it(
    'a validation or restore through a link that cuts bodies fails without retries and resumes to verified bytes with them',
    HEAVY,
    async () => {
      let id = [...succeeded][0];
      if (!id) {
        id = (await backupAllEntities(viaProxy, 'fx-t', { includeEntityTypes: FX, compressData: false })).id;
        succeeded.add(id);
      }
      const discovery = new BackupDiscoveryService(viaProxyNoRetry);
      const before = injected();
      cut.clear();
      const v = await op('truncate-gets', () => discovery.validateBackup(id, { storageProfile: backend.name }));
      // Never "valid" from short data: it throws, or reports the archive invalid.
      expect(v.ok && v.value.isValid).toBe(false);
      cut.clear();
      const r = await op('truncate-gets', () =>
        restoreAllEntities(viaProxyNoRetry, 'x', { backupId: id, replaceExisting: true }),
      );
      expect(r.ok).toBe(false);
      expect(injected()).toBeGreaterThan(before);
      expect(await snapshotAll()).toEqual(want); // a failed restore wrote nothing (or rolled back)
      // A cut read says nothing about the archive: the catalog must not record it as damaged.
      const info = await new BackupDiscoveryService(direct).getBackup(id);
      expect(info.healthStatus).not.toBe('Critical');

      cut.clear();
      const resumed = await op('truncate-gets', () =>
        new BackupDiscoveryService(viaProxy).validateBackup(id, { storageProfile: backend.name }),
      );
      expect(resumed.ok && resumed.value.isValid).toBe(true);
      cut.clear();
      const restored = await op('truncate-gets', () =>
        restoreAllEntities(viaProxy, 'x', { backupId: id, replaceExisting: true }),
      );
      expect(restored.ok).toBe(true);
      expect(await snapshotAll()).toEqual(want);
    },
  );

  it(
    'finds and removes what the failed attempts left behind; afterwards nothing is left and every backup still validates',
    HEAVY,
    async () => {
      const first = await cleanupLeftovers(direct, { olderThanMs: 0 });
      console.log(
        `[backup fault injection] ${backend.name} leftovers removed: ${JSON.stringify({
          incompleteUploads: first.incompleteUploads.length,
          orphanArchives: first.orphanArchives.length,
        })}`,
      );
      // The `die` steps left something behind: an archive without its sidecar at least (s3rver cannot list the
      // incomplete multipart upload; azurite lists the blob that exists only as uncommitted blocks).
      expect(first.orphanArchives.length + first.incompleteUploads.length).toBeGreaterThanOrEqual(1);
      const second = await cleanupLeftovers(direct, { olderThanMs: 0, dryRun: true });
      expect(second.incompleteUploads).toEqual([]);
      // Nothing at a final key is deleted, and uploads are atomic even through this link, so every archive whose
      // sidecar never landed is whole: a backup, kept (and adoptable).
      expect(second.orphanArchives.every((o) => o.state === 'complete' && o.action === 'kept')).toBe(true);
      expect(second.orphanArchives.map((o) => o.key).sort()).toEqual(first.orphanArchives.map((o) => o.key).sort());
      // Leftover cleanup never touched a published backup.
      validated.clear();
      await checkCatalog();
      expect(stats.partialVisible).toBe(0);
    },
  );
});

/**
 * Progress events and cancellation (AbortSignal) of backups and restores, on a real SQLite file and memory.
 * TMPDIR points at a private folder so spool temp files of this file's backups can be counted.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import {
  BackupDiscoveryService,
  type BackupError,
  BackupService,
  type ProgressEvent,
  RestoreService,
} from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, makeContext, progressLog } from './helpers.js';

const PcItem = defineEntity({
  name: 'PcItem',
  key: 'id',
  source: 'pc_sqlite',
  fields: { id: t.integer(), body: t.string() },
});
const PcPart = defineEntity({
  name: 'PcPart',
  key: 'id',
  source: 'pc_sqlite',
  fields: { id: t.integer(), itemId: t.integer().references('PcItem') },
});
const PcMemo = defineEntity({
  name: 'PcMemo',
  key: 'id',
  source: 'pc_mem',
  fields: { id: t.integer(), text: t.string() },
});

let env: Awaited<ReturnType<typeof makeContext>>;
let spoolDir: string;
const previousTmp = process.env.TMPDIR;
const ITEMS = 4000;
const PARTS = 6000;

beforeAll(async () => {
  env = await makeContext({
    pc_sqlite: { provider: 'sqlite', settings: { path: 'pc.sqlite' } },
    pc_mem: { provider: 'memory' },
  });
  spoolDir = join(env.dir, 'tmp');
  mkdirSync(spoolDir);
  process.env.TMPDIR = spoolDir;
  const rt = env.context.runtime;
  await PcItem.withRuntime(rt).upsertMany(
    Array.from({ length: ITEMS }, (_, i) => ({ id: i + 1, body: `item ${i} `.repeat(8) })),
  );
  await PcPart.withRuntime(rt).upsertMany(
    Array.from({ length: PARTS }, (_, i) => ({ id: i + 1, itemId: (i % ITEMS) + 1 })),
  );
  await PcMemo.withRuntime(rt).upsertMany(Array.from({ length: 1000 }, (_, i) => ({ id: i + 1, text: `memo ${i}` })));
});
afterAll(async () => {
  process.env.TMPDIR = previousTmp;
  for (const n of ['PcItem', 'PcPart', 'PcMemo']) unregisterEntity(n);
  await env.cleanup();
});

function checkProgress(events: readonly ProgressEvent[], operation: 'backup' | 'restore', total: number): void {
  expect(events[0]!.phase).toBe('start');
  expect(events.at(-1)!.phase).toBe('done');
  expect(events.every((e) => e.operation === operation)).toBe(true);
  const progress = events.filter((e) => e.phase === 'progress');
  expect(progress.length).toBeGreaterThan(5);
  for (const e of progress) {
    expect(e.entity).toMatch(/^Pc/);
    expect(e.records).toBeGreaterThan(0);
    expect(e.records).toBeLessThanOrEqual(e.totalRecords!);
    expect(e.overallTotalRecords).toBe(total);
    expect(e.bytes).toBeGreaterThan(0);
    expect(e.rate).toBeGreaterThan(0);
    expect(e.etaMs).toBeGreaterThanOrEqual(0);
  }
  // counters only grow
  for (let i = 1; i < events.length; i++) {
    expect(events[i]!.overallRecords).toBeGreaterThanOrEqual(events[i - 1]!.overallRecords);
    expect(events[i]!.bytes).toBeGreaterThanOrEqual(events[i - 1]!.bytes);
  }
  expect(events.at(-1)!.overallRecords).toBe(total);
  const done = events.filter((e) => e.phase === 'entity-done');
  expect(done.map((e) => e.records).reduce((a, b) => a + b, 0)).toBe(total);
}

describe('progress events', () => {
  it('throughout a backup: current entity, records, bytes, rate and ETA', async () => {
    const log = progressLog();
    const m = await new BackupService(env.context).backupAllEntities('progress', {
      batchSize: 200,
      progressIntervalMs: 0,
      onProgress: log.listener,
    });
    checkProgress(log.events, 'backup', ITEMS + PARTS + 1000);
    expect(log.events.at(-1)!.bytes).toBe(m.verification.totalSizeBytes);
    expect(log.events.filter((e) => e.phase === 'entity-start').map((e) => e.entity)).toEqual([
      'PcItem',
      'PcPart',
      'PcMemo',
    ]);
  });

  it('throughout a restore: current entity, records, bytes, rate and ETA', async () => {
    const log = progressLog();
    const report = await new RestoreService(env.context).restoreAllEntities('progress', {
      batchSize: 200,
      progressIntervalMs: 0,
      onProgress: log.listener,
    });
    checkProgress(log.events, 'restore', ITEMS + PARTS + 1000);
    expect(report.totalRecords).toBe(ITEMS + PARTS + 1000);
  });

  it('throughout a validation: the same phases, per entity set, counters that only grow to the totals', async () => {
    const log = progressLog();
    const m = await new BackupService(env.context).backupAllEntities('progress-validate', { batchSize: 200 });
    const result = await new BackupDiscoveryService(env.context).validateBackup(m.id, { onProgress: log.listener });
    expect(result.isValid).toBe(true);
    // The validation's own interval throttles progress events; phases always come through.
    const events = log.events;
    expect(events[0]!.phase).toBe('start');
    expect(events.at(-1)!.phase).toBe('done');
    expect(events.filter((e) => e.phase === 'entity-start').map((e) => [e.entity, e.set])).toEqual([
      ['PcItem', 'root'],
      ['PcMemo', 'root'],
      ['PcPart', 'root'],
    ]);
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.overallRecords).toBeGreaterThanOrEqual(events[i - 1]!.overallRecords);
      expect(events[i]!.bytes).toBeGreaterThanOrEqual(events[i - 1]!.bytes);
    }
    expect(events.at(-1)).toMatchObject({
      operation: 'validate',
      overallRecords: ITEMS + PARTS + 1000,
      overallTotalRecords: ITEMS + PARTS + 1000,
      bytes: m.verification.totalSizeBytes,
    });
    const done = events.filter((e) => e.phase === 'entity-done');
    expect(done.map((e) => e.records).reduce((a, b) => a + b, 0)).toBe(ITEMS + PARTS + 1000);
    expect(done.every((e) => e.records === e.totalRecords)).toBe(true);
  });

  it('cost no counting without a listener, and one count per entity set with one', async () => {
    // An exact count can be a full scan (InnoDB): it is done for progress only, once per set.
    const rt = env.context.runtime;
    const adapters = [await rt.adapter('pc_sqlite'), await rt.adapter('pc_mem')];
    let counts = 0;
    const restore: (() => void)[] = [];
    for (const a of adapters) {
      const count = a.count.bind(a);
      const readSnapshot = a.readSnapshot.bind(a);
      a.count = (...args) => {
        counts++;
        return count(...args);
      };
      a.readSnapshot = (fn) =>
        readSnapshot((reader) =>
          fn(
            new Proxy(reader, {
              get: (target, key) => {
                if (key === 'count')
                  return (...args: Parameters<typeof reader.count>) => {
                    counts++;
                    return target.count(...args);
                  };
                const value = Reflect.get(target, key);
                return typeof value === 'function' ? value.bind(target) : value;
              },
            }),
          ),
        );
      restore.push(() => {
        a.count = count;
        a.readSnapshot = readSnapshot;
      });
    }
    try {
      const quiet = await new BackupService(env.context).backupAllEntities('uncounted');
      expect(quiet.verification.totalItemCount).toBe(ITEMS + PARTS + 1000);
      expect(counts).toBe(0);
      const log = progressLog();
      await new BackupService(env.context).backupAllEntities('counted', { onProgress: log.listener });
      expect(counts).toBe(3);
      const starts = log.events.filter((e) => e.phase === 'entity-start');
      expect(starts.map((e) => [e.entity, e.totalRecords])).toEqual([
        ['PcItem', ITEMS],
        ['PcPart', PARTS],
        ['PcMemo', 1000],
      ]);
    } finally {
      for (const undo of restore) undo();
    }
  });

  it('are throttled by default (phase changes are always reported)', async () => {
    const log = progressLog();
    await new BackupService(env.context).backupAllEntities('throttled', { batchSize: 50, onProgress: log.listener });
    expect(log.events.filter((e) => e.phase === 'progress').length).toBeLessThan((ITEMS + PARTS + 1000) / 50);
    expect(log.events.filter((e) => e.phase === 'entity-done')).toHaveLength(3);
  });
});

describe('cancellation through AbortSignal', () => {
  const backupsDir = () => join(env.dir, 'backups');

  it('a cancelled backup publishes nothing: no archive, no sidecar, no temp leftovers', async () => {
    for (const maxConcurrency of [1, 3]) {
      const before = filesUnder(backupsDir()).filter((f) => !f.startsWith('.koan-tmp'));
      const controller = new AbortController();
      let seen = 0;
      const err = (await new BackupService(env.context)
        .backupAllEntities(`cancelled-${maxConcurrency}`, {
          maxConcurrency,
          batchSize: 100,
          progressIntervalMs: 0,
          signal: controller.signal,
          onProgress: (e) => {
            if (e.phase === 'progress' && e.entity === 'PcPart' && ++seen === 3) controller.abort();
          },
        })
        .catch((e) => e)) as BackupError;
      expect(err.code).toBe('ABORTED');
      expect(err.message).toMatch(/nothing was published/);
      expect(filesUnder(backupsDir()).filter((f) => !f.startsWith('.koan-tmp'))).toEqual(before);
      expect(filesUnder(join(backupsDir(), '.koan-tmp'))).toEqual([]);
      expect(filesUnder(spoolDir)).toEqual([]);
      const catalog = await new BackupDiscoveryService(env.context).discoverAllBackups();
      expect(catalog.backups.filter((b) => b.name.startsWith('cancelled'))).toEqual([]);
    }
  });

  it('a signal aborted before the start does nothing at all', async () => {
    const err = (await new BackupService(env.context)
      .backupAllEntities('never', { signal: AbortSignal.abort() })
      .catch((e) => e)) as BackupError;
    expect(err.code).toBe('ABORTED');
    expect(filesUnder(join(env.dir, 'backups', 'never'))).toEqual([]);
  });

  it('a cancelled restore rolls back the entity in flight where the provider is transactional', async () => {
    const rt = env.context.runtime;
    await PcItem.withRuntime(rt).upsertMany([{ id: 99_999, body: 'kept' }]);
    await PcPart.withRuntime(rt).removeMany([1, 2, 3]);
    const controller = new AbortController();
    const err = (await new RestoreService(env.context)
      .restoreAllEntities('progress', {
        includeEntityTypes: ['PcItem', 'PcPart'],
        replaceExisting: true,
        batchSize: 100,
        progressIntervalMs: 0,
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === 'progress' && e.entity === 'PcPart' && e.records >= 1000) controller.abort();
        },
      })
      .catch((e) => e)) as BackupError;
    expect(err.code).toBe('ABORTED');
    // SQLite: the source's transaction (PcItem replaced, PcPart in flight) was rolled back
    expect(await PcItem.withRuntime(rt).count()).toBe(ITEMS + 1);
    expect(await PcItem.withRuntime(rt).get(99_999)).toEqual({ id: 99_999, body: 'kept' });
    expect(await PcPart.withRuntime(rt).count()).toBe(PARTS - 3);
    await PcItem.withRuntime(rt).remove(99_999);
  });
});

import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, Entity, t } from '@koan/data';
import { BackupDiscoveryService, BackupMaintenanceService, backupEntity, type MaintenanceRun } from '@koan/data-backup';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeContext } from './helpers.js';

/** The second argument of `onError` (index.ts does not re-export the `BackgroundFailure` type). */
type BackgroundFailure = Parameters<
  NonNullable<NonNullable<ConstructorParameters<typeof BackupMaintenanceService>[1]>['onError']>
>[1];

const fields = { id: t.integer(), label: t.string() };
const schema = buildSchema({ name: 'MaintSvcNote', key: 'id', fields }, 'declared');
let env: Awaited<ReturnType<typeof makeContext>>;
beforeEach(async () => {
  env = await makeContext(
    { default: { provider: 'memory' } },
    { config: { retentionPolicy: { keepDaily: 1, keepWeekly: 0, keepMonthly: 0, minAgeHours: 0 } } },
  );
});
afterEach(async () => env.cleanup());

describe('background maintenance service', () => {
  it('runOnce cleans up leftovers (an unopenable archive at a final key is kept), then applies the retention policy', async () => {
    const Note = new Entity(schema, fields).withRuntime(env.context.runtime);
    await Note.upsert({ id: 1, label: 'a' });
    await backupEntity(env.context, Note, 'notes');
    const newest = await backupEntity(env.context, Note, 'notes');
    const orphanDir = join(env.dir, 'backups', 'crashed');
    mkdirSync(orphanDir, { recursive: true });
    const orphan = join(orphanDir, 'crashed-20240101-000000-deadbeef.zip');
    writeFileSync(orphan, 'partial');
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(orphan, old, old);
    const runs: MaintenanceRun[] = [];
    const service = new BackupMaintenanceService(env.context, { onRun: (r) => runs.push(r) });
    const run = await service.runOnce();
    expect(run.error).toBeUndefined();
    expect(run.leftovers.orphanArchives).toMatchObject([
      { key: 'crashed/crashed-20240101-000000-deadbeef.zip', state: 'damaged', action: 'kept' },
    ]);
    expect(existsSync(orphan)).toBe(true);
    expect(run.retention).toEqual({ kept: 1, deleted: 1 });
    expect(runs).toHaveLength(1);
    const left = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(left.backups.map((b) => b.id)).toEqual([newest.id]);
    await service.stop();
  });

  it('runs scheduled backups on their cron expression until stopped', async () => {
    const Note = new Entity(schema, fields).withRuntime(env.context.runtime);
    await Note.upsert({ id: 1, label: 'a' });
    const names: string[] = [];
    const service = new BackupMaintenanceService(env.context, {
      intervalMs: 3_600_000,
      schedules: [
        {
          cron: '* * * * * *', // every second
          name: 'scheduled-{date}',
          run: async (name) => {
            names.push(name);
            await backupEntity(env.context, Note, name);
          },
        },
      ],
    });
    service.start();
    for (let i = 0; i < 50 && names.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    await service.stop();
    expect(names[0]).toMatch(/^scheduled-\d{4}-\d{2}-\d{2}$/);
    const count = names.length;
    await new Promise((r) => setTimeout(r, 1200));
    expect(names.length).toBe(count); // stopped: no more runs
    const catalog = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(catalog.backups.some((b) => b.name === names[0] && b.status === 'Completed')).toBe(true);
  });

  it('reports a failed scheduled backup to onError with the schedule and backup name', async () => {
    const failures: { error: unknown; failure: BackgroundFailure }[] = [];
    const runs: MaintenanceRun[] = [];
    const boom = new Error('source unreachable');
    let calls = 0;
    const service = new BackupMaintenanceService(env.context, {
      intervalMs: 3_600_000,
      schedules: [
        {
          cron: '* * * * * *',
          name: 'nightly',
          run: async () => {
            calls++;
            throw boom;
          },
        },
      ],
      onRun: (r) => runs.push(r),
      onError: (error, failure) => failures.push({ error, failure }),
    });
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      service.start();
      for (let i = 0; i < 50 && failures.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      await service.stop();
      expect(failures[0]).toEqual({
        error: boom,
        failure: { kind: 'schedule', schedule: 'nightly', cron: '* * * * * *', name: 'nightly' },
      });
      expect(failures).toHaveLength(calls);
      expect(runs).toEqual([]); // onRun is for maintenance passes
      expect(consoleError).not.toHaveBeenCalled();
    } finally {
      consoleError.mockRestore();
    }
  });

  it('without onError, a failed scheduled backup is written to console.error with its names', async () => {
    const service = new BackupMaintenanceService(env.context, {
      intervalMs: 3_600_000,
      schedules: [
        {
          cron: '* * * * * *',
          name: 'nightly-{date}',
          run: () => Promise.reject(new Error('disk full')),
        },
      ],
    });
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      service.start();
      for (let i = 0; i < 50 && consoleError.mock.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      await service.stop();
      const [message, error] = consoleError.mock.calls[0] ?? [];
      expect(message).toMatch(
        /^\[koan-backup\] Scheduled backup "nightly-\d{4}-\d{2}-\d{2}" \(schedule "nightly-\{date\}", cron "\* \* \* \* \* \*"\) failed:$/,
      );
      expect(error).toMatchObject({ message: 'disk full' });
    } finally {
      consoleError.mockRestore();
    }
  });

  it('reports a failed maintenance pass to onRun and onError; a timer pass with neither goes to console.error', async () => {
    const broken = await makeContext(
      { default: { provider: 'memory' } },
      { profiles: { local: { provider: 'local', settings: { root: 'not-a-dir' } } } },
    );
    try {
      writeFileSync(join(broken.dir, 'not-a-dir'), 'a file where the backup folder should be');
      const runs: MaintenanceRun[] = [];
      const failures: BackgroundFailure[] = [];
      const service = new BackupMaintenanceService(broken.context, {
        onRun: (r) => runs.push(r),
        onError: (_e, f) => failures.push(f),
      });
      const run = await service.runOnce();
      expect(run.error).toBeTruthy();
      expect(runs).toEqual([run]);
      expect(failures).toEqual([{ kind: 'maintenance', run }]);

      const silent = new BackupMaintenanceService(broken.context, { intervalMs: 50 });
      const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
      try {
        expect((await silent.runOnce()).error).toBeTruthy(); // a direct call returns the failure: nothing printed
        expect(consoleError).not.toHaveBeenCalled();
        silent.start();
        for (let i = 0; i < 50 && consoleError.mock.calls.length === 0; i++)
          await new Promise((r) => setTimeout(r, 20));
        await silent.stop();
        expect(consoleError.mock.calls[0]?.[0]).toBe('[koan-backup] Backup maintenance pass failed:');
      } finally {
        consoleError.mockRestore();
      }
    } finally {
      await broken.cleanup();
    }
  });
});

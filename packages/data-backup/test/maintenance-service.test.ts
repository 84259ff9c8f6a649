import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Entity, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { BackupContext, BackupDiscoveryService, backupEntity, restoreEntity } from '@koan/data-backup';
import { applyRetention, BackupMaintenanceService, type MaintenanceRun } from '@koan/data-backup/maintenance';
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

describe('retention over what storage holds', () => {
  it('keeps the newest healthy backup whose archive exists: a newer one whose archive is gone is reported, never the only one kept', async () => {
    const Note = new Entity(schema, fields).withRuntime(env.context.runtime);
    await Note.upsert({ id: 1, label: 'a' });
    const older = await backupEntity(env.context, Note, 'nightly');
    const newest = await backupEntity(env.context, Note, 'nightly');
    rmSync(join(env.dir, 'backups', newest.archive!.key)); // the sidecar is still listed; the archive is gone
    const plan = await applyRetention(env.context, { policy: { keepLast: 1, minAgeHours: 0 }, dryRun: true });
    expect(plan.keep.map((k) => k.backup.id)).toEqual([older.id]);
    expect(plan.keep[0]!.reasons).toEqual([
      `newest healthy backup of its name in this profile whose archive exists (the newer ${newest.id} from ${newest.createdAt} has lost its archive)`,
      'last 1',
    ]);
    expect(plan.missingArchives.map((b) => b.id)).toEqual([newest.id]);
    // The background pass (keep 1 daily) says so too, and what is left restores.
    const run = await new BackupMaintenanceService(env.context).runOnce();
    expect(run.error).toBeUndefined();
    expect(run.retention).toEqual({ kept: 1, deleted: 1, missingArchives: [`local:${newest.archive!.key}`] });
    await Note.removeAll();
    const report = await restoreEntity(env.context, Note, 'nightly');
    expect(report).toMatchObject({ backupId: older.id, status: 'Completed' });
  });

  it('a scope name no backup has is BACKUP_NOT_FOUND listing the known names (at most 20), and nothing is planned', async () => {
    const Note = new Entity(schema, fields).withRuntime(env.context.runtime);
    await Note.upsert({ id: 1, label: 'a' });
    await backupEntity(env.context, Note, 'nightly');
    const policy = { keepLast: 1, minAgeHours: 0 };
    await expect(
      applyRetention(env.context, { policy, scope: { names: ['nighty'] }, dryRun: true }),
    ).rejects.toMatchObject({
      code: 'BACKUP_NOT_FOUND',
      message: 'No backup is named "nighty" in storage profile local. The backup names there: nightly.',
      details: { option: 'scope.names', names: ['nighty'], known: ['nightly'] },
    });
    for (let i = 0; i < 21; i++) await backupEntity(env.context, Note, `n${String(i).padStart(2, '0')}`);
    const many = await applyRetention(env.context, { policy, scope: { names: ['nightly', 'x'] } }).catch((e) => e);
    expect(many.message).toMatch(/^No backup is named "x" in storage profile local\. The backup names there: n00, /);
    expect(many.message).toMatch(/, n19 and 2 more \(koan-backup list\)\.$/);
    expect(many.details.known).toHaveLength(20);
    expect((await new BackupDiscoveryService(env.context).discoverAllBackups()).backups).toHaveLength(22);
  });
});

describe('starting the service with a retention policy that keeps nothing', () => {
  for (const retentionPolicy of [
    { keepDaily: 0, keepWeekly: 0, keepMonthly: 0, minAgeHours: 0 },
    { protectedTags: ['release'], minAgeHours: 1 },
  ])
    it(`is refused at start, naming Koan.Backup.RetentionPolicy: ${JSON.stringify(retentionPolicy)}`, async () => {
      const bad = await makeContext({ default: { provider: 'memory' } }, { config: { retentionPolicy } });
      try {
        const service = new BackupMaintenanceService(bad.context);
        expect(() => service.start()).toThrow(
          expect.objectContaining({
            code: 'INVALID_OPTION',
            message: expect.stringMatching(
              /^Background maintenance was not started: Koan\.Backup\.RetentionPolicy cannot be applied\. .*a policy that keeps something/,
            ),
          }),
        );
        expect(() => bad.context.startMaintenance()).toThrow(/Koan\.Backup\.RetentionPolicy/);
        expect(bad.context.maintenance).toBeUndefined();
      } finally {
        await bad.cleanup();
      }
    });

  it('BackupContext.fromConfig with EnableBackgroundMaintenance rejects it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'koan-maint-zero-'));
    try {
      writeFileSync(
        join(dir, 'koan.config.json'),
        JSON.stringify({
          Koan: {
            Storage: { Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } } },
            Backup: { EnableBackgroundMaintenance: true, RetentionPolicy: { KeepDaily: 0, KeepWeekly: 0 } },
          },
        }),
      );
      await expect(BackupContext.fromConfig({ cwd: dir })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(/Koan\.Backup\.RetentionPolicy/),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Review fixes: one unreachable storage profile must not break the catalog (it is reported per profile, while the
 * reachable profiles are still listed); validation errors of the public API are KoanErrors with a stable code; and
 * retention protects fresh backups by default (DEFAULT_MIN_AGE_HOURS), as the CLI and the HTTP API do.
 *
 * The unreachable profiles are real S3 and Azure Blob drivers pointed at a closed loopback port (connection refused
 * at once), with retries turned down so the test stays fast.
 */
import { defineEntity, KoanError, t, unregisterEntity } from '@koan/data';
import {
  BackupDiscoveryService,
  BackupError,
  type BackupResult,
  BackupService,
  DataBackup,
  RestoreService,
  setBackupContext,
} from '@koan/data-backup';
import { assertBackupName } from '@koan/data-backup/catalog';
import {
  applyRetention,
  BackupMaintenanceService,
  DEFAULT_MIN_AGE_HOURS,
  planRetention,
} from '@koan/data-backup/maintenance';
import { backupConfigSchema } from '@koan/data-backup/schemas';
import { closedLoopbackPort, unreachableAzureSettings, unreachableS3Settings } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const UpNote = defineEntity({
  name: 'UpNote',
  key: 'id',
  source: 'up_mem',
  fields: { id: t.integer(), text: t.string() },
});

let env: Awaited<ReturnType<typeof makeContext>>;
let discovery: BackupDiscoveryService;
let older: BackupResult;
let newer: BackupResult;
let dead: number;

beforeAll(async () => {
  dead = await closedLoopbackPort();
  env = await makeContext(
    { up_mem: { provider: 'memory' } },
    {
      profiles: {
        local: { provider: 'local', settings: { root: 'backups' } },
        s3: { provider: 's3', settings: unreachableS3Settings(dead) },
        azure: { provider: 'azure-blob', settings: unreachableAzureSettings(dead) },
      },
    },
  );
  discovery = new BackupDiscoveryService(env.context);
  await UpNote.withRuntime(env.context.runtime).upsertMany(
    Array.from({ length: 20 }, (_, i) => ({ id: i + 1, text: `note ${i}` })),
  );
  const backups = new BackupService(env.context);
  older = await backups.backupEntity(UpNote, 'notes', { storageProfile: 'local', tags: ['review'] });
  await new Promise((r) => setTimeout(r, 5)); // distinct createdAt
  newer = await backups.backupEntity(UpNote, 'notes', { storageProfile: 'local', tags: ['review'] });
});

afterAll(async () => {
  setBackupContext(undefined);
  unregisterEntity('UpNote');
  await env?.cleanup();
});

const unavailable = (profile: string) => ({
  profile,
  code: 'TRANSIENT',
  message: expect.stringContaining(`127.0.0.1:${dead}`),
});

describe('an unreachable storage profile', () => {
  it('discoverAllBackups lists the reachable profiles and reports each unreachable one (name, code, message)', async () => {
    const t0 = performance.now();
    const catalog = await discovery.discoverAllBackups();
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(catalog.backups.map((b) => b.id)).toEqual([newer.id, older.id]);
    expect(catalog.totalCount).toBe(2);
    expect(catalog.profiles).toEqual(['local']);
    expect(catalog.unavailableProfiles).toEqual(
      expect.arrayContaining([unavailable('s3'), unavailable('azure')].map((u) => expect.objectContaining(u))),
    );
    expect(catalog.unavailableProfiles).toHaveLength(2);
    expect(catalog.unreadable).toEqual([]);
  });

  it('queryBackups filters what could be listed and carries unavailableProfiles', async () => {
    const all = await discovery.queryBackups({ tags: ['review'], sortDirection: 'asc' });
    expect(all.backups.map((b) => b.id)).toEqual([older.id, newer.id]);
    expect(all.unavailableProfiles.map((u) => u.profile).sort()).toEqual(['azure', 's3']);
    const two = await discovery.queryBackups({ storageProfiles: ['local', 's3'] });
    expect(two.totalCount).toBe(2);
    expect(two.unavailableProfiles).toEqual([expect.objectContaining(unavailable('s3'))]);
    const local = await discovery.queryBackups({ storageProfiles: ['local'] });
    expect(local.unavailableProfiles).toEqual([]);
  });

  it('a query limited to unreachable profiles fails with the storage error', async () => {
    const error = await discovery.queryBackups({ storageProfiles: ['s3'] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KoanError);
    expect(error).toMatchObject({ code: 'TRANSIENT', message: expect.stringContaining(`127.0.0.1:${dead}`) });
    await expect(discovery.discoverAllBackups({ storageProfiles: ['azure', 's3'] })).rejects.toMatchObject({
      code: 'TRANSIENT',
    });
    await expect(discovery.getCatalogStats({ storageProfiles: ['s3'] })).rejects.toMatchObject({ code: 'TRANSIENT' });
  });

  it('an unknown profile name and cancellation still throw', async () => {
    await expect(discovery.discoverAllBackups({ storageProfiles: ['local', 'nope'] })).rejects.toBeInstanceOf(
      KoanError,
    );
    const controller = new AbortController();
    controller.abort();
    await expect(discovery.discoverAllBackups({ signal: controller.signal })).rejects.toThrow();
  });

  it('getCatalogStats counts what could be listed and reports the rest', async () => {
    const stats = await discovery.getCatalogStats();
    expect(stats.totalBackups).toBe(2);
    expect(stats.byStorageProfile).toEqual({ local: 2 });
    expect(stats.unavailableProfiles.map((u) => u.profile).sort()).toEqual(['azure', 's3']);
    expect(stats.unavailableProfiles.every((u) => u.code === 'TRANSIENT')).toBe(true);
  });

  it('DataBackup.listBackups lists the reachable profiles; naming an unreachable one throws', async () => {
    setBackupContext(env.context);
    expect((await DataBackup.listBackups(UpNote)).map((b) => b.id)).toEqual([newer.id, older.id]);
    await expect(DataBackup.listBackups(UpNote, { storageProfile: 's3' })).rejects.toMatchObject({
      code: 'TRANSIENT',
    });
  });

  it('applyRetention works on the reachable profiles and reports the unreachable ones', async () => {
    const plan = await applyRetention(env.context, {
      policy: { keepDaily: 1, keepWeekly: 0, keepMonthly: 0, minAgeHours: 0 },
      dryRun: true,
    });
    expect(plan.remove.map((b) => b.id)).toEqual([older.id]);
    expect(plan.deleted).toEqual([]);
    expect(plan.unavailableProfiles.map((u) => u.profile).sort()).toEqual(['azure', 's3']);
  });
});

describe('a lookup by name while a profile is unreachable (disaster recovery)', () => {
  it('restore fails with PROFILE_UNAVAILABLE naming the newest reachable backup and how to restore it; nothing is written', async () => {
    const error = (await new RestoreService(env.context)
      .restoreAllEntities('notes', { dryRun: true })
      .catch((x: unknown) => x)) as BackupError;
    expect(error).toBeInstanceOf(BackupError);
    expect(error.code).toBe('PROFILE_UNAVAILABLE');
    expect(error.message).toContain(`${newer.id} in profile local, made ${newer.createdAt}`);
    expect(error.message).toMatch(/s3 \(TRANSIENT: .*\); azure \(TRANSIENT: /);
    expect(error.message).toContain(`--backup-id ${newer.id}`);
    expect(error.message).toContain('--profile local');
    expect(error.message).toContain('--allow-unreachable-profiles');
    expect(error.details).toMatchObject({
      candidate: { id: newer.id, profile: 'local', createdAt: newer.createdAt },
      unavailableProfiles: [expect.objectContaining({ profile: 's3' }), expect.objectContaining({ profile: 'azure' })],
    });
  });

  it('with allowUnreachableProfiles, by id or in the named profile, the reachable backup restores; the report names the unreachable profiles', async () => {
    const allowed = await new RestoreService(env.context).restoreAllEntities('notes', {
      dryRun: true,
      allowUnreachableProfiles: true,
    });
    expect(allowed.backupId).toBe(newer.id);
    expect(allowed.unavailableProfiles?.map((u) => u.profile)).toEqual(['s3', 'azure']);
    const byId = await new RestoreService(env.context).restoreAllEntities(newer.id, { dryRun: true });
    expect(byId.backupId).toBe(newer.id);
    const inProfile = await new RestoreService(env.context).restoreAllEntities('notes', {
      dryRun: true,
      storageProfile: 'local',
    });
    expect(inProfile.backupId).toBe(newer.id);
    setBackupContext(env.context);
    const oneLine = await DataBackup.restoreFrom(UpNote, 'notes', { dryRun: true, allowUnreachableProfiles: true });
    expect(oneLine.backupId).toBe(newer.id);
    // validation takes the same option; a missing name says the unreachable profiles may hold it
    const valid = await discovery.validateBackup('notes', { allowUnreachableProfiles: true, store: false });
    expect(valid.isValid).toBe(true);
    const missing = await discovery.validateBackup('no-such-backup').catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'PROFILE_UNAVAILABLE', message: expect.stringMatching(/may hold it/) });
  });
});

describe('backup names: a BackupError with code INVALID_NAME naming the rule and a valid example', () => {
  const bad = ['bad name', '', '-leading-dash', '.hidden', 'a..b', '../escape', 'x/y', 'a'.repeat(129), 'née'];

  it('assertBackupName', () => {
    for (const name of bad) {
      let error: unknown;
      try {
        assertBackupName(name);
      } catch (e) {
        error = e;
      }
      expect(error, name).toBeInstanceOf(BackupError);
      expect(error, name).toBeInstanceOf(KoanError);
      const e = error as BackupError;
      expect(e.code).toBe('INVALID_NAME');
      expect(e.message).toContain(JSON.stringify(name));
      expect(e.message).toContain('1-128 characters from A-Z a-z 0-9 . _ -');
      expect(e.message).toContain('starting with a letter or digit');
      expect(e.details).toEqual({ name });
      // the example in the message is itself a valid name
      const example = /\(e\.g\. "([^"]+)"\)/.exec(e.message)?.[1];
      expect(example).toBeDefined();
      expect(() => assertBackupName(example!)).not.toThrow();
    }
    for (const good of ['daily-users-2024-12-17', 'a', 'A.b_c-1', 'x'.repeat(128)])
      expect(() => assertBackupName(good)).not.toThrow();
  });

  it('DataBackup.backupTo, backupEntity and backupAllEntities refuse a bad name with that error', async () => {
    setBackupContext(env.context);
    const backups = new BackupService(env.context);
    for (const attempt of [
      DataBackup.backupTo(UpNote, 'bad name'),
      backups.backupEntity(UpNote, 'bad name'),
      backups.backupAllEntities('../escape'),
    ]) {
      const error = await attempt.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BackupError);
      expect(error).toMatchObject({
        code: 'INVALID_NAME',
        message: expect.stringMatching(/1-128 characters .* \(e\.g\. "daily-users-2024-12-17"\)/),
      });
    }
  });
});

describe('retention protects fresh backups by default', () => {
  it('DEFAULT_MIN_AGE_HOURS is the default of the config schema too', () => {
    expect(DEFAULT_MIN_AGE_HOURS).toBe(1);
    const parsed = backupConfigSchema.parse({ retentionPolicy: {} });
    expect(parsed.retentionPolicy!.minAgeHours).toBe(DEFAULT_MIN_AGE_HOURS);
  });

  it('planRetention without minAgeHours keeps a 2-minute-old backup; minAgeHours: 0 removes it', async () => {
    const { backups } = await discovery.discoverAllBackups({ storageProfiles: ['local'] });
    const now = new Date(Date.parse(newer.createdAt) + 120_000);
    const policy = { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 };
    const kept = planRetention(backups, policy, { now });
    expect(kept.remove).toEqual([]);
    expect(kept.keep.find((k) => k.backup.id === older.id)!.reasons).toEqual([
      `younger than ${DEFAULT_MIN_AGE_HOURS} h`,
    ]);
    const removed = planRetention(backups, { ...policy, minAgeHours: 0 }, { now });
    expect(removed.remove.map((b) => b.id)).toEqual([older.id]);
    // past the default age, the policy alone decides
    const later = planRetention(backups, policy, { now: new Date(Date.parse(newer.createdAt) + 2 * 3_600_000) });
    expect(later.remove.map((b) => b.id)).toEqual([older.id]);
  });

  it('applyRetention without minAgeHours deletes nothing fresh; minAgeHours: 0 deletes for real', async () => {
    const policy = { keepDaily: 1, keepWeekly: 0, keepMonthly: 0 };
    const safe = await applyRetention(env.context, { policy, storageProfiles: ['local'] });
    expect(safe.remove).toEqual([]);
    expect(safe.deleted).toEqual([]);
    const pruned = await applyRetention(env.context, {
      policy: { ...policy, minAgeHours: 0 },
      storageProfiles: ['local'],
    });
    expect(pruned.deleted.map((d) => d.id)).toEqual([older.id]);
    const left = await discovery.queryBackups({ storageProfiles: ['local'] });
    expect(left.backups.map((b) => b.id)).toEqual([newer.id]);
  });

  it('refuses an invalid minAgeHours, cron expression or interval with INVALID_OPTION naming it', () => {
    for (const minAgeHours of [-1, Number.NaN, '2' as unknown as number])
      expect(() => planRetention([], { keepDaily: 1, keepWeekly: 0, keepMonthly: 0, minAgeHours })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining('minAgeHours') }),
      );
    const cron = (() => {
      try {
        new BackupMaintenanceService(env.context, {
          schedules: [{ cron: 'every night', name: 'nightly', run: async () => undefined }],
        });
      } catch (e) {
        return e;
      }
    })();
    expect(cron).toBeInstanceOf(BackupError);
    expect(cron).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('schedules[0].cron') });
    expect(() => new BackupMaintenanceService(env.context, { intervalMs: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    expect(() => new BackupMaintenanceService(env.context, { intervalMs: 30 * 86_400_000 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });
});

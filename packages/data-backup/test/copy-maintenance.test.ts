import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Entity, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { BackupDiscoveryService, type BackupInfo, backupEntity, restoreEntity } from '@koan/data-backup';
import { copyBackup } from '@koan/data-backup/catalog';
import {
  BackupMaintenanceService,
  cleanupLeftovers,
  type MaintenanceRun,
  planRetention,
} from '@koan/data-backup/maintenance';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { filesUnder, makeContext } from './helpers.js';

const fields = { id: t.integer(), label: t.string() };
let env: Awaited<ReturnType<typeof makeContext>>;
beforeEach(async () => {
  env = await makeContext(
    { default: { provider: 'memory' } },
    {
      profiles: {
        local: { provider: 'local', settings: { root: 'backups' } },
        offsite: { provider: 'local', settings: { root: 'offsite' } },
      },
    },
  );
});
afterEach(async () => env.cleanup());

const entity = () =>
  new Entity(buildSchema({ name: 'Note', key: 'id', fields }, 'declared'), fields).withRuntime(env.context.runtime);

describe('copy between profiles', () => {
  it('streams the archive, verifies it at the destination, then publishes the sidecar there', async () => {
    const Note = entity();
    await Note.upsertMany(Array.from({ length: 300 }, (_, i) => ({ id: i + 1, label: `n${i}` })));
    const m = await backupEntity(env.context, Note, 'notes');
    const receipt = await copyBackup(env.context, 'notes', 'offsite');
    expect(receipt).toMatchObject({
      from: 'local',
      to: 'offsite',
      bytes: m.archive!.sizeBytes,
      sha256: m.archive!.sha256,
    });
    const offsite = await new BackupDiscoveryService(env.context).queryBackups({ storageProfiles: ['offsite'] });
    expect(offsite.backups.map((b) => b.id)).toEqual([m.id]);
    await Note.removeAll();
    await restoreEntity(env.context, Note, 'notes', { storageProfile: 'offsite' });
    expect(await Note.count()).toBe(300);
  });

  it('refuses to copy onto the same profile', async () => {
    const Note = entity();
    await Note.upsert({ id: 1, label: 'a' });
    await backupEntity(env.context, Note, 'notes');
    await expect(copyBackup(env.context, 'notes', 'local')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('leftover cleanup', () => {
  it('removes stale temp uploads, and never an object at a final archive key: one that does not open is kept as damaged', async () => {
    const Note = entity();
    await Note.upsert({ id: 1, label: 'a' });
    const m = await backupEntity(env.context, Note, 'notes');
    const root = join(env.dir, 'backups');
    mkdirSync(join(root, 'crashed'), { recursive: true });
    const orphan = join(root, 'crashed', 'crashed-20240101-000000-deadbeef.zip');
    writeFileSync(orphan, 'partial');
    // The local driver's temp file of an upload that never finished: the only kind of leftover that is removed.
    mkdirSync(join(root, '.koan-tmp'), { recursive: true });
    const temp = join(
      root,
      '.koan-tmp',
      `${randomUUID()}~${Buffer.from('crashed/crashed-20240101-000000-deadbeef.zip').toString('base64url')}`,
    );
    writeFileSync(temp, 'partial');
    const old = new Date(Date.now() - 2 * 3_600_000);
    for (const f of [orphan, temp]) utimesSync(f, old, old);
    const dry = await cleanupLeftovers(env.context, { dryRun: true });
    expect(dry.orphanArchives).toMatchObject([
      { key: 'crashed/crashed-20240101-000000-deadbeef.zip', state: 'damaged', action: 'kept' },
    ]);
    expect(dry.incompleteUploads.map((u) => u.key)).toEqual(['crashed/crashed-20240101-000000-deadbeef.zip']);
    expect(existsSync(temp)).toBe(true);
    const done = await cleanupLeftovers(env.context);
    expect(done.orphanArchives).toMatchObject([{ state: 'damaged', action: 'kept' }]);
    expect(existsSync(temp)).toBe(false);
    expect(existsSync(orphan)).toBe(true);
    const left = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(left.backups.map((b) => b.id)).toEqual([m.id]);
  });
});

describe('leftover cleanup touches only Koan backup keys', () => {
  const aged = (path: string) => {
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(path, old, old);
  };
  const put = (root: string, key: string, body = 'not a koan backup') => {
    mkdirSync(dirname(join(root, key)), { recursive: true });
    writeFileSync(join(root, key), body);
    aged(join(root, key));
  };
  const foreign = [
    'report.zip',
    'user-files/photos.zip',
    'user-files/deep/2024/archive.zip',
    'app.v2_nightly-db/report.zip', // inside a backup's own folder
    'app.v2_nightly-db/app.v2_nightly-db-latest.zip',
    'app.v2_nightly-db/app.v2_nightly-db-20240101-000000-DEADBEEF.zip', // ids are lowercase hex
    'other/app.v2_nightly-db-20240101-000000-deadbeef.zip', // folder and file name disagree
    'x/x-20240101-000000-deadbeef.zip.bak',
  ];

  it('keeps and reports a real orphan archive (sidecar lost), adopts it on request, and leaves foreign .zip files alone', async () => {
    const Note = entity();
    await Note.upsert({ id: 1, label: 'a' });
    const kept = await backupEntity(env.context, Note, 'app.v2_nightly-db');
    const orphan = await backupEntity(env.context, Note, 'app.v2_nightly-db');
    const root = join(env.dir, 'backups');
    const orphanKey = orphan.archive!.key;
    expect(orphanKey).toMatch(/^app\.v2_nightly-db\/app\.v2_nightly-db-\d{8}-\d{6}-[0-9a-f]{8}\.zip$/);
    rmSync(join(root, orphanKey.replace(/\.zip$/, '.manifest.json'))); // the crash: the commit marker never landed
    aged(join(root, orphanKey));
    for (const key of foreign) put(root, key);
    // Stale temp files of the local driver (`.koan-tmp/<uuid>~<base64url key>`): one of a backup, one of another app.
    const tmp = (key: string) => join(root, '.koan-tmp', `${randomUUID()}~${Buffer.from(key).toString('base64url')}`);
    mkdirSync(join(root, '.koan-tmp'), { recursive: true });
    const koanTemp = tmp('crashed/crashed-20240101-000000-deadbeef.zip');
    const foreignTemp = tmp('user-files/video.zip');
    for (const f of [koanTemp, foreignTemp]) {
      writeFileSync(f, 'partial');
      aged(f);
    }
    const before = filesUnder(root);

    const dry = await cleanupLeftovers(env.context, { dryRun: true, storageProfiles: ['local'] });
    // A complete archive is a restorable backup whose catalog record was lost: never deleted.
    expect(dry.orphanArchives).toEqual([
      {
        profile: 'local',
        key: orphanKey,
        size: orphan.archive!.sizeBytes,
        state: 'complete',
        action: 'kept',
        backup: { id: orphan.id, name: orphan.name, createdAt: orphan.createdAt },
      },
    ]);
    expect(dry.incompleteUploads.map((u) => u.key)).toEqual(['crashed/crashed-20240101-000000-deadbeef.zip']);
    expect(filesUnder(root)).toEqual(before);

    const runs: MaintenanceRun[] = [];
    const service = new BackupMaintenanceService(env.context, { onRun: (r) => runs.push(r) });
    const run = await service.runOnce();
    await service.stop();
    expect(run.error).toBeUndefined();
    expect(run.leftovers.orphanArchives.map((o) => `${o.profile}:${o.key}`)).toEqual([`local:${orphanKey}`]);
    expect(run.leftovers.incompleteUploads.map((u) => u.key)).toEqual(['crashed/crashed-20240101-000000-deadbeef.zip']);
    const after = filesUnder(root);
    expect(after).toEqual(before.filter((f) => f !== relative(root, koanTemp)).sort());
    for (const key of foreign) expect(after).toContain(key);
    expect(existsSync(foreignTemp)).toBe(true);
    const catalog = await new BackupDiscoveryService(env.context).discoverAllBackups({ storageProfiles: ['local'] });
    expect(catalog.backups.map((b) => b.id)).toEqual([kept.id]);
    // adopt: its sidecar is written back from the embedded manifest, and it is a catalog entry that validates again.
    const adopted = await cleanupLeftovers(env.context, { adopt: true, storageProfiles: ['local'] });
    expect(adopted.orphanArchives.map((o) => [o.key, o.action])).toEqual([[orphanKey, 'adopted']]);
    const back = await new BackupDiscoveryService(env.context).discoverAllBackups({ storageProfiles: ['local'] });
    expect(back.backups.map((b) => b.id).sort()).toEqual([kept.id, orphan.id].sort());
    expect((await new BackupDiscoveryService(env.context).validateBackup(orphan.id)).isValid).toBe(true);
  });
});

describe('retention policy (keep daily/weekly/monthly)', () => {
  const info = (
    name: string,
    createdAt: string,
    status: BackupInfo['status'] = 'Completed',
    healthStatus: BackupInfo['healthStatus'] = 'Unknown',
  ): BackupInfo => ({
    id: `${createdAt}-${name}`,
    name,
    tags: [],
    createdAt,
    status,
    storageProfile: 'local',
    sizeBytes: 1,
    dataSizeBytes: 1,
    itemCount: 1,
    entityTypes: [],
    providers: [],
    healthStatus,
    restorable: status === 'Completed',
    sidecarKey: 'k',
  });

  it('keeps the newest backup of each of the last N days, weeks and months, per name', () => {
    const backups: BackupInfo[] = [];
    for (let d = 0; d < 120; d++) {
      const day = new Date(Date.UTC(2024, 5, 30) - d * 86_400_000);
      backups.push(info('nightly', new Date(day.getTime() + 3_600_000).toISOString()));
      backups.push(info('nightly', new Date(day.getTime() + 7_200_000).toISOString()));
    }
    const plan = planRetention(
      backups,
      { keepDaily: 7, keepWeekly: 4, keepMonthly: 3, minAgeHours: 1 },
      { now: new Date('2024-07-01T00:00:00Z') },
    );
    const kept = plan.keep.map((k) => k.backup.createdAt).sort();
    // 7 days (Jun 24-30) + ISO weeks 25, 24, 23 (Jun 23, 16, 9; week 26 is Jun 30) + May 31 and Apr 30 (June is Jun 30)
    expect(kept.map((k) => k.slice(0, 10))).toEqual([
      '2024-04-30',
      '2024-05-31',
      '2024-06-09',
      '2024-06-16',
      '2024-06-23',
      '2024-06-24',
      '2024-06-25',
      '2024-06-26',
      '2024-06-27',
      '2024-06-28',
      '2024-06-29',
      '2024-06-30',
    ]);
    expect(plan.keep.every((k) => k.backup.createdAt.endsWith('02:00:00.000Z'))).toBe(true);
    expect(plan.keep.find((k) => k.backup.createdAt.startsWith('2024-06-30'))?.reasons).toContain('daily 2024-06-30');
    expect(plan.keep.some((k) => k.reasons.some((r) => r.startsWith('monthly 2024-04')))).toBe(true);
    expect(plan.remove.length + plan.keep.length).toBe(240);
  });

  it('prefers, in each period, the newest backup that is not known bad: a failed validation never displaces a healthy one', () => {
    const now = new Date('2024-07-10T12:00:00Z');
    const valid = info('nightly', '2024-07-09T02:00:00Z', 'Completed', 'Healthy');
    const invalid = info('nightly', '2024-07-09T14:00:00Z', 'Completed', 'Critical'); // newer, validation failed
    const unvalidated = info('nightly', '2024-07-08T02:00:00Z', 'Completed', 'Warning');
    const invalidOlder = info('nightly', '2024-07-08T14:00:00Z', 'Completed', 'Critical');
    const onlyBad = info('nightly', '2024-07-07T02:00:00Z', 'Completed', 'Critical');
    const plan = planRetention(
      [valid, invalid, unvalidated, invalidOlder, onlyBad],
      { keepDaily: 3, keepWeekly: 0, keepMonthly: 0, minAgeHours: 1 },
      { now },
    );
    const kept = new Map(plan.keep.map((k) => [k.backup.id, k.reasons]));
    expect(kept.get(valid.id)).toEqual(['newest healthy backup of its name in this profile', 'daily 2024-07-09']);
    // not validated yet is not known bad: it still wins over a newer one whose validation failed
    expect(kept.get(unvalidated.id)).toEqual(['daily 2024-07-08']);
    // a day with nothing but a known-bad backup keeps it (nothing better exists for that day)
    expect(kept.get(onlyBad.id)).toEqual(['daily 2024-07-07 (no healthy backup in it)']);
    expect(plan.remove.map((b) => b.id).sort()).toEqual([invalid.id, invalidOlder.id].sort());

    // the same preference holds for weekly and monthly buckets
    const monthly = planRetention(
      [valid, invalid],
      { keepDaily: 0, keepWeekly: 1, keepMonthly: 1, minAgeHours: 1 },
      { now },
    );
    expect(monthly.keep.map((k) => [k.backup.id, k.reasons])).toEqual([
      [valid.id, ['newest healthy backup of its name in this profile', 'weekly 2024-W28', 'monthly 2024-07']],
    ]);
    expect(monthly.remove).toEqual([invalid]);
  });

  it('counts only periods that have a backup: a 40-day-old backup is "daily" when fewer days have one', () => {
    const now = new Date('2024-07-10T12:00:00Z');
    const plan = planRetention(
      [info('x', '2024-07-10T02:00:00Z'), info('x', '2024-07-09T02:00:00Z'), info('x', '2024-05-31T02:00:00Z')],
      { keepDaily: 7, keepWeekly: 0, keepMonthly: 0, minAgeHours: 1 },
      { now },
    );
    expect(plan.remove).toEqual([]);
    expect(plan.keep.map((k) => k.reasons)).toEqual([
      ['newest healthy backup of its name in this profile', 'daily 2024-07-10'],
      ['daily 2024-07-09'],
      ['daily 2024-05-31'],
    ]);
  });

  it('groups per backup name: templated names (nightly-{date}) never share a group, so nothing is removed', () => {
    const now = new Date('2024-07-10T12:00:00Z');
    const days = ['2024-07-01', '2024-07-02', '2024-07-03', '2024-07-04'];
    const policy = { keepDaily: 1, keepWeekly: 0, keepMonthly: 0, minAgeHours: 1 };
    const templated = planRetention(
      days.map((d) => info(`nightly-${d}`, `${d}T02:00:00Z`)),
      policy,
      { now },
    );
    expect(templated.remove).toEqual([]);
    const stable = planRetention(
      days.map((d) => info('nightly', `${d}T02:00:00Z`)),
      policy,
      { now },
    );
    expect(stable.keep.map((k) => k.backup.createdAt)).toEqual(['2024-07-04T02:00:00Z']);
    expect(stable.remove).toHaveLength(3);
  });

  it('never removes backups younger than minAgeHours, and keeps failed ones a day', () => {
    const now = new Date('2024-07-01T12:00:00Z');
    const plan = planRetention(
      [
        info('x', '2024-07-01T11:30:00Z'),
        info('x', '2024-07-01T11:00:00Z', 'Failed'),
        info('x', '2024-06-20T00:00:00Z', 'Failed'),
      ],
      { keepDaily: 1, minAgeHours: 1 },
      { now },
    );
    expect(plan.keep.map((k) => k.backup.createdAt)).toEqual(['2024-07-01T11:30:00Z', '2024-07-01T11:00:00Z']);
    expect(plan.remove.map((b) => b.createdAt)).toEqual(['2024-06-20T00:00:00Z']);
  });
});

import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, Entity, t } from '@koan/data';
import {
  BackupDiscoveryService,
  type BackupInfo,
  backupEntity,
  cleanupLeftovers,
  copyBackup,
  planRetention,
  restoreEntity,
} from '@koan/data-backup';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

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
  it('removes stale temp uploads and archives that never got a sidecar, and nothing else', async () => {
    const Note = entity();
    await Note.upsert({ id: 1, label: 'a' });
    const m = await backupEntity(env.context, Note, 'notes');
    const root = join(env.dir, 'backups');
    mkdirSync(join(root, 'crashed'), { recursive: true });
    const orphan = join(root, 'crashed', 'crashed-20240101-000000-deadbeef.zip');
    writeFileSync(orphan, 'partial');
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(orphan, old, old);
    const dry = await cleanupLeftovers(env.context, { dryRun: true });
    expect(dry.orphanArchives.map((o) => o.key)).toEqual(['crashed/crashed-20240101-000000-deadbeef.zip']);
    expect(readdirSync(join(root, 'crashed'))).toHaveLength(1);
    await cleanupLeftovers(env.context);
    const left = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(left.backups.map((b) => b.id)).toEqual([m.id]);
    expect(readdirSync(root).includes('crashed')).toBe(false);
  });
});

describe('retention policy (keep daily/weekly/monthly)', () => {
  const info = (name: string, createdAt: string, status: BackupInfo['status'] = 'Completed'): BackupInfo => ({
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
    healthStatus: 'Unknown',
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
      new Date('2024-07-01T00:00:00Z'),
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

  it('never removes backups younger than minAgeHours, and keeps failed ones a day', () => {
    const now = new Date('2024-07-01T12:00:00Z');
    const plan = planRetention(
      [
        info('x', '2024-07-01T11:30:00Z'),
        info('x', '2024-07-01T11:00:00Z', 'Failed'),
        info('x', '2024-06-20T00:00:00Z', 'Failed'),
      ],
      { keepDaily: 0, keepWeekly: 0, keepMonthly: 0, minAgeHours: 1 },
      now,
    );
    expect(plan.keep.map((k) => k.backup.createdAt)).toEqual(['2024-07-01T11:30:00Z', '2024-07-01T11:00:00Z']);
    expect(plan.remove.map((b) => b.createdAt)).toEqual(['2024-06-20T00:00:00Z']);
  });
});

/**
 * Advanced: discovery and management (BackupDiscoveryService) over a catalog built so every query field changes
 * the result: two storage profiles, several names, tags, entities, sizes, statuses and health states.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, type BackupInfo, type BackupResult, BackupService } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakTable, filesUnder, makeContext } from './helpers.js';

const DcUser = defineEntity({
  name: 'DcUser',
  key: 'id',
  source: 'dc_sqlite',
  fields: { id: t.integer(), name: t.string() },
});
const DcProduct = defineEntity({
  name: 'DcProduct',
  key: 'id',
  source: 'dc_mem',
  fields: { id: t.integer(), title: t.string() },
});

let env: Awaited<ReturnType<typeof makeContext>>;
let discovery: BackupDiscoveryService;
const b: Record<string, BackupResult> = {};
let failedId = '';

beforeAll(async () => {
  env = await makeContext(
    { dc_sqlite: { provider: 'sqlite', settings: { path: 'dc.sqlite' } }, dc_mem: { provider: 'memory' } },
    {
      profiles: {
        primary: { provider: 'local', settings: { root: 'primary' } },
        offsite: { provider: 'local', settings: { root: 'offsite' } },
      },
    },
  );
  discovery = new BackupDiscoveryService(env.context);
  const rt = env.context.runtime;
  await DcUser.withRuntime(rt).upsertMany(Array.from({ length: 200 }, (_, i) => ({ id: i + 1, name: `user ${i}` })));
  await DcProduct.withRuntime(rt).upsertMany(
    Array.from({ length: 3000 }, (_, i) => ({ id: i + 1, title: `product ${i} ${'x'.repeat(40)}` })),
  );
  const backup = new BackupService(env.context);
  const step = async (key: string, name: string, options: Parameters<BackupService['backupAllEntities']>[1]) => {
    b[key] = await backup.backupAllEntities(name, { storageProfile: 'primary', ...options });
    await sleep(5); // distinct createdAt
  };
  await step('dailyOld', 'daily-users', { includeEntityTypes: ['DcUser'], tags: ['daily'] });
  await step('weekly', 'weekly-all', {
    tags: ['weekly', 'full'],
    storageProfile: 'offsite',
    description: 'Quarterly compliance snapshot',
  });
  await step('products', 'products-only', { includeEntityTypes: ['DcProduct'], tags: ['adhoc'], compressData: false });
  await step('dailyNew', 'daily-users', { includeEntityTypes: ['DcUser'], tags: ['daily'] });
  // a partial and a failed backup
  await breakTable(rt, 'DcBroken', 'dc_sqlite');
  defineEntity({ name: 'DcBroken', key: 'id', source: 'dc_sqlite', fields: { id: t.integer(), name: t.string() } });
  await step('partial', 'nightly', { tags: ['nightly'] });
  failedId = (
    (await backup
      .backupAllEntities('nightly-strict', { storageProfile: 'offsite', continueOnError: false })
      .catch((e) => e)) as { details: { backupId: string } }
  ).details.backupId;
  unregisterEntity('DcBroken');
  // one validated (healthy) backup
  await discovery.validateBackup(b.dailyNew!.id);
});
afterAll(async () => {
  unregisterEntity('DcUser');
  unregisterEntity('DcProduct');
  await env.cleanup();
});

const ids = (xs: readonly BackupInfo[]) => xs.map((x) => x.id);
const q = async (query: Parameters<BackupDiscoveryService['queryBackups']>[0]) =>
  ids((await discovery.queryBackups(query)).backups);
const all = () => [b.dailyOld!.id, b.weekly!.id, b.products!.id, b.dailyNew!.id, b.partial!.id, failedId];

describe('BackupDiscoveryService', () => {
  it('discoverAllBackups finds backups across every profile from their sidecars alone', async () => {
    const catalog = await discovery.discoverAllBackups();
    expect(catalog.totalCount).toBe(6);
    expect(new Set(catalog.profiles)).toEqual(new Set(['primary', 'offsite']));
    expect(ids(catalog.backups)).toEqual([...all()].reverse()); // newest first
    expect(catalog.backups.find((x) => x.id === b.weekly!.id)!.storageProfile).toBe('offsite');
    // the archive is never opened: with its archive moved away the backup is still listed, from its sidecar
    const archive = join(env.dir, 'offsite', b.weekly!.archive!.key);
    renameSync(archive, `${archive}.away`);
    try {
      expect(ids((await discovery.discoverAllBackups({ storageProfiles: ['offsite'] })).backups)).toEqual([
        failedId,
        b.weekly!.id,
      ]);
    } finally {
      renameSync(`${archive}.away`, archive);
    }
    // an unreadable sidecar is reported, not hidden
    writeFileSync(join(env.dir, 'primary', 'junk.manifest.json'), '{not json');
    const again = await discovery.discoverAllBackups();
    expect(again.totalCount).toBe(6);
    expect(again.unreadable).toEqual([expect.objectContaining({ profile: 'primary', key: 'junk.manifest.json' })]);
    rmSync(join(env.dir, 'primary', 'junk.manifest.json'));
  });

  describe('queryBackups', () => {
    it('tags: backups having any of the tags', async () => {
      expect(await q({ tags: ['daily'] })).toEqual([b.dailyNew!.id, b.dailyOld!.id]);
      expect(await q({ tags: ['FULL', 'adhoc'] })).toEqual([b.products!.id, b.weekly!.id]);
    });
    it('entityTypes: backups containing any of the entities', async () => {
      expect(await q({ entityTypes: ['DcProduct'], sortDirection: 'asc' })).toEqual([
        b.weekly!.id,
        b.products!.id,
        b.partial!.id,
      ]);
    });
    it('dateFrom / dateTo bound createdAt (inclusive)', async () => {
      const from = b.products!.createdAt;
      expect(await q({ dateFrom: from, sortDirection: 'asc' })).toEqual([
        b.products!.id,
        b.dailyNew!.id,
        b.partial!.id,
        failedId,
      ]);
      expect(await q({ dateTo: new Date(b.weekly!.createdAt), sortDirection: 'asc' })).toEqual([
        b.dailyOld!.id,
        b.weekly!.id,
      ]);
      expect(await q({ dateFrom: b.weekly!.createdAt, dateTo: b.products!.createdAt, sortDirection: 'asc' })).toEqual([
        b.weekly!.id,
        b.products!.id,
      ]);
    });
    it('storageProfiles: only backups in those profiles', async () => {
      expect(await q({ storageProfiles: ['offsite'] })).toEqual([failedId, b.weekly!.id]);
    });
    it('statuses', async () => {
      expect(await q({ statuses: ['PartiallyCompleted', 'Failed'] })).toEqual([failedId, b.partial!.id]);
      expect((await q({ statuses: ['Completed'] })).length).toBe(4);
    });
    it('healthStatuses', async () => {
      expect(await q({ healthStatuses: ['Healthy'] })).toEqual([b.dailyNew!.id]);
      expect(await q({ healthStatuses: ['Critical'] })).toEqual([failedId]);
      expect(await q({ healthStatuses: ['Warning'] })).toEqual([b.partial!.id]);
      expect(await q({ healthStatuses: ['Unknown'] })).toEqual([b.products!.id, b.weekly!.id, b.dailyOld!.id]);
    });
    it('searchTerm matches name, description, tags and entity names, case-insensitively', async () => {
      expect(await q({ searchTerm: 'QUARTERLY' })).toEqual([b.weekly!.id]);
      expect(await q({ searchTerm: 'products-' })).toEqual([b.products!.id]);
      expect(await q({ searchTerm: 'nightly' })).toEqual([failedId, b.partial!.id]);
    });
    it('minSizeBytes / maxSizeBytes bound the archive size', async () => {
      const size = b.products!.archive!.sizeBytes; // uncompressed: the largest
      expect(await q({ minSizeBytes: size })).toEqual([b.products!.id]);
      // the two small daily backups differ by a few bytes (timings in the manifest): bound by the larger
      const daily = Math.max(b.dailyNew!.archive!.sizeBytes, b.dailyOld!.archive!.sizeBytes);
      expect(daily).toBeLessThan(b.partial!.archive!.sizeBytes);
      expect(await q({ maxSizeBytes: daily })).toEqual([failedId, b.dailyNew!.id, b.dailyOld!.id]);
    });
    it('sortBy name | createdAt | size with sortDirection', async () => {
      const names = (await discovery.queryBackups({ sortBy: 'name', sortDirection: 'asc' })).backups.map((x) => x.name);
      expect(names).toEqual(['daily-users', 'daily-users', 'nightly', 'nightly-strict', 'products-only', 'weekly-all']);
      expect(await q({ sortBy: 'createdAt', sortDirection: 'asc' })).toEqual(all());
      const sizes = (await discovery.queryBackups({ sortBy: 'size', sortDirection: 'desc' })).backups.map(
        (x) => x.sizeBytes,
      );
      expect(sizes).toEqual([...sizes].sort((x, y) => y - x));
      expect(sizes[0]).toBe(b.products!.archive!.sizeBytes);
      expect(sizes.at(-1)).toBe(0); // the failed backup has no archive
    });
    it('skip / take page the result; totalCount counts every match', async () => {
      const page = await discovery.queryBackups({ sortBy: 'createdAt', sortDirection: 'asc', skip: 1, take: 2 });
      expect(ids(page.backups)).toEqual([b.weekly!.id, b.products!.id]);
      expect(page.totalCount).toBe(6);
      expect(await q({ sortDirection: 'asc', skip: 5 })).toEqual([failedId]);
    });
    it('rejects invalid options naming them', async () => {
      await expect(discovery.queryBackups({ statuses: ['Done' as never] })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
      });
      await expect(discovery.queryBackups({ dateFrom: 'yesterday' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    });
  });

  it('getBackup by name returns the newest; by id that exact backup', async () => {
    expect((await discovery.getBackup('daily-users')).id).toBe(b.dailyNew!.id);
    expect((await discovery.getBackup(b.dailyOld!.id)).id).toBe(b.dailyOld!.id);
    await expect(discovery.getBackup('no-such')).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
  });

  it('validateBackup checks deeply and stores the result, so the catalog knows lastValidatedAt', async () => {
    const before = await discovery.getBackup(b.products!.id);
    expect(before.lastValidatedAt).toBeUndefined();
    const ok = await discovery.validateBackup(b.products!.id);
    expect(ok).toMatchObject({ isValid: true, healthStatus: 'Healthy', checkedEntries: 1, checkedLines: 3000 });
    const after = await discovery.getBackup(b.products!.id);
    expect(after.lastValidatedAt).toBe(ok.validatedAt);
    expect(after.healthStatus).toBe('Healthy');
    // damage one byte of a record (uncompressed archive): the checksum over the exact bytes catches it
    const file = join(env.dir, 'primary', b.products!.archive!.key);
    const bytes = readFileSync(file);
    const at = bytes.indexOf(Buffer.from('product 1234 '));
    bytes[at + 9] = '9'.charCodeAt(0);
    writeFileSync(file, bytes);
    const bad = await discovery.validateBackup('products-only');
    expect(bad.isValid).toBe(false);
    expect(bad.issues.join('\n')).toMatch(/entities\/DcProduct\.jsonl/);
    expect((await discovery.getBackup(b.products!.id)).healthStatus).toBe('Critical');
    const failed = await discovery.validateBackup(failedId);
    expect(failed.isValid).toBe(false);
    expect(failed.issues[0]).toMatch(/status Failed/);
  });

  it('getCatalogStats: totals, healthy, requiring attention (failed or partial, failed validation, never validated past the age), counts, oldest and newest', async () => {
    const stats = await discovery.getCatalogStats();
    const catalog = await discovery.discoverAllBackups();
    expect(stats.totalBackups).toBe(6);
    expect(stats.totalSizeBytes).toBe(catalog.backups.reduce((n, x) => n + x.sizeBytes, 0));
    expect(stats.healthyBackups).toBe(1); // dailyNew (validated); products-only failed its validation
    // failed + partial + products-only (validation failed); the unvalidated ones are younger than 7 days
    expect(stats.backupsRequiringAttention).toBe(3);
    expect(stats.byStatus).toEqual({ Completed: 4, PartiallyCompleted: 1, Failed: 1 });
    expect(stats.byStorageProfile).toEqual({ primary: 4, offsite: 2 });
    expect(stats.byProvider).toEqual({ sqlite: 5, memory: 3 });
    expect(stats.oldestBackup!.id).toBe(b.dailyOld!.id);
    expect(stats.newestBackup!.id).toBe(failedId);
    // with attentionAfterDays 0 every never-validated backup needs attention too
    const strict = await makeContext(
      {},
      {
        profiles: {
          primary: { provider: 'local', settings: { root: join(env.dir, 'primary') } },
          offsite: { provider: 'local', settings: { root: join(env.dir, 'offsite') } },
        },
        config: { attentionAfterDays: 0 },
      },
    );
    try {
      const s = await new BackupDiscoveryService(strict.context).getCatalogStats();
      expect(s.backupsRequiringAttention).toBe(5);
      expect(s.attentionAfterDays).toBe(0);
    } finally {
      await strict.cleanup();
    }
  });

  it('deleteBackup removes archive and sidecar for real and returns a receipt', async () => {
    const target = b.dailyOld!;
    const receipt = await discovery.deleteBackup(target.id);
    expect(receipt).toMatchObject({ id: target.id, name: 'daily-users', storageProfile: 'primary' });
    expect(receipt.deletedKeys.sort()).toEqual(
      [target.archive!.key, target.archive!.key.replace(/\.zip$/, '.manifest.json')].sort(),
    );
    expect(receipt.freedBytes).toBeGreaterThan(target.archive!.sizeBytes);
    expect(
      filesUnder(join(env.dir, 'primary', 'daily-users')).some((f) =>
        target.archive!.key.endsWith(f.replace(/\.manifest\.json$/, '.zip')),
      ),
    ).toBe(false);
    expect((await discovery.discoverAllBackups()).totalCount).toBe(5);
    await expect(discovery.getBackup(target.id)).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    expect((await discovery.getBackup('daily-users')).id).toBe(b.dailyNew!.id);
  });
});

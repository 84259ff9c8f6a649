/**
 * Enterprise: full application backups (BackupService.backupAllEntities with GlobalBackupOptions).
 * Entities live in three real sources: a SQLite file, a JSON-file folder and memory. Source names are unique to
 * this file (gb_*), so discovery through the global registry sees only these entities.
 */
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, type BackupError, BackupService, restoreAllEntities } from '@koan/data-backup';
import { fileSource, readContents, ZipReader } from '@koan/data-backup/archive';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakTable, filesUnder, makeContext, maxInFlight, progressLog } from './helpers.js';

const GbUser = defineEntity({
  name: 'GbUser',
  key: 'id',
  source: 'gb_sqlite',
  fields: { id: t.integer(), email: t.string(), joinedAt: t.datetime() },
});
const GbOrder = defineEntity({
  name: 'GbOrder',
  key: 'id',
  source: 'gb_sqlite',
  fields: { id: t.uuid(), userId: t.integer().references('GbUser', 'id'), total: t.decimal() },
});
const GbAudit = defineEntity({
  name: 'GbAudit',
  key: 'id',
  source: 'gb_mem',
  fields: { id: t.string(), what: t.json() },
});
const GbCache = defineEntity({
  name: 'GbCache',
  key: 'k',
  source: 'gb_json',
  fields: { k: t.string(), v: t.number() },
});
const ALL = ['GbAudit', 'GbCache', 'GbOrder', 'GbUser'];

let env: Awaited<ReturnType<typeof makeContext>>;
let service: BackupService;
const uuid = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

beforeAll(async () => {
  env = await makeContext({
    gb_sqlite: { provider: 'sqlite', settings: { path: 'gb.sqlite' } },
    gb_mem: { provider: 'memory' },
    gb_json: { provider: 'json', settings: { directory: 'gb-json' } },
  });
  service = new BackupService(env.context);
  const rt = env.context.runtime;
  await GbUser.withRuntime(rt).upsertMany(
    Array.from({ length: 1200 }, (_, i) => ({ id: i + 1, email: `u${i + 1}@x.io`, joinedAt: '2024-03-01T00:00:00Z' })),
  );
  await GbOrder.withRuntime(rt).upsertMany(
    Array.from({ length: 3000 }, (_, i) => ({ id: uuid(i), userId: (i % 1200) + 1, total: `${i}.99` })),
  );
  await GbOrder.withRuntime(rt)
    .set('archive')
    .upsertMany([{ id: uuid(99_999), userId: 1, total: '1.00' }]);
  await GbAudit.withRuntime(rt).upsertMany(
    Array.from({ length: 2000 }, (_, i) => ({ id: `a${String(i).padStart(5, '0')}`, what: { i, ok: true } })),
  );
  await GbCache.withRuntime(rt).upsertMany(Array.from({ length: 1500 }, (_, i) => ({ k: `k${i}`, v: i / 3 })));
});

afterAll(async () => {
  for (const name of [...ALL, 'GbBroken']) unregisterEntity(name);
  await env.cleanup();
});

const entityTypes = (m: { entities: readonly { entityType: string }[] }) =>
  [...new Set(m.entities.map((e) => e.entityType))].sort();

describe('BackupService.backupAllEntities', () => {
  it('backs up every discovered entity and set into one archive; the manifest carries name, entities with item counts and providers, verification totals and timings', async () => {
    const m = await service.backupAllEntities('full-app', {
      description: 'Complete application backup',
      tags: ['release', 'v2.0'],
    });
    expect(m.status).toBe('Completed');
    expect(m.name).toBe('full-app');
    expect(m.description).toBe('Complete application backup');
    expect(m.tags).toEqual(['release', 'v2.0']);
    const brief = m.entities.map((e) => [e.entityType, e.set, e.itemCount, e.provider, e.storageFile]);
    expect(brief).toEqual([
      ['GbAudit', 'root', 2000, 'memory', 'entities/GbAudit.jsonl'],
      ['GbCache', 'root', 1500, 'json', 'entities/GbCache.jsonl'],
      ['GbOrder', 'root', 3000, 'sqlite', 'entities/GbOrder.jsonl'],
      ['GbOrder', 'archive', 1, 'sqlite', 'entities/GbOrder@archive.jsonl'],
      ['GbUser', 'root', 1200, 'sqlite', 'entities/GbUser.jsonl'],
    ]);
    expect(m.verification.totalItemCount).toBe(2000 + 1500 + 3000 + 1 + 1200);
    expect(m.verification.totalSizeBytes).toBe(m.entities.reduce((n, e) => n + e.sizeBytes, 0));
    expect(m.verification.totalSizeBytes).toBeGreaterThan(0);
    expect(m.timings.totalMs).toBeGreaterThan(0);
    for (const e of m.entities) expect(e.durationMs).toBeGreaterThanOrEqual(0);
    // the archive's own manifest says the same
    const reader = await ZipReader.open(await fileSource(join(env.dir, 'backups', m.archive!.key)));
    try {
      const { manifest } = await readContents(reader);
      expect(manifest.entities).toEqual(m.entities);
      expect(manifest.verification).toEqual(m.verification);
    } finally {
      await reader.close();
    }
  });

  it('consistency: one snapshot per source where supported, recorded in manifest.sources', async () => {
    // A record written while the backup runs (after the SQLite source's snapshot is taken) is not in the archive.
    let late: Promise<unknown> | undefined;
    const m = await service.backupAllEntities('consistency', {
      batchSize: 100,
      onProgress: (e) => {
        if (e.phase === 'entity-start' && e.entity === 'GbOrder' && !late)
          late = GbUser.withRuntime(env.context.runtime).upsert({
            id: 5000,
            email: 'late@x.io',
            joinedAt: '2024-03-02T00:00:00Z',
          });
      },
    });
    await late;
    expect(await GbUser.withRuntime(env.context.runtime).count()).toBe(1201);
    expect(m.entities.find((e) => e.entityType === 'GbUser')!.itemCount).toBe(1200);
    expect(m.sources).toEqual([
      { name: 'gb_json', provider: 'json', consistency: 'snapshot' },
      { name: 'gb_mem', provider: 'memory', consistency: 'snapshot' },
      { name: 'gb_sqlite', provider: 'sqlite', consistency: 'snapshot' },
    ]);
    for (const e of m.entities) expect(e.consistency).toBe('snapshot');
    await GbUser.withRuntime(env.context.runtime).remove(5000);
  });

  it('includeProviders backs up only entities of those providers', async () => {
    const m = await service.backupAllEntities('only-sqlite', { includeProviders: ['sqlite'] });
    expect(entityTypes(m)).toEqual(['GbOrder', 'GbUser']);
    expect(m.sources.map((s) => s.name)).toEqual(['gb_sqlite']);
  });

  it('excludeProviders leaves entities of those providers out', async () => {
    const m = await service.backupAllEntities('no-sqlite', { excludeProviders: ['sqlite', 'JSON'] });
    expect(entityTypes(m)).toEqual(['GbAudit']);
  });

  it('includeEntityTypes backs up only the named entities', async () => {
    const m = await service.backupAllEntities('users-orders', { includeEntityTypes: ['GbUser', 'gbaudit'] });
    expect(entityTypes(m)).toEqual(['GbAudit', 'GbUser']);
  });

  it('excludeEntityTypes skips the named entities', async () => {
    const m = await service.backupAllEntities('no-audit', { excludeEntityTypes: ['GbAudit', 'GbCache'] });
    expect(entityTypes(m)).toEqual(['GbOrder', 'GbUser']);
  });

  it('sets backs up only those sets of the entities that have them; a bad set name fails before anything is written', async () => {
    const m = await service.backupAllEntities('only-archive', { sets: ['archive'] });
    expect(m.entities.map((e) => `${e.entityType}@${e.set}`)).toEqual(['GbOrder@archive']);
    await expect(service.backupAllEntities('bad-set', { sets: ['a/b'] })).rejects.toMatchObject({
      code: 'INVALID_NAME',
    });
    await expect(service.backupAllEntities('no-such-set', { sets: ['nope'] })).rejects.toMatchObject({
      code: 'NOTHING_TO_BACK_UP',
    });
    const names = (await new BackupDiscoveryService(env.context).discoverAllBackups()).backups.map((b) => b.name);
    expect(names).not.toContain('bad-set');
  });

  it('fails with NOTHING_TO_BACK_UP when the filters leave nothing', async () => {
    await expect(
      service.backupAllEntities('nothing', { includeEntityTypes: ['GbUser'], excludeProviders: ['sqlite'] }),
    ).rejects.toMatchObject({ code: 'NOTHING_TO_BACK_UP', message: expect.stringMatching(/GbUser \(sqlite\)/) });
  });

  it('a provider or entity name that matches nothing is INVALID_OPTION naming the option and the known values', async () => {
    await expect(service.backupAllEntities('nothing', { includeProviders: ['postgres'] })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(/includeProviders: "postgres" .*Known: json, memory, sqlite/),
      details: { option: 'includeProviders', unknown: ['postgres'] },
    });
    // A stale exclusion is refused too: it would otherwise hide that the entity it meant to leave out is backed up.
    await expect(service.backupAllEntities('stale', { excludeEntityTypes: ['GbAudits'] })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      details: { option: 'excludeEntityTypes', unknown: ['GbAudits'] },
    });
  });

  it('what the filters leave out is recorded in the manifest, with why', async () => {
    const m = await service.backupAllEntities('no-json', {
      excludeProviders: ['json'],
      excludeEntityTypes: ['GbAudit'],
    });
    expect(m.omitted).toEqual([
      { source: 'gb_mem', name: 'GbAudit', kind: 'entity', reason: 'excluded on request (excludeEntityTypes)' },
      { source: 'gb_json', name: 'GbCache', kind: 'entity', reason: 'excluded on request (excludeProviders)' },
    ]);
  });

  it('maxConcurrency: entity sets of different sources are read at the same time, never more than the limit', async () => {
    const parallel = progressLog();
    const m2 = await service.backupAllEntities('parallel', {
      maxConcurrency: 2,
      batchSize: 100,
      onProgress: parallel.listener,
    });
    // overlap is proven by order of events: an entity starts before another one has finished
    expect(maxInFlight(parallel.events)).toBe(2);
    const serial = progressLog();
    const m1 = await service.backupAllEntities('serial', {
      maxConcurrency: 1,
      batchSize: 100,
      onProgress: serial.listener,
    });
    expect(maxInFlight(serial.events)).toBe(1);
    // the same data either way, byte for byte
    const hashes = (m: typeof m1) => m.entities.map((e) => [e.storageFile, e.contentHash]);
    expect(hashes(m2)).toEqual(hashes(m1));
    const three = progressLog();
    await service.backupAllEntities('three', { maxConcurrency: 3, batchSize: 50, onProgress: three.listener });
    expect(maxInFlight(three.events)).toBeLessThanOrEqual(3);
    expect(maxInFlight(three.events)).toBeGreaterThan(1);
  });

  it('maxConcurrency also overlaps entity sets of one source (inside its snapshot)', async () => {
    const log = progressLog();
    const m = await service.backupAllEntities('one-source', {
      includeProviders: ['sqlite'],
      maxConcurrency: 2,
      batchSize: 100,
      onProgress: log.listener,
    });
    expect(m.status).toBe('Completed');
    expect(maxInFlight(log.events)).toBe(2);
    expect(m.sources).toEqual([{ name: 'gb_sqlite', provider: 'sqlite', consistency: 'snapshot' }]);
  });

  it('rejects maxConcurrency outside 1..64 before doing anything', async () => {
    await expect(service.backupAllEntities('bad', { maxConcurrency: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
  });

  describe('with an entity whose table cannot be read', () => {
    beforeAll(async () => {
      await breakTable(env.context.runtime, 'GbBroken', 'gb_sqlite');
      defineEntity({ name: 'GbBroken', key: 'id', source: 'gb_sqlite', fields: { id: t.integer(), name: t.string() } });
    });
    afterAll(() => unregisterEntity('GbBroken'));

    it('continueOnError (default): the failed entity is recorded in the manifest with its error, and the backup is PartiallyCompleted', async () => {
      const m = await service.backupAllEntities('partial', { includeProviders: ['sqlite'] });
      expect(m.status).toBe('PartiallyCompleted');
      expect(m.errorMessage).toMatch(/1 of 4 entity sets failed/);
      const broken = m.entities.find((e) => e.entityType === 'GbBroken')!;
      expect(broken).toMatchObject({ status: 'Failed', itemCount: 0 });
      expect(broken.errorMessage).toMatch(/lacks column\(s\) name/);
      expect(m.entities.filter((e) => e.status === 'Completed').map((e) => e.entityType)).toEqual([
        'GbOrder',
        'GbOrder',
        'GbUser',
      ]);
      expect(m.verification.totalItemCount).toBe(3000 + 1 + 1200);
      // the partial backup is restorable by id; the failed entity is reported skipped
      const report = await restoreAllEntities(env.context, 'partial', { backupId: m.id, dryRun: true });
      expect(report.entities.find((e) => e.entityType === 'GbBroken')).toMatchObject({ status: 'Skipped' });
      expect(report.entities.find((e) => e.entityType === 'GbUser')).toMatchObject({ status: 'DryRun', updated: 1200 });
    });

    it('continueOnError with maxConcurrency also records the failure and keeps the other sources', async () => {
      const m = await service.backupAllEntities('partial-parallel', { maxConcurrency: 3 });
      expect(m.status).toBe('PartiallyCompleted');
      expect(m.entities.filter((e) => e.status === 'Failed').map((e) => e.entityType)).toEqual(['GbBroken']);
      expect(entityTypes({ entities: m.entities.filter((e) => e.status === 'Completed') })).toEqual(ALL);
    });

    it('continueOnError: false fails the backup and publishes nothing restorable; a Failed sidecar is recorded', async () => {
      const err = (await service
        .backupAllEntities('strict-run', { continueOnError: false, includeProviders: ['sqlite'] })
        .catch((e) => e)) as BackupError;
      expect(err.code).toBe('BACKUP_FAILED');
      expect(err.message).toMatch(/GbBroken|lacks column/);
      expect(filesUnder(join(env.dir, 'backups', 'strict-run')).filter((f) => f.endsWith('.zip'))).toEqual([]);
      const info = await new BackupDiscoveryService(env.context).getBackup('strict-run');
      expect(info).toMatchObject({ status: 'Failed', restorable: false, healthStatus: 'Critical' });
      expect(info.archiveKey).toBeUndefined();
      await expect(restoreAllEntities(env.context, 'strict-run')).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
      const sidecar = await new BackupDiscoveryService(env.context).discoverAllBackups();
      const failed = sidecar.backups.find((b) => b.name === 'strict-run')!;
      expect(failed.errorMessage).toMatch(/lacks column/);
    });

    it('a backup in which every entity fails is Failed, not PartiallyCompleted', async () => {
      await expect(service.backupAllEntities('all-broken', { includeEntityTypes: ['GbBroken'] })).rejects.toMatchObject(
        { code: 'BACKUP_FAILED' },
      );
      expect((await new BackupDiscoveryService(env.context).getBackup('all-broken')).status).toBe('Failed');
    });
  });

  it('batchSize sets how many records are read per batch (one progress event per batch)', async () => {
    const small = progressLog();
    await service.backupAllEntities('batch-100', {
      includeEntityTypes: ['GbCache'],
      batchSize: 100,
      progressIntervalMs: 0,
      onProgress: small.listener,
    });
    const big = progressLog();
    await service.backupAllEntities('batch-1000', {
      includeEntityTypes: ['GbCache'],
      batchSize: 1000,
      progressIntervalMs: 0,
      onProgress: big.listener,
    });
    const steps = (events: typeof small.events) => events.filter((e) => e.phase === 'progress').map((e) => e.records);
    expect(steps(small.events)).toEqual(Array.from({ length: 15 }, (_, i) => (i + 1) * 100));
    expect(steps(big.events)).toEqual([1000, 1500]);
  });

  it('compressData: false stores entries uncompressed; includeSchemaSnapshot: false leaves the snapshots out', async () => {
    const packed = await service.backupAllEntities('packed', { includeEntityTypes: ['GbOrder'] });
    const plain = await service.backupAllEntities('plain', {
      includeEntityTypes: ['GbOrder'],
      compressData: false,
      includeSchemaSnapshot: false,
    });
    expect(plain.archive!.sizeBytes).toBeGreaterThan(packed.archive!.sizeBytes);
    // compressionLevel 0 (allowed by the config schema) stores too, instead of failing every backup.
    const level0 = await service.backupAllEntities('level-0', { includeEntityTypes: ['GbOrder'], compressionLevel: 0 });
    expect(level0.options.compressData).toBe(false);
    expect(level0.entities.every((e) => e.compressedSizeBytes === e.sizeBytes)).toBe(true);
    const order = plain.entities.find((e) => e.set === 'root')!;
    expect(order.compressedSizeBytes).toBe(order.sizeBytes);
    const reader = await ZipReader.open(await fileSource(join(env.dir, 'backups', plain.archive!.key)));
    try {
      expect(reader.entry('verification/schema-snapshots.json')).toBeUndefined();
    } finally {
      await reader.close();
    }
  });
});

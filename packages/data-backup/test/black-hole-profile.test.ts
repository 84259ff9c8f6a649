/**
 * Defect P6: a storage profile whose endpoint accepts connections and never answers (a black hole) held the catalog
 * listing and every lookup by name forever. With the drivers' `RequestTimeoutMs` (small here) the profile is
 * reported in `unavailableProfiles` with a TRANSIENT error naming it and the setting, and the reachable profiles are
 * still listed and searched. No timing is asserted: the calls finish (before the fix they never did).
 */
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, type BackupResult, BackupService, RestoreService } from '@koan/data-backup';
import { type BlackHole, startBlackHole, unreachableAzureSettings, unreachableS3Settings } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const HoleNote = defineEntity({
  name: 'HoleNote',
  key: 'id',
  source: 'hole_mem',
  fields: { id: t.integer(), text: t.string() },
});

let hole: BlackHole;
let env: Awaited<ReturnType<typeof makeContext>>;
let backup: BackupResult;

beforeAll(async () => {
  hole = await startBlackHole();
  env = await makeContext(
    { hole_mem: { provider: 'memory' } },
    {
      profiles: {
        local: { provider: 'local', settings: { root: 'backups' } },
        s3: { provider: 's3', settings: { ...unreachableS3Settings(hole.port), requestTimeoutMs: 250 } },
        azure: { provider: 'azure-blob', settings: { ...unreachableAzureSettings(hole.port), requestTimeoutMs: 250 } },
      },
    },
  );
  await HoleNote.withRuntime(env.context.runtime).upsertMany([{ id: 1, text: 'one' }]);
  backup = await new BackupService(env.context).backupEntity(HoleNote, 'hole-notes', { storageProfile: 'local' });
});

afterAll(async () => {
  unregisterEntity('HoleNote');
  await env?.cleanup();
  await hole?.stop();
});

const silent = (profile: string) =>
  expect.objectContaining({
    profile,
    code: 'TRANSIENT',
    message: expect.stringMatching(
      new RegExp(`profile '${profile}'.*Koan\\.Storage\\.Profiles\\.${profile}\\.Settings\\.RequestTimeoutMs`),
    ),
  });

describe('a storage profile that accepts connections and never answers', () => {
  it('the catalog lists the reachable profiles and reports the silent ones in unavailableProfiles', async () => {
    const catalog = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(catalog.profiles).toEqual(['local']);
    expect(catalog.backups.map((b) => b.id)).toEqual([backup.id]);
    expect(catalog.unavailableProfiles).toEqual(expect.arrayContaining([silent('s3'), silent('azure')]));
    expect(catalog.unavailableProfiles).toHaveLength(2);
  });

  it('a lookup by name finishes: PROFILE_UNAVAILABLE naming them, or the reachable backup when allowed', async () => {
    const restore = new RestoreService(env.context);
    const error = await restore.restoreAllEntities('hole-notes', { dryRun: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PROFILE_UNAVAILABLE', message: expect.stringContaining('RequestTimeoutMs') });
    const allowed = await restore.restoreAllEntities('hole-notes', { dryRun: true, allowUnreachableProfiles: true });
    expect(allowed.backupId).toBe(backup.id);
    expect(allowed.unavailableProfiles).toEqual(expect.arrayContaining([silent('s3'), silent('azure')]));
  });
});

/**
 * Restoring a `PartiallyCompleted` backup (an entity set failed at backup time, so the archive does not hold it) is
 * not a complete restore: the report names what the archive lacks and why (`notInArchive`), the status is
 * `PartiallyCompleted` (`Failed` when nothing selected is in the archive) and `shortfallOf` says so. Leaving the
 * absent sets out of the selection restores what the archive holds as `Completed`.
 */
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { backupAllEntities, restoreAllEntities, shortfallOf } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakTable, makeContext } from './helpers.js';

const RpKeep = defineEntity({ name: 'RpKeep', key: 'id', source: 'rp', fields: { id: t.integer(), v: t.string() } });
defineEntity({ name: 'RpBroken', key: 'id', source: 'rp', fields: { id: t.integer(), v: t.string() } });

let env: Awaited<ReturnType<typeof makeContext>>;
let backupId: string;

beforeAll(async () => {
  env = await makeContext({ rp: { provider: 'sqlite', settings: { path: 'rp.sqlite' } } });
  await RpKeep.withRuntime(env.context.runtime).upsertMany([
    { id: 1, v: 'a' },
    { id: 2, v: 'b' },
  ]);
  // Its table lacks a declared column: its backup fails, the other entity is backed up.
  await breakTable(env.context.runtime, 'RpBroken', 'rp');
  const m = await backupAllEntities(env.context, 'partial', { includeEntityTypes: ['RpKeep', 'RpBroken'] });
  expect(m.status).toBe('PartiallyCompleted');
  backupId = m.id;
});

afterAll(async () => {
  unregisterEntity('RpKeep');
  unregisterEntity('RpBroken');
  await env.cleanup();
});

describe('restore of a PartiallyCompleted backup', () => {
  it('is PartiallyCompleted, names the absent entity set and why, and has a shortfall', async () => {
    const report = await restoreAllEntities(env.context, 'partial', { backupId });
    expect(report.status).toBe('PartiallyCompleted');
    expect(report.backupStatus).toBe('PartiallyCompleted');
    expect(report.notInArchive).toEqual([
      { entity: 'RpBroken', set: 'root', reason: expect.stringMatching(/failed during the backup: .*lacks column/) },
    ]);
    expect(report.entities.find((e) => e.entityType === 'RpBroken')).toMatchObject({
      status: 'Skipped',
      error: expect.stringMatching(/^not in the archive: it failed during the backup: /),
    });
    expect(report.entities.find((e) => e.entityType === 'RpKeep')).toMatchObject({ status: 'Restored', updated: 2 });
    const shortfall = shortfallOf(report);
    expect(shortfall).toMatchObject({
      code: 'RESTORE_PARTIAL',
      status: 'PartiallyCompleted',
      failed: [{ entity: 'RpBroken', set: 'root', error: expect.stringMatching(/^not in the archive/) }],
    });
    expect(shortfall?.message).toMatch(
      /is PartiallyCompleted: 1 of 2 entity sets is not in the archive \(the backup is PartiallyCompleted\): RpBroken@root: not in the archive: it failed during the backup: .*To restore only what the archive holds, leave it out \(excludeEntityTypes; CLI --exclude-entity RpBroken\)/,
    );
  });

  it('a dry run says so too', async () => {
    const report = await restoreAllEntities(env.context, 'partial', { backupId, dryRun: true });
    expect(report.status).toBe('DryRun');
    expect(report.notInArchive).toHaveLength(1);
    expect(shortfallOf(report)).toMatchObject({ code: 'RESTORE_WOULD_FAIL' });
  });

  it('is Failed when nothing selected is in the archive', async () => {
    const report = await restoreAllEntities(env.context, 'partial', { backupId, includeEntityTypes: ['RpBroken'] });
    expect(report.status).toBe('Failed');
    expect(shortfallOf(report)).toMatchObject({ code: 'RESTORE_FAILED' });
  });

  it('leaving the absent set out restores what the archive holds as Completed', async () => {
    const report = await restoreAllEntities(env.context, 'partial', { backupId, excludeEntityTypes: ['RpBroken'] });
    expect(report.status).toBe('Completed');
    expect(report.backupStatus).toBe('PartiallyCompleted');
    expect(report.notInArchive).toBeUndefined();
    expect(shortfallOf(report)).toBeUndefined();
  });
});

/**
 * The rules the CLI and the HTTP API take from the library instead of writing them again: what every error code means
 * (`errorKind`, checked against every code the packages' sources raise), the code a failed backup reports
 * (`underlyingError`), what a backup id looks like, the bounds of the numeric options, which backup a copy takes and
 * what it refuses (`locateForCopy`), and a backup that cannot be restored (`assertRestorable`). On a real SQLite file
 * and two local-disk profiles.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineEntity, KoanError, t, unregisterEntity } from '@koan/data';
import { type BackupResult, BackupService, errorKind, restoreAllEntities, underlyingError } from '@koan/data-backup';
import { assertRestorable, copyBackup, isBackupId, locateBackup, locateForCopy } from '@koan/data-backup/catalog';
import { BATCH_SIZE, backupConfigSchema, COMPRESSION_LEVEL, MAX_CONCURRENCY } from '@koan/data-backup/schemas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { breakTable, makeContext } from './helpers.js';

const packagesDir = join(import.meta.dirname, '..', '..');

/** Every code a `new ...Error('CODE', ...)` in the packages' sources raises, with the files raising it. */
function raisedCodes(): Map<string, string[]> {
  const codes = new Map<string, string[]>();
  const visit = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith('.ts'))
        for (const m of readFileSync(path, 'utf8').matchAll(/new (\w*Error)\(\s*'([A-Z][A-Z0-9_]+)'/g))
          codes.set(m[2]!, [...(codes.get(m[2]!) ?? []), path.slice(packagesDir.length + 1)]);
    }
  };
  for (const pkg of readdirSync(packagesDir)) visit(join(packagesDir, pkg, 'src'));
  return codes;
}

describe('errorKind', () => {
  it('classifies every error code the packages raise (a new code must be given its kind)', () => {
    const codes = raisedCodes();
    // The scan sees the codes of every package, @koan/data's own ABORTED included.
    expect(codes.has('ABORTED') && codes.has('TRANSIENT') && codes.has('BACKUP_NOT_RESTORABLE')).toBe(true);
    expect(codes.size).toBeGreaterThan(50);
    const unclassified = [...codes].filter(([code]) => errorKind(code) === undefined).map(([c, f]) => `${c} (${f})`);
    expect(unclassified).toEqual([]);
    // codes returned rather than thrown: a RESTORE_FAILED and the shortfalls of a finished operation
    for (const code of ['RESTORE_FAILED', 'RESTORE_PARTIAL', 'RESTORE_WOULD_FAIL', 'BACKUP_PARTIAL'])
      expect(errorKind(code), code).toBe('failure');
  });

  it('says what a code means, whatever the frontend', () => {
    expect(errorKind('INVALID_OPTION')).toBe('invalid');
    expect(errorKind('INVALID_KEY')).toBe('invalid');
    expect(errorKind('CONFIG_NOT_FOUND')).toBe('configuration');
    expect(errorKind('INVALID_SETTING')).toBe('configuration');
    expect(errorKind('BACKUP_NOT_FOUND')).toBe('not-found');
    expect(errorKind('BACKUP_NOT_RESTORABLE')).toBe('conflict');
    expect(errorKind('ALREADY_EXISTS')).toBe('conflict');
    expect(errorKind('ARCHIVE_CORRUPT')).toBe('integrity');
    expect(errorKind('PROFILE_UNAVAILABLE')).toBe('unavailable');
    expect(errorKind('ABORTED')).toBe('cancelled');
    expect(errorKind('DUPLICATE_KEY')).toBe('failure');
    expect(errorKind('JOB_CONFLICT')).toBeUndefined(); // a frontend's own code
  });
});

describe('underlyingError', () => {
  it('a failed backup reports the failure it wraps; anything else is its own', () => {
    const cause = new KoanError('SOURCE_UNAVAILABLE', 'down');
    const failed = new KoanError('BACKUP_FAILED', 'backup failed', { cause });
    expect(underlyingError(failed)).toBe(cause);
    const nested = new KoanError('BACKUP_FAILED', 'outer', { cause: new KoanError('BACKUP_FAILED', 'inner') });
    expect(underlyingError(nested)).toBe(nested);
    const plain = new KoanError('BACKUP_FAILED', 'no cause', { cause: new Error('not a KoanError') });
    expect(underlyingError(plain)).toBe(plain);
    expect(underlyingError(cause)).toBe(cause);
  });
});

describe('isBackupId', () => {
  it('a UUID in any case is an id; a name is not', () => {
    expect(isBackupId('0193aaaa-0000-7000-8000-000000000001')).toBe(true);
    expect(isBackupId('0193AAAA-0000-7000-8000-00000000000F')).toBe(true);
    expect(isBackupId('nightly')).toBe(false);
    expect(isBackupId('0193aaaa-0000-7000-8000-00000000000')).toBe(false);
  });
});

const SrItem = defineEntity({
  name: 'SrItem',
  key: 'id',
  source: 'sr_sqlite',
  fields: { id: t.integer(), title: t.string() },
});

let env: Awaited<ReturnType<typeof makeContext>>;
let service: BackupService;
let older: BackupResult;
let failedId: string;

beforeAll(async () => {
  env = await makeContext(
    { sr_sqlite: { provider: 'sqlite', settings: { path: 'sr.sqlite' } } },
    {
      profiles: {
        local: { provider: 'local', settings: { root: 'backups' } },
        offsite: { provider: 'local', settings: { root: 'offsite' } },
      },
    },
  );
  service = new BackupService(env.context);
  await SrItem.withRuntime(env.context.runtime).upsertMany([
    { id: 1, title: 'one' },
    { id: 2, title: 'two' },
  ]);
  older = await service.backupAllEntities('flaky', { includeEntityTypes: ['SrItem'] });
  // A newer backup of the same name that failed: a Failed sidecar, no archive.
  await breakTable(env.context.runtime, 'SrBroken', 'sr_sqlite');
  defineEntity({ name: 'SrBroken', key: 'id', source: 'sr_sqlite', fields: { id: t.integer(), name: t.string() } });
  await expect(
    service.backupAllEntities('flaky', { includeEntityTypes: ['SrBroken'], continueOnError: false }),
  ).rejects.toMatchObject({ code: 'BACKUP_FAILED' });
  const newest = await locateBackup(env.context, 'flaky', { anyStatus: true });
  expect(newest.sidecar.status).toBe('Failed');
  failedId = newest.sidecar.id;
});

afterAll(async () => {
  unregisterEntity('SrItem');
  unregisterEntity('SrBroken');
  await env?.cleanup();
});

describe('locateForCopy', () => {
  it('by name: the newest restorable backup, though a newer one of that name failed', async () => {
    const located = await locateForCopy(env.context, 'flaky', 'offsite');
    expect(located.sidecar.id).toBe(older.id);
    expect(located.profile).toBe('local');
    const receipt = await copyBackup(env.context, 'flaky', 'offsite');
    expect(receipt).toMatchObject({ id: older.id, from: 'local', to: 'offsite' });
  });

  it('refuses the profile the backup is already in (option toProfile) and a backup that is not restorable', async () => {
    await expect(locateForCopy(env.context, older.id, 'local', { fromProfile: 'local' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      details: { option: 'toProfile', profile: 'local' },
      message: expect.stringContaining('already in storage profile local'),
    });
    const refused = await locateForCopy(env.context, failedId, 'offsite').catch((e: KoanError) => e);
    expect(refused).toMatchObject({
      code: 'BACKUP_NOT_RESTORABLE',
      details: { backupId: failedId, id: failedId, status: 'Failed' },
    });
    expect((refused as Error).message).toMatch(/has status Failed: .*; only restorable backups are copied\.$/);
  });
});

describe('assertRestorable', () => {
  it('refuses a Failed backup with its status and error message; restore says the same', async () => {
    const failed = await locateBackup(env.context, failedId);
    let error: unknown;
    try {
      assertRestorable(failed.sidecar);
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: 'BACKUP_NOT_RESTORABLE',
      details: { backupId: failedId, id: failedId, status: 'Failed' },
    });
    expect((error as Error).message).toMatch(/^Backup flaky \(.+\) has status Failed: .+; it cannot be restored\.$/);
    await expect(restoreAllEntities(env.context, 'flaky', { backupId: failedId })).rejects.toMatchObject({
      code: 'BACKUP_NOT_RESTORABLE',
      message: (error as Error).message,
    });
    expect(() => assertRestorable(older)).not.toThrow();
  });
});

describe('the bounds of the numeric options', () => {
  it('are the ones the engines and the config schema check', async () => {
    expect([BATCH_SIZE, MAX_CONCURRENCY, COMPRESSION_LEVEL]).toEqual([
      { min: 1, max: 100_000 },
      { min: 1, max: 64 },
      { min: 0, max: 9 },
    ]);
    for (const batchSize of [BATCH_SIZE.min - 1, BATCH_SIZE.max + 1])
      await expect(service.backupAllEntities('bounds', { batchSize })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        details: { option: 'batchSize' },
      });
    await expect(
      service.backupAllEntities('bounds', { compressionLevel: COMPRESSION_LEVEL.max + 1 }),
    ).rejects.toMatchObject({ details: { option: 'compressionLevel' } });
    expect(backupConfigSchema.safeParse({ defaultBatchSize: BATCH_SIZE.max + 1 }).success).toBe(false);
    expect(backupConfigSchema.safeParse({ compressionLevel: COMPRESSION_LEVEL.min }).success).toBe(true);
  });

  it('a restore takes at most MAX_CONCURRENCY sources at a time, as a backup does', async () => {
    const error = await restoreAllEntities(env.context, older.id, {
      maxConcurrency: MAX_CONCURRENCY.max + 1,
      dryRun: true,
    }).catch((e: KoanError) => e);
    expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'maxConcurrency' } });
    expect((error as Error).message).toContain('an integer from 1 to 64');
    const ok = await restoreAllEntities(env.context, older.id, { maxConcurrency: MAX_CONCURRENCY.max, dryRun: true });
    expect(ok.status).toBe('DryRun');
  });
});

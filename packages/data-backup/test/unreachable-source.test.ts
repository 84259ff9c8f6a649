/**
 * A whole-application backup with one source that cannot be reached (a PostgreSQL source on a closed port): with
 * continueOnError (the default) its entities are recorded as failed and the others are backed up; without it the
 * backup fails and publishes nothing restorable.
 */
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, BackupError, BackupService, DataBackup, setBackupContext } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const UsLive = defineEntity({
  name: 'UsLive',
  key: 'id',
  source: 'us_sqlite',
  fields: { id: t.integer(), v: t.string() },
});
const UsGone = defineEntity({
  name: 'UsGone',
  key: 'id',
  source: 'us_dead',
  fields: { id: t.integer(), v: t.string() },
});

let env: Awaited<ReturnType<typeof makeContext>>;

beforeAll(async () => {
  env = await makeContext({
    us_sqlite: { provider: 'sqlite', settings: { path: 'us.sqlite' } },
    // Nothing listens on port 1 of the loopback interface: connecting is refused at once.
    us_dead: { provider: 'postgres', settings: { connectionString: 'postgres://postgres@127.0.0.1:1/none' } },
  });
  await UsLive.withRuntime(env.context.runtime).upsertMany(
    Array.from({ length: 40 }, (_, i) => ({ id: i, v: `v${i}` })),
  );
});

afterAll(async () => {
  unregisterEntity(UsLive.schema.name);
  unregisterEntity(UsGone.schema.name);
  await env.cleanup();
});

describe('a source that cannot be reached', () => {
  it('continueOnError (default): its entities are recorded as failed with the error, the rest is backed up', async () => {
    const m = await new BackupService(env.context).backupAllEntities('reachable-part');
    expect(m.status).toBe('PartiallyCompleted');
    expect(m.entities.map((e) => [e.entityType, e.status, e.itemCount])).toEqual([
      ['UsGone', 'Failed', 0],
      ['UsLive', 'Completed', 40],
    ]);
    expect(m.entities.find((e) => e.entityType === 'UsGone')?.errorMessage).toMatch(
      /us_dead|127\.0\.0\.1:1|ECONNREFUSED/,
    );
    const listed = await new BackupDiscoveryService(env.context).getBackup('reachable-part');
    expect(listed?.status).toBe('PartiallyCompleted');
  });

  it('continueOnError: false fails the backup with the source error and publishes nothing restorable', async () => {
    const err = (await new BackupService(env.context)
      .backupAllEntities('reachable-strict', { continueOnError: false })
      .catch((e) => e)) as BackupError;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/us_dead|127\.0\.0\.1:1|ECONNREFUSED/);
    const catalog = await new BackupDiscoveryService(env.context).discoverAllBackups();
    expect(catalog.backups.filter((b) => b.name === 'reachable-strict' && b.status !== 'Failed')).toEqual([]);
  });
});

describe('a one-entity backup whose source is down', () => {
  afterAll(() => setBackupContext(undefined));

  it('DataBackup.backupTo records a Failed backup in the catalog and throws BackupError BACKUP_FAILED', async () => {
    setBackupContext(env.context);
    const err = (await DataBackup.backupTo(UsGone, 'gone-one').catch((e) => e)) as BackupError;
    expect(err).toBeInstanceOf(BackupError);
    expect(err.code).toBe('BACKUP_FAILED');
    expect(err.message).toMatch(/us_dead|127\.0\.0\.1:1|ECONNREFUSED/);
    const recorded = await new BackupDiscoveryService(env.context).getBackup('gone-one');
    expect(recorded.status).toBe('Failed');
    expect(recorded.restorable).toBe(false);
    expect(err.details).toMatchObject({ backupId: recorded.id });
  });

  it('a whole-application backup whose every source is down is recorded as Failed too, with or without continueOnError', async () => {
    const down = await makeContext({
      us_dead: { provider: 'postgres', settings: { connectionString: 'postgres://postgres@127.0.0.1:1/none' } },
    });
    try {
      for (const continueOnError of [true, false]) {
        const name = `all-down-${continueOnError}`;
        const err = (await new BackupService(down.context)
          .backupAllEntities(name, { continueOnError })
          .catch((e) => e)) as BackupError;
        expect(err.code, name).toBe('BACKUP_FAILED');
        expect((await new BackupDiscoveryService(down.context).getBackup(name)).status, name).toBe('Failed');
      }
    } finally {
      await down.cleanup();
    }
  });
});

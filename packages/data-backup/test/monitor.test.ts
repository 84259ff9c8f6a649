/**
 * The backup monitor (`@koan/data-backup/monitor`) against real backups: a memory source backed up into two local
 * storage profiles (and an S3 profile on a closed port for the unreachable cases), checked with a frozen clock (`now`
 * set from the backups' own `createdAt`, so every age is exact). One damaged archive (bytes overwritten on disk, then
 * validated) plays the backup found invalid; one garbage sidecar plays an unreadable record.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ConfigError, defineEntity, type KoanError, t, unregisterEntity } from '@koan/data';
import { BackupDiscoveryService, type BackupResult, BackupService } from '@koan/data-backup';
import {
  checkReadiness,
  type MonitorConfigInput,
  type MonitorProblem,
  monitorBackups,
} from '@koan/data-backup/monitor';
import { Notifications, notificationEventSchema, verifyWebhookSignature } from '@koan/data-backup/notify';
import { closedLoopbackPort, unreachableS3Settings } from '@koan/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import { receiverPerTest } from './webhook-receiver.js';

const MonNote = defineEntity({
  name: 'MonNote',
  key: 'id',
  source: 'mon_mem',
  fields: { id: t.integer(), text: t.string() },
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const SECRET = 'a-monitor-test-secret-32-chars!!';

let env: Awaited<ReturnType<typeof makeContext>>;
/** nightly in local, oldest first (the last one is damaged and found invalid); nightly in offsite; weekly in local. */
let nightly: BackupResult[];
let offsite: BackupResult;
let weekly: BackupResult;
let validatedAt: number;

const at = (b: BackupResult, plusMs: number) => new Date(Date.parse(b.createdAt) + plusMs);
const only = (problems: readonly MonitorProblem[], check: string) => problems.filter((p) => p.check === check);

beforeAll(async () => {
  env = await makeContext(
    { mon_mem: { provider: 'memory' } },
    {
      profiles: {
        local: { provider: 'local', settings: { root: 'backups' } },
        offsite: { provider: 'local', settings: { root: 'offsite' } },
      },
    },
  );
  await MonNote.withRuntime(env.context.runtime).upsertMany(
    Array.from({ length: 50 }, (_, i) => ({ id: i + 1, text: `note ${i}` })),
  );
  const backups = new BackupService(env.context);
  nightly = [];
  for (let i = 0; i < 4; i++) {
    nightly.push(await backups.backupEntity(MonNote, 'nightly', { storageProfile: 'local', tags: ['Daily'] }));
    await new Promise((r) => setTimeout(r, 5)); // distinct createdAt
  }
  weekly = await backups.backupEntity(MonNote, 'weekly', { storageProfile: 'local' });
  offsite = await backups.backupEntity(MonNote, 'nightly', { storageProfile: 'offsite', tags: ['Daily'] });
  const discovery = new BackupDiscoveryService(env.context);
  // The third nightly passes validation; the fourth (newest) is damaged on disk, then found invalid.
  const good = await discovery.validateBackup(nightly[2]!.id, { storageProfile: 'local' });
  expect(good.isValid).toBe(true);
  validatedAt = Date.parse(good.validatedAt);
  const file = join(env.dir, 'backups', nightly[3]!.archive!.key);
  const bytes = readFileSync(file);
  bytes.fill(0x5a, 100, 400);
  writeFileSync(file, bytes);
  const bad = await discovery.validateBackup(nightly[3]!.id, { storageProfile: 'local' });
  expect(bad.isValid).toBe(false);
});

afterAll(async () => {
  unregisterEntity('MonNote');
  await env?.cleanup();
});

describe('monitorBackups: the rules, with a frozen clock', () => {
  it('healthy: every rule met in every profile; the checks carry the figures the rules looked at', async () => {
    const config: MonitorConfigInput = {
      defaults: { maxAgeHours: 26, minCount: 1, maxStorageMB: 100, mustBeValidatedWithinDays: 7 },
      targets: [{ name: 'nightly', storageProfiles: ['local'] }],
    };
    const result = await monitorBackups(env.context, config, { now: at(nightly[3]!, HOUR) });
    expect(result.problems).toEqual([]);
    expect(result.healthy).toBe(true);
    expect(result.checkedAt).toBe(at(nightly[3]!, HOUR).toISOString());
    expect(result.storageProfiles).toEqual(['local']);
    const check = result.checks[0]!;
    expect(check).toMatchObject({
      scope: 'name',
      target: 'nightly',
      storageProfile: 'local',
      backups: 4,
      // The damaged one is not counted: found invalid.
      restorable: 3,
      newestHealthyAt: nightly[2]!.createdAt,
      lastValidatedAt: new Date(validatedAt).toISOString(),
      problems: 0,
    });
    expect(check.sizeBytes).toBe(nightly.reduce((n, b) => n + b.archive!.sizeBytes, 0));
  });

  it('MaxAgeHours: the newest healthy completed backup (the invalid newer one skipped) is measured against now', async () => {
    const config = { targets: [{ name: 'nightly', maxAgeHours: 26, storageProfiles: ['local'] }] };
    const result = await monitorBackups(env.context, config, { now: at(nightly[2]!, 30 * HOUR) });
    expect(result.healthy).toBe(false);
    expect(result.problems).toEqual([
      {
        scope: 'name',
        target: 'nightly',
        storageProfile: 'local',
        check: 'MaxAgeHours',
        observed: 30,
        limit: 26,
        message: 'nightly in local: the newest healthy completed backup is 30 hours old (MaxAgeHours 26)',
        hint: 'Back up now (koan-backup backup nightly --profile local) and check why the scheduled backups stopped or failed (koan-backup list --name nightly --profile local).',
      },
    ]);
    // 26 hours exactly is not older than 26.
    const edge = await monitorBackups(env.context, config, { now: at(nightly[2]!, 26 * HOUR) });
    expect(edge.healthy).toBe(true);
  });

  it('MinCount counts restorable backups not found invalid; MaxStorageMB sums the archives (1 MB = 1,048,576 bytes)', async () => {
    const size = nightly.reduce((n, b) => n + b.archive!.sizeBytes, 0);
    const limitMB = Number(((size - 1) / 1024 / 1024).toFixed(6)); // one byte under what they take (rounded down)
    const config = { targets: [{ name: 'nightly', minCount: 4, maxStorageMB: limitMB, storageProfiles: ['local'] }] };
    const result = await monitorBackups(env.context, config, { now: at(nightly[3]!, HOUR) });
    const [count, storage] = [only(result.problems, 'MinCount')[0]!, only(result.problems, 'MaxStorageMB')[0]!];
    expect(count).toMatchObject({
      observed: 3,
      limit: 4,
      message: 'nightly in local: 3 restorable backups (MinCount 4)',
    });
    expect(storage.limit).toBe(limitMB);
    expect(storage.observed).toBe(Number((size / 1024 / 1024).toPrecision(3)));
    expect(storage.message).toBe(`nightly in local: backups take ${storage.observed} MB (MaxStorageMB ${limitMB})`);
    expect(storage.hint).toContain('koan-backup prune --name nightly --profile local --dry-run');
    const fits = await monitorBackups(
      env.context,
      { targets: [{ name: 'nightly', minCount: 3, maxStorageMB: size / 1024 / 1024, storageProfiles: ['local'] }] },
      { now: at(nightly[3]!, HOUR) },
    );
    expect(fits.problems).toEqual([]);
  });

  it('MustBeValidatedWithinDays: the newest validation that passed; never validated is a problem with observed null', async () => {
    const config = { targets: [{ name: 'nightly', mustBeValidatedWithinDays: 7 }] };
    const late = await monitorBackups(env.context, config, { now: new Date(validatedAt + 8 * DAY) });
    const [local, off] = only(late.problems, 'MustBeValidatedWithinDays');
    expect(local).toMatchObject({
      storageProfile: 'local',
      observed: 8,
      limit: 7,
      message: 'nightly in local: the last validation that passed was 8 days ago (MustBeValidatedWithinDays 7)',
    });
    expect(off).toMatchObject({
      storageProfile: 'offsite',
      observed: null,
      limit: 7,
      message: 'nightly in offsite: no backup has passed validation (MustBeValidatedWithinDays 7)',
      hint: 'Validate the newest backup (koan-backup validate nightly --profile offsite), and schedule validation.',
    });
    const soon = await monitorBackups(env.context, config, {
      now: new Date(validatedAt + DAY),
      storageProfiles: ['local'],
    });
    expect(soon.healthy).toBe(true);
  });

  it('a profile holding no backup of a watched name is a problem (NoBackups); the other rules are not piled on', async () => {
    const config = { defaults: { maxAgeHours: 26, minCount: 1 }, targets: [{ name: 'weekly' }] };
    const result = await monitorBackups(env.context, config, { now: at(weekly, HOUR) });
    expect(result.problems).toEqual([
      {
        scope: 'name',
        target: 'weekly',
        storageProfile: 'offsite',
        check: 'NoBackups',
        observed: null,
        limit: null,
        message: 'weekly in offsite: no backups',
        hint: "Back up to this profile (koan-backup backup weekly --profile offsite, or koan-backup copy <name|id> --to offsite), or leave offsite out of the target's StorageProfiles.",
      },
    ]);
    expect(result.checks.map((c) => [c.storageProfile, c.backups])).toEqual([
      ['local', 1],
      ['offsite', 0],
    ]);
  });

  it('a tag target takes the backups carrying the tag in any case; a target overrides Defaults rule by rule', async () => {
    const config = {
      defaults: { maxAgeHours: 1, minCount: 2, storageProfiles: ['offsite'] },
      targets: [{ tag: 'daily', maxAgeHours: 48 }],
    };
    const result = await monitorBackups(env.context, config, { now: at(offsite, 40 * HOUR) });
    expect(result.targets).toEqual([
      { scope: 'tag', target: 'daily', rules: { maxAgeHours: 48, minCount: 2 }, storageProfiles: ['offsite'] },
    ]);
    expect(result.problems).toEqual([
      expect.objectContaining({
        scope: 'tag',
        target: 'daily',
        storageProfile: 'offsite',
        check: 'MinCount',
        observed: 1,
        limit: 2,
        message: 'tag daily in offsite: 1 restorable backup (MinCount 2)',
      }),
    ]);
  });

  it('filters: names, tags and storageProfiles narrow the check; one naming nothing watched is INVALID_OPTION', async () => {
    const config = { defaults: { minCount: 1 }, targets: [{ name: 'nightly' }, { name: 'weekly' }, { tag: 'Daily' }] };
    const now = at(offsite, HOUR);
    const byName = await monitorBackups(env.context, config, { now, names: ['weekly'], storageProfiles: ['local'] });
    expect(byName.checks.map((c) => `${c.target}@${c.storageProfile}`)).toEqual(['weekly@local']);
    expect(byName.storageProfiles).toEqual(['local']);
    const byTag = await monitorBackups(env.context, config, { now, tags: ['DAILY'] });
    expect(byTag.checks.map((c) => `${c.target}@${c.storageProfile}`)).toEqual(['Daily@local', 'Daily@offsite']);
    const refused = (options: Parameters<typeof monitorBackups>[2]) =>
      monitorBackups(env.context, config, options).then(
        () => undefined,
        (e: KoanError) => [e.code, e.details.option, e.message],
      );
    expect(await refused({ names: ['nitely'] })).toEqual([
      'INVALID_OPTION',
      'names',
      'Invalid option names: "nitely" is not watched. Koan.Backup.Monitor.Targets lists names nightly, weekly.',
    ]);
    expect(await refused({ tags: ['weekly'] })).toEqual([
      'INVALID_OPTION',
      'tags',
      'Invalid option tags: "weekly" is not watched. Koan.Backup.Monitor.Targets lists tags Daily.',
    ]);
    expect(await refused({ storageProfiles: ['s3'] })).toEqual([
      'INVALID_OPTION',
      'storageProfiles',
      'Invalid option storageProfiles: "s3" is not a configured storage profile. Configured: local, offsite.',
    ]);
    const narrow = { targets: [{ name: 'nightly', storageProfiles: ['offsite'] }] };
    await expect(monitorBackups(env.context, narrow, { storageProfiles: ['local'] })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      details: { option: 'storageProfiles' },
    });
  });

  it('an unreadable backup record is a problem of its profile', async () => {
    const key = 'nightly/nightly-20240101-000000-deadbeef.manifest.json';
    const file = join(env.dir, 'offsite', key);
    writeFileSync(file, '{ not json');
    try {
      const result = await monitorBackups(env.context, {
        targets: [{ name: 'nightly', storageProfiles: ['offsite'] }],
      });
      expect(result.problems).toEqual([
        expect.objectContaining({
          scope: 'profile',
          target: 'offsite',
          storageProfile: 'offsite',
          check: 'Unreadable',
          observed: 1,
          limit: 0,
          message: expect.stringMatching(
            /^storage profile offsite: 1 backup record could not be read \(nightly\/nightly-20240101-000000-deadbeef\.manifest\.json: Sidecar .* is not valid JSON/,
          ),
        }),
      ]);
    } finally {
      rmSync(file);
    }
  });

  it('with no Targets, only the storage profiles are checked: healthy when they can be listed', async () => {
    const result = await monitorBackups(env.context, undefined);
    expect(result).toMatchObject({ healthy: true, targets: [], checks: [], problems: [] });
    expect(result.storageProfiles).toEqual(['local', 'offsite']);
  });
});

describe('monitorBackups: configuration errors name the key path', () => {
  const message = (config: unknown) =>
    monitorBackups(env.context, config as MonitorConfigInput).then(
      () => 'no error',
      (e: unknown) => {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      },
    );

  it('a target without Name or Tag, with both, twice, with an unknown key, or a bad value', async () => {
    expect(await message({ Targets: [{ MaxAgeHours: 2 }] })).toContain(
      'Koan.Backup.Monitor.Targets.0.Name is required: give each target a Name (a backup name) or a Tag',
    );
    expect(await message({ Targets: [{ Name: 'a', Tag: 'b' }] })).toContain(
      'Koan.Backup.Monitor.Targets.0.Tag: cannot be given with Name',
    );
    expect(await message({ Targets: [{ Name: 'a' }, { Name: 'a' }] })).toContain(
      'Koan.Backup.Monitor.Targets.1.Name: repeats Targets.0',
    );
    expect(await message({ Defaults: { MaxAge: 2 } })).toContain('Koan.Backup.Monitor.Defaults.MaxAge: unknown key');
    expect(await message({ Targets: [{ Name: 'nightly', MaxAgeHours: -1 }] })).toContain(
      'Koan.Backup.Monitor.Targets.0.MaxAgeHours: expected a number > 0, got the number -1 (set it in koan.config.json or with env Koan__Backup__Monitor__Targets__0__MaxAgeHours)',
    );
    expect(await message({ Targets: [{ Name: '../x' }] })).toContain('Koan.Backup.Monitor.Targets.0.Name');
  });

  it('a storage profile that is not configured, in a target or in Defaults', async () => {
    expect(await message({ Targets: [{ Name: 'nightly' }, { Tag: 'x', StorageProfiles: ['s3'] }] })).toBe(
      'Koan.Backup.Monitor.Targets.1.StorageProfiles names storage profile "s3", which is not configured (Koan.Storage.Profiles has local, offsite). Fix the name or configure the profile.',
    );
    expect(await message({ Defaults: { StorageProfiles: ['tape'] } })).toContain(
      'Koan.Backup.Monitor.Defaults.StorageProfiles names storage profile "tape"',
    );
  });
});

describe('monitorBackups: health.unhealthy through the notifier', () => {
  const receiver = receiverPerTest();

  it('an unhealthy result is POSTed, signed, as a valid health.unhealthy event carrying every problem', async () => {
    const r = await receiver();
    const notifications = new Notifications({ webhooks: [{ url: r.url, secret: SECRET, baseDelayMs: 1 }] });
    try {
      const config = { targets: [{ name: 'nightly', minCount: 9, storageProfiles: ['local'] }] };
      const result = await monitorBackups(env.context, config, { now: at(nightly[3]!, HOUR), notify: notifications });
      expect(result.healthy).toBe(false);
      expect(await notifications.flush(15_000)).toBe(true);
      expect(r.requests).toHaveLength(1);
      const request = r.requests[0]!;
      const verified = verifyWebhookSignature({ secret: SECRET, headers: request.headers, body: request.body });
      expect(verified).toMatchObject({ valid: true, id: result.eventId });
      const event = notificationEventSchema.parse(JSON.parse(request.body));
      expect(event.id).toBe(result.eventId);
      expect(event.type).toBe('health.unhealthy');
      expect(event.data).toEqual({ checkedAt: result.checkedAt, problems: result.problems });
    } finally {
      await notifications.close();
    }
  });

  it('a healthy result sends nothing', async () => {
    const r = await receiver();
    const notifications = new Notifications({ webhooks: [{ url: r.url, secret: SECRET, baseDelayMs: 1 }] });
    try {
      const config = { targets: [{ name: 'nightly', minCount: 1, storageProfiles: ['local'] }] };
      const result = await monitorBackups(env.context, config, { notify: notifications });
      expect(result.healthy).toBe(true);
      expect(result.eventId).toBeUndefined();
      expect(await notifications.flush(15_000)).toBe(true);
      expect(r.requests).toEqual([]);
    } finally {
      await notifications.close();
    }
  });
});

describe('unreachable profiles', () => {
  let down: Awaited<ReturnType<typeof makeContext>>;
  let dead: number;
  let silent: Server;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    dead = await closedLoopbackPort();
    // Accepts connections and never answers: a storage endpoint that hangs.
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const hangs = (silent.address() as { port: number }).port;
    down = await makeContext(
      { mon_mem: { provider: 'memory' } },
      {
        profiles: {
          local: { provider: 'local', settings: { root: 'backups' } },
          s3: { provider: 's3', settings: unreachableS3Settings(dead) },
          hang: { provider: 's3', settings: unreachableS3Settings(hangs) },
        },
      },
    );
    await new BackupService(down.context).backupEntity(MonNote, 'nightly', { storageProfile: 'local' });
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => silent?.close(() => resolve()));
    await down?.cleanup();
  });

  it('each is one Unreachable problem (its targets are not checked there); the reachable ones still are', async () => {
    const result = await monitorBackups(down.context, {
      defaults: { minCount: 1 },
      targets: [{ name: 'nightly', storageProfiles: ['local', 's3'] }],
    });
    expect(result.healthy).toBe(false);
    expect(result.problems).toEqual([
      {
        scope: 'profile',
        target: 's3',
        storageProfile: 's3',
        check: 'Unreachable',
        observed: null,
        limit: null,
        message: expect.stringMatching(
          /^storage profile s3 could not be listed, so its backups were not checked \(TRANSIENT: .*127\.0\.0\.1:\d+/,
        ),
        hint: 'Check Koan.Storage.Profiles.s3 (endpoint, credentials, bucket or container) and that the storage is reachable from here.',
      },
    ]);
    expect(result.checks.map((c) => c.storageProfile)).toEqual(['local']);
  });

  it('when every profile looked at is unreachable, the result says so instead of throwing', async () => {
    const result = await monitorBackups(down.context, { targets: [{ name: 'nightly', storageProfiles: ['s3'] }] });
    expect(result.problems.map((p) => `${p.check} ${p.target}`)).toEqual(['Unreachable s3']);
  });

  it('checkReadiness: ready when every profile lists; each one that fails or hangs says why', async () => {
    const result = await checkReadiness(down.context, { timeoutMs: 500 });
    expect(result.ready).toBe(false);
    expect(result.profiles).toEqual([
      { profile: 'local', ready: true },
      { profile: 's3', ready: false, code: 'TRANSIENT', message: expect.stringContaining('127.0.0.1') },
      { profile: 'hang', ready: false, code: 'TIMEOUT', message: 'listing did not answer within 500 ms' },
    ]);
    const fine = await checkReadiness(env.context);
    expect(fine).toMatchObject({
      ready: true,
      profiles: [
        { profile: 'local', ready: true },
        { profile: 'offsite', ready: true },
      ],
    });
  });
});

/**
 * `koan-backup monitor` on a real app directory: SQLite data, two local storage profiles, real backups made with the
 * CLI, and Koan.Backup.Monitor in koan.config.json (changed per test through `Koan__...` environment variables, list
 * items by index). Exit codes, the one-line-per-problem output, --json, the filters, configuration errors, and the
 * health.unhealthy webhook arriving signed at a local HTTP receiver.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, defineEntity, t } from '@koan/data';
import { notificationEventSchema, verifyWebhookSignature } from '@koan/data-backup/notify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receiverPerTest } from '../../data-backup/test/webhook-receiver.js';
import { runIn } from './run-cli.js';

const MonCliNote = defineEntity({
  name: 'MonCliNote',
  key: 'id',
  source: 'monCliSql',
  fields: { id: t.integer(), text: t.string() },
});
const SOURCES = { monCliSql: { provider: 'sqlite', settings: { path: 'data.sqlite' } } };
const SECRET = 'a-cli-monitor-secret-of-32-chars';
let dir: string;

const run = (argv: string[], env: Record<string, string> = {}) => runIn(dir, argv, { env });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-monitor-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: SOURCES },
        Storage: {
          DefaultProfile: 'local',
          Profiles: {
            local: { Provider: 'local', Settings: { Root: './backups' } },
            offsite: { Provider: 'local', Settings: { Root: './offsite' } },
          },
        },
        Backup: {
          Monitor: {
            Defaults: { MaxAgeHours: 1000, MinCount: 1, StorageProfiles: ['local'] },
            Targets: [{ Name: 'notes' }, { Tag: 'Critical', MaxStorageMB: 100 }],
          },
        },
      },
    }),
  );
  const rt = new DataRuntime({ cwd: dir, sources: SOURCES });
  await MonCliNote.withRuntime(rt).upsertMany(Array.from({ length: 5 }, (_, i) => ({ id: i, text: `note ${i}` })));
  await rt.close();
  for (let i = 0; i < 2; i++) {
    const backup = await run(['backup', 'notes', '--entity', 'MonCliNote', '--tag', 'critical']);
    expect(backup.code, backup.stderr).toBe(0);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('koan-backup monitor', () => {
  it('healthy: exit 0, a summary line and the figures of each target in each profile', async () => {
    const r = await run(['monitor']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Healthy: 2 targets in profile local, checked \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(
        /^ {2}notes in local: 2 restorable of 2, newest healthy 0\.\d hours ago, last validated none, /,
      ),
      expect.stringMatching(/^ {2}tag Critical in local: 2 restorable of 2, /),
    ]);
    expect(r.stderr).toBe('');
  });

  it('unhealthy: exit 1, one line per problem on stdout, how to fix each on stderr', async () => {
    // List items by index: the first target's MinCount, and a second profile for it.
    const r = await run(['monitor'], {
      Koan__Backup__Monitor__Targets__0__MinCount: '5',
      Koan__Backup__Monitor__Targets__0__StorageProfiles__0: 'local',
      Koan__Backup__Monitor__Targets__0__StorageProfiles__1: 'offsite',
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^UNHEALTHY: 2 problems \(2 targets in profiles local, offsite, checked .*Z\)$/),
      'MinCount   notes in local: 2 restorable backups (MinCount 5)',
      'NoBackups  notes in offsite: no backups',
    ]);
    expect(r.stderr).toContain('How to fix:');
    expect(r.stderr).toContain(
      '- notes in local (MinCount): Check that backups succeed and that the retention policy (Koan.Backup.RetentionPolicy) keeps at least 5; or lower MinCount.',
    );
    expect(r.stderr).toContain(
      '- notes in offsite (NoBackups): Back up to this profile (koan-backup backup notes --profile offsite',
    );
  });

  it('--json: the library result, healthy false and every problem with its figures', async () => {
    const r = await run(['monitor', '--json'], { Koan__Backup__Monitor__Targets__1__MinCount: '3' });
    expect(r.code).toBe(1);
    const doc = r.json<{ healthy: boolean; problems: unknown[]; checks: unknown[] }>();
    expect(doc.healthy).toBe(false);
    expect(doc.problems).toEqual([
      {
        scope: 'tag',
        target: 'Critical',
        storageProfile: 'local',
        check: 'MinCount',
        observed: 2,
        limit: 3,
        message: 'tag Critical in local: 2 restorable backups (MinCount 3)',
        hint: expect.stringContaining('keeps at least 3'),
      },
    ]);
    expect(doc.checks).toHaveLength(2);
    expect(r.stderr).toBe('');
  });

  it('--name, --tag and --profile narrow the check; one matching nothing watched is a usage error (exit 2)', async () => {
    const byName = await run(['monitor', '--name', 'notes', '--json']);
    expect(byName.code).toBe(0);
    expect(byName.json<{ checks: { target: string }[] }>().checks.map((c) => c.target)).toEqual(['notes']);
    const byTag = await run(['monitor', '--tag', 'critical', '--json']);
    expect(byTag.json<{ checks: { target: string }[] }>().checks.map((c) => c.target)).toEqual(['Critical']);
    const unknown = await run(['monitor', '--name', 'nightly']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(
      'Error [INVALID_OPTION]: Invalid option names: "nightly" is not watched. Koan.Backup.Monitor.Targets lists names notes.',
    );
    const elsewhere = await run(['monitor', '--profile', 'offsite']);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain('no watched target is checked in offsite');
    const noProfile = await run(['monitor', '--profile', 's3']);
    expect(noProfile.code).toBe(2);
    expect(noProfile.stderr).toContain('"s3" is not a configured storage profile. Configured: local, offsite.');
  });

  it('an invalid Koan.Backup.Monitor is exit 2, naming the key path', async () => {
    const r = await run(['monitor'], { Koan__Backup__Monitor__Targets__1__Name: 'notes' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Koan.Backup.Monitor.Targets.1.Tag: cannot be given with Name');
  });

  it('--help teaches the configuration, the rules and the exit codes', async () => {
    const r = await run(['monitor', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"Targets": [');
    expect(r.stdout).toContain(
      'MustBeValidatedWithinDays  a backup passed `koan-backup validate` within the last N days',
    );
    expect(r.stdout).toContain('Exit codes: 0 healthy, 1 unhealthy');
  });
});

describe('koan-backup monitor and Koan.Backup.Notifications', () => {
  const receiver = receiverPerTest();
  const webhook = (url: string) => ({
    Koan__Backup__Notifications__Webhooks__ops__Url: url,
    Koan__Backup__Notifications__Webhooks__ops__Secret: SECRET,
    Koan__Backup__Monitor__Targets__0__MinCount: '9',
  });

  it('unhealthy: health.unhealthy arrives signed, as the documented event, before the command exits', async () => {
    const r = await receiver();
    const human = await run(['monitor'], webhook(r.url));
    expect(human.code).toBe(1);
    expect(r.requests).toHaveLength(1);
    const request = r.requests[0]!;
    expect(verifyWebhookSignature({ secret: SECRET, headers: request.headers, body: request.body }).valid).toBe(true);
    const event = notificationEventSchema.parse(JSON.parse(request.body));
    expect(event.type).toBe('health.unhealthy');
    expect(human.stderr).toContain(`Sent health.unhealthy (event ${event.id}).`);
    expect(event.data).toMatchObject({
      problems: [{ scope: 'name', target: 'notes', check: 'MinCount', observed: 2, limit: 9 }],
    });

    const json = await run(['monitor', '--json'], webhook(r.url));
    expect(json.json<{ notification: unknown }>().notification).toEqual({
      eventId: JSON.parse(r.requests[1]!.body).id,
      delivered: true,
      failures: [],
    });
  });

  it('--no-notify, or a healthy result, sends nothing', async () => {
    const r = await receiver();
    expect((await run(['monitor', '--no-notify'], webhook(r.url))).code).toBe(1);
    const { Koan__Backup__Monitor__Targets__0__MinCount: _, ...healthy } = webhook(r.url);
    expect((await run(['monitor'], healthy)).code).toBe(0);
    expect(r.requests).toEqual([]);
  });
});

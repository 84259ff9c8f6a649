// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${env:NAME} is the setting syntax these tests give
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKoanConfig, parseConfigSection } from '@koan/data/config';
import { BackupContext } from '@koan/data-backup';
import { Notifications, verifyWebhookSignature } from '@koan/data-backup/notify';
import { backupConfigSchema } from '@koan/data-backup/schemas';
import { describe, expect, it } from 'vitest';
import { notificationEventJsonSchema } from '../src/notify/events.js';
import { receiverPerTest } from './webhook-receiver.js';

const SECRET = '0123456789abcdef0123456789abcdef';

function errorOf(f: () => unknown): { code?: string; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected an error');
}

const receiver = receiverPerTest();

describe('Koan.Backup.Notifications', () => {
  it('from koan.config.json: the URL and secret from ${env:NAME}, events filtered, delivered and verifiable', async () => {
    const r = await receiver();
    const dir = mkdtempSync(join(tmpdir(), 'koan-notify-'));
    writeFileSync(
      join(dir, 'koan.config.json'),
      JSON.stringify({
        Koan: {
          Backup: {
            Notifications: {
              App: 'shop-prod',
              Webhooks: {
                Ops: { Url: '${env:OPS_HOOK_URL}', Secret: '${env:OPS_HOOK_SECRET}', Events: ['backup.failed'] },
              },
              Heartbeat: { Url: '${env:OPS_HOOK_URL}', Method: 'POST' },
            },
          },
        },
      }),
    );
    const env = {
      OPS_HOOK_URL: r.url,
      OPS_HOOK_SECRET: SECRET,
      Koan__Backup__Notifications__Webhooks__Ops__MaxAttempts: '2',
    };
    const loaded = loadKoanConfig({ cwd: dir, env });
    const backup = parseConfigSection(backupConfigSchema, loaded.koan.backup, ['Koan', 'Backup'], loaded.file);
    expect(backup.notifications?.webhooks.ops).toMatchObject({
      maxAttempts: 2,
      format: 'json',
      events: ['backup.failed'],
    });
    const notifications = Notifications.fromConfig(backup.notifications, { env, baseDelayMs: 1 });
    expect(notifications.emit('retention.applied', { kept: 1, deleted: [], unavailableProfiles: [] })).toBeUndefined();
    notifications.emit('backup.failed', {
      name: 'nightly',
      status: 'Failed',
      error: { code: 'BACKUP_FAILED', message: 'down' },
      failed: [],
    });
    await notifications.flush(15_000);
    await notifications.pingHeartbeat({ name: 'nightly' });
    expect(r.requests.map((q) => q.method)).toEqual(['POST', 'POST']);
    const hook = r.requests[0]!;
    expect(JSON.parse(hook.body)).toMatchObject({ type: 'backup.failed', source: { app: 'shop-prod' } });
    expect(verifyWebhookSignature({ secret: SECRET, body: hook.body, headers: hook.headers }).valid).toBe(true);
    await notifications.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the secret may come from a Koan__ environment override instead of the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'koan-notify-'));
    writeFileSync(
      join(dir, 'koan.config.json'),
      JSON.stringify({
        Koan: { Backup: { Notifications: { Webhooks: { ops: { Url: 'https://hooks.example.com/k' } } } } },
      }),
    );
    const env = { Koan__Backup__Notifications__Webhooks__ops__Secret: SECRET };
    const loaded = loadKoanConfig({ cwd: dir, env });
    const backup = parseConfigSection(backupConfigSchema, loaded.koan.backup, ['Koan', 'Backup'], loaded.file);
    expect(backup.notifications?.webhooks.ops?.secret).toBe(SECRET);
    expect(Notifications.fromConfig(backup.notifications, { env: {} }).enabled).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('errors name the field and the fix', () => {
    // Format json without a secret.
    const noSecret = errorOf(
      () =>
        new BackupContext({ config: { notifications: { webhooks: { ops: { url: 'https://hooks.example.com/k' } } } } }),
    );
    expect(noSecret.code).toBe('CONFIG_INVALID');
    expect(noSecret.message).toMatch(
      /Koan\.Backup\.Notifications\.Webhooks\.Ops\.Secret is required when Format is "json"/,
    );
    expect(noSecret.message).toMatch(/Koan__Backup__Notifications__Webhooks__Ops__Secret/);

    // Not a URL, an unknown event, an unknown format.
    const bad = errorOf(() =>
      Notifications.fromConfig({
        webhooks: {
          ops: { url: 'private-host.test/k', secret: SECRET, events: ['backup.done'], format: 'teams' as 'json' },
        },
      }),
    );
    expect(bad.message).toMatch(/Webhooks\.Ops\.Url: expected an http\(s\) URL, or \$\{env:NAME\}/);
    expect(bad.message).toMatch(/Webhooks\.Ops\.Events\.0: expected one of .*"restore\.\*".*"backup\.failed"/);
    expect(bad.message).toMatch(/Webhooks\.Ops\.Format: expected one of "json", "slack"/);
    // The URL is never repeated (a Slack URL is a secret).
    expect(bad.message).not.toContain('private-host');

    // An env reference to a variable that is not set.
    const unset = errorOf(() =>
      Notifications.fromConfig(
        { webhooks: { ops: { url: 'https://hooks.example.com/k', secret: '${env:MISSING_SECRET}' } } },
        { env: {} },
      ),
    );
    expect(unset.message).toBe(
      'Koan.Backup.Notifications.Webhooks.Ops.Secret references environment variable MISSING_SECRET, which is not set. Set MISSING_SECRET, or change Koan.Backup.Notifications.Webhooks.Ops.Secret.',
    );

    // A secret too short to sign with, once resolved.
    const weak = errorOf(() =>
      Notifications.fromConfig(
        { webhooks: { ops: { url: 'https://hooks.example.com/k', secret: '${env:WEAK}' } } },
        { env: { WEAK: 'hunter2' } },
      ),
    );
    expect(weak.message).toMatch(
      /Webhooks\.Ops\.Secret cannot sign: it holds 7 bytes, fewer than 16\. Use 16 bytes or more.*openssl rand -hex 32/,
    );
    expect(weak.message).not.toContain('hunter2');

    // A URL that resolves to something else than http(s).
    const url = errorOf(() =>
      Notifications.fromConfig({ heartbeat: { url: '${env:HB}' } }, { env: { HB: 'ftp://private-host.test/x' } }),
    );
    expect(url.message).toMatch(/Koan\.Backup\.Notifications\.Heartbeat\.Url is not an http\(s\) URL once resolved/);
    expect(url.message).not.toContain('private-host');
  });

  it('no section, no notifications: emit and pingHeartbeat do nothing', async () => {
    const none = Notifications.fromConfig(undefined);
    expect(none.enabled).toBe(false);
    expect(none.emit('retention.applied', { kept: 0, deleted: [], unavailableProfiles: [] })).toBeUndefined();
    expect(await none.pingHeartbeat()).toBeUndefined();
    await none.close();
  });

  it('the published JSON Schema of the event body matches the code (npm run build && node scripts/emit-schemas.mjs)', () => {
    const file = JSON.parse(
      readFileSync(new URL('../../../schema/notification-event.v1.schema.json', import.meta.url), 'utf8'),
    );
    expect(file).toEqual(JSON.parse(JSON.stringify(notificationEventJsonSchema())));
  });
});

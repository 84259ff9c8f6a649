import { Heartbeat, type NotificationFailure, Notifications } from '@koan/data-backup/notify';
import { describe, expect, it } from 'vitest';
import { closedPortUrl, receiverPerTest } from './webhook-receiver.js';

const FAST = { baseDelayMs: 1, maxDelayMs: 50 };
const BOUND_MS = 15_000;

const receiver = receiverPerTest();

describe('Slack format', () => {
  it('POSTs { text, blocks }: a plain summary line, sections with the facts, escaped, lists cut short', async () => {
    const r = await receiver();
    const notifications = new Notifications({
      app: 'shop-prod',
      // Slack checks no signature: format slack may go without a secret.
      webhooks: [{ url: r.url, format: 'slack', ...FAST }],
    });
    notifications.emit('backup.failed', {
      name: 'nightly',
      status: 'PartiallyCompleted',
      backupId: '01900000-0000-7000-8000-000000000001',
      storageProfile: 'offsite',
      error: { code: 'BACKUP_PARTIAL', message: 'Backup nightly is PartiallyCompleted: 12 of 40 entity sets failed' },
      failed: Array.from({ length: 12 }, (_, i) => ({ entity: `Order${i}`, set: 'root', error: 'value <script>' })),
      schedule: 'nightly',
    });
    await notifications.flush(BOUND_MS);
    expect(r.requests).toHaveLength(1);
    const req = r.requests[0]!;
    expect(req.headers['webhook-signature']).toBeUndefined();
    const body = JSON.parse(req.body);
    expect(Object.keys(body).sort()).toEqual(['blocks', 'text']);
    expect(body.text).toBe('Backup nightly partially completed');
    expect(body.blocks[0]).toEqual({
      type: 'section',
      text: { type: 'mrkdwn', text: ':x: Backup *nightly* partially completed' },
    });
    expect(body.blocks[1].type).toBe('section');
    expect(body.blocks[1].fields.map((f: { text: string }) => f.text.split('\n')[0])).toEqual([
      '*Error*',
      '*Profile*',
      '*Schedule*',
    ]);
    const details: string = body.blocks[2].text.text;
    expect(details.split('\n')).toHaveLength(11);
    expect(details).toContain('• Order0@root: value &lt;script&gt;');
    expect(details).toContain('... and 2 more');
    expect(details).not.toContain('<script>');
    expect(body.blocks.at(-1)).toEqual({
      type: 'context',
      elements: [
        { type: 'mrkdwn', text: expect.stringMatching(/^backup\.failed · shop-prod · .+ · \d{4}-\d\d-\d\dT/) },
      ],
    });
    await notifications.close();
  });

  it('renders every event type', async () => {
    const r = await receiver();
    const notifications = new Notifications({ webhooks: [{ url: r.url, format: 'slack', ...FAST }] });
    const at = '2026-01-02T03:04:05.000Z';
    notifications.emit('backup.succeeded', {
      backupId: 'b1',
      name: 'nightly',
      storageProfile: 'local',
      tags: [],
      createdAt: at,
      completedAt: at,
      durationMs: 83_000,
      entitySets: 2,
      totalItemCount: 1_234_567,
      totalSizeBytes: 10_000_000,
      archiveSizeBytes: 3_500_000,
    });
    notifications.emit('restore.succeeded', {
      backupId: 'b1',
      backupName: 'nightly',
      storageProfile: 'local',
      entitySets: 2,
      totalRecords: 10,
      durationMs: 12,
    });
    notifications.emit('restore.failed', {
      status: 'Failed',
      error: { code: 'BACKUP_NOT_FOUND', message: 'none' },
      failed: [],
    });
    notifications.emit('health.unhealthy', {
      checkedAt: at,
      problems: [{ scope: 'name', target: 'nightly', check: 'MaxAgeHours', message: 'newest is 30 h old (max 26)' }],
    });
    notifications.emit('drill.failed', {
      backupId: 'b1',
      backupName: 'nightly',
      sandbox: 'temporary SQLite file',
      mismatches: [{ entity: 'Order', set: 'root', expectedCount: 10, actualCount: 9 }],
      durationMs: 500,
    });
    notifications.emit('retention.applied', {
      kept: 7,
      deleted: [{ id: 'b0', name: 'nightly', storageProfile: 'local', createdAt: at }],
      unavailableProfiles: ['offsite'],
    });
    await notifications.flush(BOUND_MS);
    expect(r.requests.map((q) => JSON.parse(q.body).text)).toEqual([
      'Backup nightly completed',
      'Restore of nightly completed',
      'Restore failed',
      'Backups are unhealthy: 1 problem',
      'Restore drill of nightly failed',
      'Retention deleted 1 backup and kept 7',
    ]);
    const first = JSON.parse(r.requests[0]!.body);
    expect(first.blocks[1].fields.map((f: { text: string }) => f.text)).toEqual([
      '*Records*\n1,234,567',
      '*Archive*\n3.3 MB',
      '*Duration*\n1 min 23 s',
      '*Profile*\nlocal',
    ]);
    await notifications.close();
  });
});

describe('heartbeat', () => {
  it('GET pings the URL; POST sends the run summary as JSON', async () => {
    const r = await receiver();
    const get = new Heartbeat({ url: `${r.url}/ping-uuid`, ...FAST });
    expect(await get.ping({ ignored: true })).toMatchObject({ ok: true, attempts: 1, status: 200 });
    const post = new Notifications({ heartbeat: { url: r.url, method: 'POST', ...FAST } });
    expect(post.enabled).toBe(true);
    expect(await post.pingHeartbeat({ name: 'nightly', backupId: 'b1' })).toMatchObject({ ok: true });
    expect(r.requests.map((q) => [q.method, q.path, q.body])).toEqual([
      ['GET', '/hooks/koan/ping-uuid', ''],
      ['POST', '/hooks/koan', '{"name":"nightly","backupId":"b1"}'],
    ]);
    expect(r.requests[1]!.headers['content-type']).toBe('application/json');
    await Promise.all([get.close(), post.close()]);
  });

  it('retries a 5xx, and a heartbeat that cannot be reached resolves (never rejects) and is reported', async () => {
    const flaky = await receiver((n) => ({ status: n === 0 ? 502 : 200 }));
    const beat = new Heartbeat({ url: flaky.url, ...FAST });
    expect(await beat.ping()).toMatchObject({ ok: true, attempts: 2 });
    expect(flaky.requests).toHaveLength(2);

    const reported: NotificationFailure[] = [];
    const down = new Heartbeat({
      url: await closedPortUrl(),
      maxAttempts: 3,
      onFailure: (f) => reported.push(f),
      ...FAST,
    });
    const result = await down.ping();
    expect(result).toMatchObject({ ok: false, attempts: 3 });
    expect(reported).toEqual([
      expect.objectContaining({
        kind: 'heartbeat',
        reason: 'gave-up',
        attempts: 3,
        message: expect.stringMatching(/ECONNREFUSED/),
      }),
    ]);
    // No heartbeat configured: nothing to ping, nothing fails.
    expect(await new Notifications().pingHeartbeat()).toBeUndefined();
    await Promise.all([beat.close(), down.close()]);
  });
});

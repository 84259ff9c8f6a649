import {
  type NotificationFailure,
  Notifications,
  notificationEventSchema,
  verifyWebhookSignature,
  WebhookNotifier,
} from '@koan/data-backup/notify';
import { describe, expect, it } from 'vitest';
import { createEvent } from '../src/notify/events.js';
import { closedPortUrl, heldAnswer, receiverPerTest } from './webhook-receiver.js';

const SECRET = 'a-test-secret-of-32-characters!!';
/** Retries in these tests wait about a millisecond: counts are asserted, never durations. */
const FAST = { baseDelayMs: 1, maxDelayMs: 50 };
/** Generous bound for anything that must finish: a hang fails the test instead of timing it out. */
const BOUND_MS = 15_000;

const at = '2026-01-02T03:04:05.000Z';
const succeeded = (name = 'nightly') => ({
  backupId: '01900000-0000-7000-8000-000000000001',
  name,
  storageProfile: 'local',
  tags: ['prod'],
  createdAt: at,
  completedAt: at,
  durationMs: 1234,
  entitySets: 3,
  totalItemCount: 1000,
  totalSizeBytes: 123_456,
  archiveSizeBytes: 23_456,
});

const receiver = receiverPerTest();

function failures(): { list: NotificationFailure[]; onFailure: (f: NotificationFailure) => void } {
  const list: NotificationFailure[] = [];
  return { list, onFailure: (f) => list.push(f) };
}

type Options = Partial<ConstructorParameters<typeof WebhookNotifier>[0]>;

/** A webhook to `url` (signed, fast retries, `options` on top) and the failures it reports. */
function webhook(url: string, options: Options = {}) {
  const f = failures();
  const hook = new WebhookNotifier({ url, secret: SECRET, onFailure: f.onFailure, ...FAST, ...options });
  return { hook, failures: f.list };
}

/** `webhook(url, options)` that has sent one backup.succeeded event, flushed. */
async function sendOne(url: string, options: Options = {}) {
  const made = webhook(url, options);
  made.hook.notify(createEvent('backup.succeeded', succeeded()));
  expect(await made.hook.flush(BOUND_MS)).toBe(true);
  return made;
}

describe('webhook notifier against a local HTTP receiver', () => {
  it('POSTs the documented JSON body, signed; verifyWebhookSignature accepts it and refuses tampering, wrong secrets and old timestamps', async () => {
    const r = await receiver();
    const f = failures();
    const notifications = new Notifications({
      app: 'shop-prod',
      webhooks: [{ url: r.url, secret: SECRET, ...FAST }],
      onFailure: f.onFailure,
    });
    const event = notifications.emit('backup.succeeded', succeeded());
    expect(event?.type).toBe('backup.succeeded');
    expect(await notifications.flush(BOUND_MS)).toBe(true);

    expect(r.requests).toHaveLength(1);
    const req = r.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['webhook-id']).toBe(event!.id);
    const body = JSON.parse(req.body);
    expect(notificationEventSchema.parse(body)).toEqual(body);
    expect(body).toMatchObject({ type: 'backup.succeeded', source: { app: 'shop-prod' }, data: { name: 'nightly' } });

    const check = verifyWebhookSignature({ secret: SECRET, body: req.body, headers: req.headers });
    expect(check).toEqual({ valid: true, id: event!.id, timestamp: Number(req.headers['webhook-timestamp']) });
    // The raw bytes verify too (what a receiver reading a Buffer has).
    expect(verifyWebhookSignature({ secret: SECRET, body: Buffer.from(req.body), headers: req.headers }).valid).toBe(
      true,
    );
    // During a rotation either secret may match.
    expect(
      verifyWebhookSignature({ secret: ['the-new-secret-000000000', SECRET], body: req.body, headers: req.headers })
        .valid,
    ).toBe(true);
    expect(verifyWebhookSignature({ secret: SECRET, body: `${req.body} `, headers: req.headers })).toEqual({
      valid: false,
      reason: 'bad-signature',
    });
    expect(verifyWebhookSignature({ secret: `${SECRET}x`, body: req.body, headers: req.headers })).toEqual({
      valid: false,
      reason: 'bad-signature',
    });
    // Replayed ten minutes later: refused, though the signature is right.
    const later = Number(req.headers['webhook-timestamp']) * 1000 + 10 * 60_000;
    expect(verifyWebhookSignature({ secret: SECRET, body: req.body, headers: req.headers, now: later })).toEqual({
      valid: false,
      reason: 'timestamp-out-of-tolerance',
    });
    const { 'webhook-signature': _, ...unsigned } = req.headers;
    expect(verifyWebhookSignature({ secret: SECRET, body: req.body, headers: unsigned })).toEqual({
      valid: false,
      reason: 'missing-headers',
    });
    await notifications.close();
    expect(f.list).toEqual([]);
  });

  it('a Standard Webhooks secret (whsec_<base64>) signs with the bytes it encodes', async () => {
    const r = await receiver();
    const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
    const { hook } = await sendOne(r.url, { secret });
    const req = r.requests[0]!;
    expect(verifyWebhookSignature({ secret, body: req.body, headers: req.headers }).valid).toBe(true);
    // Not the same key as the text itself.
    expect(verifyWebhookSignature({ secret: secret.slice(6), body: req.body, headers: req.headers }).valid).toBe(false);
    await hook.close();
  });

  it('retries 500 twice then delivers on the 200: three requests, the same webhook-id, each freshly signed', async () => {
    const r = await receiver((n) => ({ status: n < 2 ? 500 : 200 }));
    const { hook, failures: reported } = webhook(r.url);
    const event = createEvent('backup.failed', {
      name: 'nightly',
      status: 'Failed',
      error: { code: 'BACKUP_FAILED', message: 'source down' },
      failed: [],
    });
    expect(hook.notify(event)).toBe(true);
    expect(await hook.flush(BOUND_MS)).toBe(true);
    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set([event.id]));
    for (const q of r.requests)
      expect(verifyWebhookSignature({ secret: SECRET, body: q.body, headers: q.headers }).valid).toBe(true);
    expect(hook.stats).toEqual({ pending: 0, delivered: 1, failed: 0, dropped: 0, retries: 2 });
    expect(reported).toEqual([]);
    await hook.close();
  });

  it('retries 429 and honours Retry-After; one asking for longer than maxDelayMs ends the delivery, reported', async () => {
    const r = await receiver((n) => ({ status: n === 0 ? 429 : 200, headers: { 'retry-after': '0' } }));
    const { hook } = await sendOne(r.url);
    expect(r.requests).toHaveLength(2);
    expect(hook.stats.delivered).toBe(1);
    await hook.close();

    const slow = await receiver(() => ({ status: 503, headers: { 'retry-after': '3600' } }));
    const patient = await sendOne(slow.url);
    expect(slow.requests).toHaveLength(1);
    expect(patient.hook.stats).toMatchObject({ delivered: 0, failed: 1, retries: 0 });
    expect(patient.failures[0]).toMatchObject({ reason: 'gave-up', status: 503, attempts: 1 });
    expect(patient.failures[0]!.message).toMatch(/asked to retry after 3600 s/);
    await patient.hook.close();
  });

  it('does not retry a 4xx (nor follow a redirect): one request, counted failed, reported with the status', async () => {
    for (const status of [400, 401, 404, 302]) {
      const r = await receiver(() => ({ status, headers: { location: 'http://127.0.0.1:9/elsewhere' } }));
      const { hook, failures: reported } = await sendOne(r.url);
      expect(r.requests).toHaveLength(1);
      expect(hook.stats).toMatchObject({ delivered: 0, failed: 1, retries: 0 });
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({ kind: 'webhook', reason: 'gave-up', status, eventType: 'backup.succeeded' });
      // The path of the URL (where Slack keeps its secret) is never in a report.
      expect(reported[0]!.target).not.toContain('/hooks/koan');
      await hook.close();
    }
  });

  it('a receiver that is down never fails or blocks the caller: emit returns at once, retries run out, the failure is reported', async () => {
    const url = await closedPortUrl();
    const f = failures();
    const notifications = new Notifications({
      webhooks: [{ url, secret: SECRET, maxAttempts: 4, ...FAST }],
      onFailure: f.onFailure,
    });
    // The backup's side: emit is synchronous and returns the event; nothing to await, nothing thrown.
    let returned: unknown;
    expect(() => {
      returned = notifications.emit('backup.succeeded', succeeded());
    }).not.toThrow();
    expect(returned).toMatchObject({ type: 'backup.succeeded' });
    expect(await notifications.flush(BOUND_MS)).toBe(true);
    expect(notifications.stats[0]).toMatchObject({ pending: 0, delivered: 0, failed: 1, retries: 3 });
    expect(f.list).toHaveLength(1);
    expect(f.list[0]).toMatchObject({ reason: 'gave-up', attempts: 4 });
    expect(f.list[0]!.message).toMatch(/ECONNREFUSED/);
    await notifications.close();
  });

  it('a receiver that never answers: close() ends within its bound, aborting the request in flight and dropping what is left', async () => {
    const { after: never, release } = heldAnswer();
    const r = await receiver(() => ({ status: 200, after: never }));
    const { hook, failures: reported } = webhook(r.url, { timeoutMs: 60_000 });
    hook.notify(createEvent('backup.succeeded', succeeded('a')));
    hook.notify(createEvent('backup.succeeded', succeeded('b')));
    const stats = await Promise.race([
      hook.close(50),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), BOUND_MS).unref()),
    ]);
    expect(stats).toMatchObject({ pending: 0, delivered: 0, dropped: 2 });
    expect(reported.map((x) => x.reason)).toEqual(['dropped', 'dropped']);
    // Closed: a later event is dropped and counted, not sent.
    expect(hook.notify(createEvent('backup.succeeded', succeeded('c')))).toBe(false);
    expect(hook.stats.dropped).toBe(3);
    release();
  });

  it('each attempt has its own time limit: a receiver that never answers is retried, then given up', async () => {
    const r = await receiver(() => ({ status: 200, after: new Promise(() => {}) }));
    const { hook, failures: reported } = await sendOne(r.url, { timeoutMs: 300, maxAttempts: 2 });
    expect(hook.stats).toMatchObject({ delivered: 0, failed: 1, retries: 1 });
    expect(reported[0]).toMatchObject({ reason: 'gave-up', attempts: 2 });
    expect(reported[0]!.message).toMatch(/no answer within 300 ms/);
    // On a busy machine an attempt may time out before the receiver has read it: at most two arrived.
    expect(r.requests.length).toBeLessThanOrEqual(2);
    await hook.close();
  });

  it('an aborted signal stops the retries', async () => {
    const controller = new AbortController();
    const r = await receiver((n) => {
      if (n === 1) controller.abort();
      return { status: 503 };
    });
    const hook = new WebhookNotifier({
      url: r.url,
      secret: SECRET,
      maxAttempts: 10,
      signal: controller.signal,
      onFailure: () => {},
      ...FAST,
    });
    hook.notify(createEvent('backup.succeeded', succeeded()));
    expect(await hook.flush(BOUND_MS)).toBe(true);
    expect(r.requests.length).toBeLessThanOrEqual(2);
    expect(hook.stats).toMatchObject({ delivered: 0, failed: 0, dropped: 1 });
    await hook.close();
  });

  it('a full queue drops the oldest waiting events and counts them; the rest arrive in order', async () => {
    const { after: held, release } = heldAnswer();
    const r = await receiver((n) => ({ status: 200, ...(n === 0 ? { after: held } : {}) }));
    const { hook, failures: reported } = webhook(r.url, { maxQueueEvents: 3 });
    const names = ['e1', 'e2', 'e3', 'e4', 'e5', 'e6'];
    hook.notify(createEvent('backup.succeeded', succeeded(names[0])));
    // e1 is on its way (held by the receiver); e2..e6 wait in a queue of 3, so e2 and e3 are dropped.
    while (r.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const name of names.slice(1)) expect(hook.notify(createEvent('backup.succeeded', succeeded(name)))).toBe(true);
    expect(hook.stats).toMatchObject({ pending: 4, dropped: 2 });
    release();
    expect(await hook.flush(BOUND_MS)).toBe(true);
    expect(r.requests.map((q) => JSON.parse(q.body).data.name)).toEqual(['e1', 'e4', 'e5', 'e6']);
    expect(hook.stats).toEqual({ pending: 0, delivered: 4, failed: 0, dropped: 2, retries: 0 });
    expect(reported.map((x) => [x.reason, x.message])).toEqual([
      ['dropped', expect.stringMatching(/queue is full/)],
      ['dropped', expect.stringMatching(/queue is full/)],
    ]);
    await hook.close();
  });

  it('the queue is bounded in bytes too', async () => {
    const { after: held, release } = heldAnswer();
    const r = await receiver((n) => ({ status: 200, ...(n === 0 ? { after: held } : {}) }));
    const one = JSON.stringify(createEvent('backup.succeeded', succeeded('b0'))).length;
    const { hook } = webhook(r.url, { maxQueueBytes: one * 2 + 10 });
    hook.notify(createEvent('backup.succeeded', succeeded('b0')));
    while (r.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const name of ['b1', 'b2', 'b3', 'b4']) hook.notify(createEvent('backup.succeeded', succeeded(name)));
    expect(hook.stats.dropped).toBe(2);
    release();
    await hook.flush(BOUND_MS);
    expect(r.requests.map((q) => JSON.parse(q.body).data.name)).toEqual(['b0', 'b3', 'b4']);
    await hook.close();
  });

  it('each webhook gets only the events its filter lets through', async () => {
    const all = await receiver();
    const restores = await receiver();
    const notifications = new Notifications({
      webhooks: [
        { url: all.url, secret: SECRET, ...FAST },
        { url: restores.url, secret: SECRET, events: ['restore.*', 'drill.failed'], ...FAST },
      ],
    });
    expect(notifications.emit('backup.succeeded', succeeded())).toBeDefined();
    notifications.emit('restore.failed', {
      backupName: 'nightly',
      status: 'Failed',
      error: { code: 'RESTORE_FAILED', message: 'x' },
      failed: [],
    });
    notifications.emit('retention.applied', { kept: 4, deleted: [], unavailableProfiles: [] });
    await notifications.flush(BOUND_MS);
    expect(all.requests.map((q) => JSON.parse(q.body).type)).toEqual([
      'backup.succeeded',
      'restore.failed',
      'retention.applied',
    ]);
    expect(restores.requests.map((q) => JSON.parse(q.body).type)).toEqual(['restore.failed']);
    await notifications.close();
  });

  it('an event whose data breaks its schema is reported, not sent, and not thrown', async () => {
    const r = await receiver();
    const f = failures();
    const notifications = new Notifications({ webhooks: [{ url: r.url, secret: SECRET }], onFailure: f.onFailure });
    const bad = { ...succeeded(), totalItemCount: -1 };
    expect(notifications.emit('backup.succeeded', bad)).toBeUndefined();
    await notifications.flush(BOUND_MS);
    expect(r.requests).toHaveLength(0);
    expect(f.list[0]).toMatchObject({ kind: 'event', reason: 'invalid-event', eventType: 'backup.succeeded' });
    expect(f.list[0]!.message).toMatch(/totalItemCount/);
    await notifications.close();
  });

  it('refuses bad options naming the option: a short secret, an unknown event, a URL that is not http(s)', () => {
    expect(() => new WebhookNotifier({ url: 'http://127.0.0.1/x', secret: 'short' })).toThrow(
      /Invalid option secret \(5 characters, not shown\): it holds 5 bytes, fewer than 16\. Expected 16 bytes or more.*openssl rand/,
    );
    expect(() => new WebhookNotifier({ url: 'http://127.0.0.1/x', secret: SECRET, events: ['backup.done'] })).toThrow(
      /Invalid option events.*backup\.failed/,
    );
    expect(() => new WebhookNotifier({ url: 'ftp://example.com/x', secret: SECRET })).toThrow(/Invalid option url/);
    expect(() => new WebhookNotifier({ url: 'http://127.0.0.1/x', secret: SECRET, maxAttempts: 0 })).toThrow(
      /Invalid option maxAttempts/,
    );
  });
});

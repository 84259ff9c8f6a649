/**
 * Webhook signatures, as Standard Webhooks (https://www.standardwebhooks.com) defines them, so a receiver can use
 * that project's libraries as well as `verifyWebhookSignature`: the headers `webhook-id`, `webhook-timestamp` (Unix
 * seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>`, space-separated when there are several), signing
 * `<id>.<timestamp>.<raw body>`. The timestamp is inside what is signed, so a receiver that refuses old timestamps
 * refuses replays; the id is the same on every retry of an event, so a receiver can also drop duplicates.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADERS = Object.freeze({
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
});

/** How far a timestamp may be from the receiver's clock, either way, by default (the Standard Webhooks value). */
export const DEFAULT_TOLERANCE_SECONDS = 300;
/** The shortest signing key accepted: 128 bits. */
export const MIN_SECRET_BYTES = 16;

const WHSEC = /^whsec_([A-Za-z0-9+/]+={0,2})$/;

/**
 * The HMAC key of a secret: a Standard Webhooks secret (`whsec_` then base64) is the bytes it encodes; any other text
 * is its UTF-8 bytes (a secret from `openssl rand -hex 32` works as it is).
 */
export function signingKey(secret: string): Buffer {
  const standard = WHSEC.exec(secret);
  return standard ? Buffer.from(standard[1]!, 'base64') : Buffer.from(secret, 'utf8');
}

/** What is wrong with a secret (`whsec_ is not followed by base64`), or `undefined` when it can sign. */
export function secretProblem(secret: string): string | undefined {
  if (secret.startsWith('whsec_') && !WHSEC.test(secret)) return 'whsec_ is not followed by base64';
  const bytes = signingKey(secret).length;
  if (bytes < MIN_SECRET_BYTES) return `it holds ${bytes} bytes, fewer than ${MIN_SECRET_BYTES}`;
  return undefined;
}

/** How to make a good secret, for error messages. */
export const SECRET_ADVICE = `${MIN_SECRET_BYTES} bytes or more, such as the output of \`openssl rand -hex 32\`, or a Standard Webhooks whsec_<base64> secret`;

function hmac(key: Buffer, id: string, timestamp: string, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
}

/** The `webhook-signature` value of `body` sent as event `id` at `timestampSeconds`: `v1,<base64>`. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string | Uint8Array): string {
  return `v1,${hmac(signingKey(secret), id, String(timestampSeconds), body).toString('base64')}`;
}

export interface WebhookVerificationInput {
  /** The shared secret; several during a rotation (any one may match). */
  readonly secret: string | readonly string[];
  /** The raw request body, exactly as received (verify before parsing: re-serialised JSON differs). */
  readonly body: string | Uint8Array;
  /** The request headers: a fetch `Headers`, or Node's `req.headers` (any case). */
  readonly headers: Headers | Readonly<Record<string, string | readonly string[] | undefined>>;
  /** Oldest (and furthest in the future) timestamp accepted, in seconds from now. @default 300 */
  readonly toleranceSeconds?: number;
  /** The receiver's clock. @default Date.now() */
  readonly now?: Date | number;
}

export type WebhookVerification =
  | { readonly valid: true; readonly id: string; readonly timestamp: number }
  | {
      readonly valid: false;
      readonly reason: 'missing-headers' | 'bad-timestamp' | 'timestamp-out-of-tolerance' | 'bad-signature';
    };

function header(headers: WebhookVerificationInput['headers'], name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return typeof value === 'string' ? value : value?.[0];
}

/**
 * Checks a webhook request: all three headers present, the timestamp within `toleranceSeconds` of `now` (an old
 * request replayed is refused), and one `v1` signature matching (compared in constant time). Never throws.
 *
 * @example
 * const check = verifyWebhookSignature({ secret: process.env.KOAN_WEBHOOK_SECRET!, body: rawBody, headers: req.headers });
 * if (!check.valid) return res.writeHead(401).end(check.reason);
 */
export function verifyWebhookSignature(input: WebhookVerificationInput): WebhookVerification {
  const id = header(input.headers, SIGNATURE_HEADERS.id);
  const timestamp = header(input.headers, SIGNATURE_HEADERS.timestamp);
  const signatures = header(input.headers, SIGNATURE_HEADERS.signature);
  if (!id || !timestamp || !signatures) return { valid: false, reason: 'missing-headers' };
  if (!/^\d{1,15}$/.test(timestamp)) return { valid: false, reason: 'bad-timestamp' };
  const nowMs = input.now === undefined ? Date.now() : Number(input.now);
  const tolerance = input.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > tolerance)
    return { valid: false, reason: 'timestamp-out-of-tolerance' };
  const given = signatures
    .split(' ')
    .filter((s) => s.startsWith('v1,'))
    .map((s) => Buffer.from(s.slice(3), 'base64'));
  const secrets = typeof input.secret === 'string' ? [input.secret] : input.secret;
  for (const secret of secrets) {
    const expected = hmac(signingKey(secret), id, timestamp, input.body);
    if (given.some((g) => g.length === expected.length && timingSafeEqual(g, expected)))
      return { valid: true, id, timestamp: Number(timestamp) };
  }
  return { valid: false, reason: 'bad-signature' };
}

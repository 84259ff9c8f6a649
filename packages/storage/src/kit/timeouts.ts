import { StorageError } from '../driver.js';
import { intSetting, settingPath } from '../settings.js';

/** How long connecting to a remote endpoint may take, by default. */
export const DEFAULT_CONNECTION_TIMEOUT_MS = 10_000;
/** How long a request may go without sending or receiving a byte, by default. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

const positive = () => intSetting().refine((n) => n >= 1, 'must be at least 1 (milliseconds)');

/**
 * Settings shared by the remote providers. Without them, an endpoint that accepts connections and never answers
 * (a "black hole": a stuck proxy, a firewall that drops replies) holds a listing or a lookup forever.
 */
export const timeoutSettingsShape = {
  /** How long connecting may take, in ms. @default 10000 */
  connectionTimeoutMs: positive()
    .optional()
    .describe(`How long connecting may take, in ms (default ${DEFAULT_CONNECTION_TIMEOUT_MS})`),
  /**
   * How long a request may go without sending or receiving a byte, in ms (an idle time, not a total: a large upload
   * or download that keeps moving is never cut). @default 60000
   */
  requestTimeoutMs: positive()
    .optional()
    .describe(
      `How long a request may go without sending or receiving a byte, in ms (default ${DEFAULT_REQUEST_TIMEOUT_MS}); an endpoint that accepts connections and never answers fails after it`,
    ),
};

export type TimeoutKind = 'connection' | 'request';

/** The timeouts of a remote driver, defaults applied. */
export interface Timeouts {
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

export function timeoutsOf(options: Partial<Timeouts>): Timeouts {
  return {
    connectionTimeoutMs: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
  };
}

/** The error a driver's transport raises when a timeout fires (transient: `code` `ETIMEDOUT`, `name` `TimeoutError`). */
export class RequestTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  readonly kind: TimeoutKind;
  readonly ms: number;

  constructor(kind: TimeoutKind, ms: number, target: string) {
    super(
      kind === 'connection'
        ? `could not connect to ${target} within ${ms} ms`
        : `${target} sent nothing for ${ms} ms (the connection is open but the endpoint does not answer)`,
    );
    this.kind = kind;
    this.ms = ms;
  }
}

/**
 * Which timeout `e` is: a `RequestTimeoutError`, or an SDK error that copied its message and code (the Azure SDK
 * wraps transport errors in its own `RestError`).
 */
export function requestTimeoutKind(e: unknown): TimeoutKind | undefined {
  if (e instanceof RequestTimeoutError) return e.kind;
  const { code, message } = (e ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'ETIMEDOUT' || typeof message !== 'string') return undefined;
  if (/^could not connect to \S+ within \d+ ms$/.test(message)) return 'connection';
  if (/^\S+ sent nothing for \d+ ms /.test(message)) return 'request';
  return undefined;
}

/**
 * The `TRANSIENT` error of a request that timed out, naming the profile and the setting that decides how long it
 * waits: `[storage] [s3] Listing "x" in bucket b timed out: ... raise Koan.Storage.Profiles.p.Settings.RequestTimeoutMs`.
 */
export function timeoutError(
  kind: TimeoutKind,
  context: {
    readonly provider: string;
    readonly profile: string;
    readonly action: string;
    readonly where: string;
    readonly ms: number;
    readonly key?: string;
    readonly cause: unknown;
  },
): StorageError {
  const setting = settingPath(context.profile, kind === 'connection' ? 'connectionTimeoutMs' : 'requestTimeoutMs');
  const what =
    kind === 'connection'
      ? `no connection within ${context.ms} ms`
      : `no answer for ${context.ms} ms (the endpoint accepted the connection and went silent)`;
  return new StorageError(
    'TRANSIENT',
    `[storage] [${context.provider}] ${context.action} ${context.where} timed out: ${what}. Check the endpoint of profile '${context.profile}', or raise ${setting} if the link is that slow.`,
    { profile: context.profile, key: context.key, cause: context.cause },
  );
}

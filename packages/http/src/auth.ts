import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { httpError } from './_errors.js';

/** Decides whether a request may use the API. */
export type AuthCheck = (request: Request) => boolean | Promise<boolean>;

export interface AuthGuardOptions {
  readonly check: AuthCheck;
  /** Requests that need no check (the dashboard page itself, which holds no data). */
  readonly skip?: (c: Context) => boolean;
}

/**
 * Refuses requests the check rejects with `401 UNAUTHORIZED` and `WWW-Authenticate: Bearer`.
 *
 * @example
 * app.use(authGuard({ check: bearerToken(process.env.KOAN_BACKUP_TOKEN!) }));
 */
export function authGuard({ check, skip }: AuthGuardOptions): MiddlewareHandler {
  return async function authGuard(c, next) {
    if (!skip?.(c) && !(await check(c.req.raw)))
      throw httpError(401, 'UNAUTHORIZED', 'Missing or invalid credentials: send Authorization: Bearer <token>.');
    await next();
  };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * An {@link AuthCheck} accepting `Authorization: Bearer <token>`, compared in constant time.
 *
 * @example
 * createBackupApi(context, { auth: bearerToken(process.env.KOAN_BACKUP_TOKEN!) });
 */
export function bearerToken(token: string): AuthCheck {
  if (token.length < 16) throw new TypeError('bearerToken: use a token of at least 16 characters.');
  const expected = digest(token);
  return function bearerToken(request) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get('authorization') ?? '');
    return match !== null && timingSafeEqual(digest(match[1]!), expected);
  };
}

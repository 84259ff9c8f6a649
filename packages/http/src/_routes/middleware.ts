/**
 * What wraps every route of the API: the error and not-found shapes, security headers, connection handling for
 * unread bodies, the auth guard (the dashboard page and the liveness and readiness probes excepted) and the body size
 * limit.
 */
import type { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { httpError, respondWithError } from '../_errors.js';
import { type AuthCheck, authGuard } from '../auth.js';
import { PUBLIC_HEALTH_PATHS } from './health.js';
import type { ApiScope } from './scope.js';

/**
 * The dashboard page (it holds no data and asks for the token) and the liveness and readiness probes, below the base
 * path and without the one trailing slash every route also answers with.
 */
const PUBLIC_PATHS = new Set(['', '/dashboard', ...PUBLIC_HEALTH_PATHS]);
const MAX_BODY_BYTES = 1024 * 1024;

export function installMiddleware(app: Hono, api: ApiScope, auth: AuthCheck | undefined): void {
  app.onError(respondWithError);
  app.notFound((c) =>
    c.json({ error: { code: 'NOT_FOUND', message: `No route ${c.req.method} ${c.req.path}`, details: {} } }, 404),
  );
  app.use(async function securityHeaders(c, next) {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });
  // A request body the server never read (a 413, a 401, a 404, a bad query parameter...) is still on the socket: reply
  // `Connection: close` so the client opens a new connection for its next request instead of reusing one that the
  // server closes (keep-alive would fail with "other side closed" / "socket hang up").
  app.use(async function closeUnreadBody(c, next) {
    await next();
    if (c.req.raw.body && !c.req.raw.bodyUsed) c.header('Connection', 'close');
  });
  if (auth)
    app.use(
      authGuard({
        check: auth,
        skip: (c) => c.req.method === 'GET' && PUBLIC_PATHS.has(api.local(c).replace(/\/$/, '')),
      }),
    );
  app.use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => {
        // The rest of the body stays unread (a chunked one is partly read, so closeUnreadBody cannot tell).
        c.header('Connection', 'close');
        throw httpError(413, 'PAYLOAD_TOO_LARGE', `Request bodies are limited to ${MAX_BODY_BYTES} bytes.`);
      },
    }),
  );
}

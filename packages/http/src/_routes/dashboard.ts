/** The dashboard page routes (`/` and `/dashboard`): the page with a fresh nonce and its Content-Security-Policy. */
import type { Context, Hono } from 'hono';
import { dashboardHtml } from '../_dashboard.js';
import type { ApiScope } from './scope.js';

export function dashboardRoutes(app: Hono, api: ApiScope, authRequired: boolean): void {
  const page = (c: Context) => {
    const nonce = crypto.randomUUID().replaceAll('-', '');
    c.header(
      'Content-Security-Policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    return c.html(dashboardHtml({ basePath: api.base, nonce, authRequired }));
  };
  app.get('/', page);
  app.get('/dashboard', page);
}

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve as serveNode } from '@hono/node-server';
import { KoanError } from '@koan/data';
import type { BackupContext } from '@koan/data-backup';
import type { Hono } from 'hono';
import { type BackupApiOptions, createBackupApi, shutdownBackupApi } from './api.js';

export interface ServeOptions extends BackupApiOptions {
  /** `0` picks a free port (see {@link BackupServer.port}). @default 8787 */
  readonly port?: number;
  /** @default '127.0.0.1' (this machine only) */
  readonly hostname?: string;
  /**
   * Listening on a non-loopback address without `auth` is refused (anyone on the network could delete backups): `serve`
   * throws a `KoanError` with code `INVALID_OPTION` and `details.option: 'auth'`. Set this to do it anyway, e.g. behind
   * a proxy that authenticates. @default false
   */
  readonly allowUnauthenticated?: boolean;
  /**
   * Host names (no port) accepted in the `Host` header while bound to loopback; others get `421`, which stops
   * DNS-rebinding pages from reaching the API through the user's browser. @default ['localhost', '127.0.0.1', '[::1]']
   */
  readonly allowedHosts?: readonly string[];
}

export interface BackupServer {
  readonly app: Hono;
  readonly hostname: string;
  readonly port: number;
  /** Base URL of the API and dashboard, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  /** Cancels running jobs (nothing half-written is published), then closes the server and its connections. */
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

/**
 * Serves the backup API and dashboard with Node's HTTP server.
 *
 * @example
 * const server = await serve(await BackupContext.fromConfig(), { port: 8787 });
 * console.log(`dashboard: ${server.url}/`);
 * process.once('SIGINT', () => void server.close());
 */
export async function serve(context: BackupContext, options: ServeOptions = {}): Promise<BackupServer> {
  const {
    port = 8787,
    hostname = '127.0.0.1',
    allowUnauthenticated = false,
    allowedHosts = ['localhost', '127.0.0.1', '[::1]'],
    ...apiOptions
  } = options;
  if (!LOOPBACK.test(hostname) && !apiOptions.auth && !allowUnauthenticated)
    throw new KoanError(
      'INVALID_OPTION',
      `serve: refusing to listen on ${hostname} without auth. Pass auth (e.g. bearerToken(token)), bind 127.0.0.1, or set allowUnauthenticated when a proxy authenticates.`,
      { details: { option: 'auth', hostname } },
    );
  const app = createBackupApi(context, apiOptions);
  const hosts = new Set(allowedHosts.map((h) => h.toLowerCase()));
  const fetch = LOOPBACK.test(hostname)
    ? function checkHost(request: Request): Response | Promise<Response> {
        const host = (request.headers.get('host') ?? '').toLowerCase().replace(/:\d+$/, '');
        if (hosts.has(host)) return app.fetch(request);
        const error = { code: 'HOST_NOT_ALLOWED', message: `Host ${host || '(none)'} is not allowed.`, details: {} };
        return Response.json({ error }, { status: 421 });
      }
    : app.fetch;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serveNode({ fetch, port, hostname }, () => resolve(s as Server)) as Server;
    s.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    app,
    hostname: address.address,
    port: address.port,
    url: `http://${host}:${address.port}`,
    close() {
      closing ??= (async () => {
        await shutdownBackupApi(app);
        await new Promise<void>((resolve, reject) => {
          server.close((e) => (e ? reject(e) : resolve()));
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

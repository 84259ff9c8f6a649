/**
 * A real HTTP receiver on 127.0.0.1 (port 0) for the notification tests: it records every request (method, path,
 * headers, raw body) and answers as `respond` says for the n-th request (0-based). An answer may be held until the
 * test releases it, to play a slow receiver.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach } from 'vitest';

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface Answer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  /** Answer only once this promise settles (a slow receiver). */
  readonly after?: Promise<unknown>;
}

export interface Receiver {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  close(): Promise<void>;
}

export async function startReceiver(respond: (n: number, req: ReceivedRequest) => Answer = () => ({ status: 200 })) {
  const requests: ReceivedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const received = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const n = requests.push(received) - 1;
      const answer = respond(n, received);
      if (answer.after) await answer.after.catch(() => undefined);
      if (res.destroyed) return;
      res.writeHead(answer.status, answer.headers).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/koan`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  } satisfies Receiver;
}

/** A URL on 127.0.0.1 where nothing listens: a port that was just bound, then released. */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/hooks/koan`;
}

/** `startReceiver` for one test file: every receiver it starts is closed after each test. */
export function receiverPerTest(): (respond?: (n: number) => Answer) => Promise<Receiver> {
  const open: Receiver[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((r) => r.close()));
  });
  return async (respond) => {
    const r = await startReceiver(respond);
    open.push(r);
    return r;
  };
}

/** An answer held back until `release()` (a slow receiver), for `Answer.after`. */
export function heldAnswer(): { after: Promise<void>; release: () => void } {
  let release!: () => void;
  const after = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { after, release };
}

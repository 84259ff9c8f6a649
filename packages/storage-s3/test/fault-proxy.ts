import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';

export type Fault = '503' | 'reset' | 'truncate';

export interface ProxyRequest {
  readonly n: number;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

export interface LocalAnswer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

export interface FaultProxyOptions {
  /** `http://127.0.0.1:PORT` of the real server. */
  readonly target: string;
  /** Which fault, if any, request `n` gets. Deterministic schedules only. */
  readonly schedule?: (req: ProxyRequest) => Fault | undefined;
  /** Answer a request here instead of forwarding it (fakes of calls the server lacks). */
  readonly answer?: (req: ProxyRequest) => LocalAnswer | undefined;
  /** Sees each forwarded exchange (to learn ids the server handed out). */
  readonly observe?: (req: ProxyRequest, status: number, body: Buffer) => void;
}

export interface FaultProxy {
  readonly url: string;
  readonly counts: Record<Fault, number> & { requests: number };
  stop(): Promise<void>;
}

const ERROR_XML = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the fault proxy</Message></Error>`;

/**
 * A small HTTP proxy on 127.0.0.1 that forwards to an S3 or Azure emulator and, on a schedule,
 * answers 503, resets the connection before forwarding, or cuts a response body in half.
 * Headers are forwarded untouched (SigV4 signs Host), request bodies are read whole (test sizes).
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const counts = { requests: 0, '503': 0, reset: 0, truncate: 0 };
  const sockets = new Set<import('node:net').Socket>();

  const server: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const info: ProxyRequest = {
      n: counts.requests++,
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      headers: req.headers,
      body: Buffer.concat(chunks),
    };
    const local = options.answer?.(info);
    if (local) {
      res.writeHead(local.status, local.headers);
      res.end(local.body);
      return;
    }
    let fault = options.schedule?.(info);
    if (fault === 'truncate' && info.method !== 'GET') fault = 'reset';
    if (fault === 'reset') {
      counts.reset++;
      req.socket.destroy();
      return;
    }
    if (fault === '503') {
      counts['503']++;
      res.writeHead(503, { 'content-type': 'application/xml', 'x-ms-error-code': 'ServerBusy' });
      res.end(ERROR_XML(info.headers['x-ms-version'] ? 'ServerBusy' : 'SlowDown'));
      return;
    }
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: info.method,
        path: info.url,
        headers: info.headers,
      },
      async (up) => {
        const body: Buffer[] = [];
        for await (const c of up) body.push(c as Buffer);
        const all = Buffer.concat(body);
        options.observe?.(info, up.statusCode ?? 0, all);
        if (fault === 'truncate' && all.length > 1) {
          counts.truncate++;
          res.writeHead(up.statusCode ?? 502, up.headers);
          res.write(all.subarray(0, Math.floor(all.length / 2)), () => res.socket?.destroy());
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        res.end(all);
      },
    );
    upstream.on('error', () => res.socket?.destroy());
    upstream.end(info.body);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Over real HTTP on 127.0.0.1: connection handling (a request body the server never read ends its keep-alive
 * connection cleanly). Through `app.request()`: one trailing slash on every route, with and without `basePath`, and
 * prune without a policy. And the dashboard's script, run in `node:vm` against a minimal fake DOM.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { DataRuntime } from '@koan/data';
import { BackupContext } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardHtml } from '../src/_dashboard.js';
import { bearerToken, createBackupApi, serve, shutdownBackupApi } from '../src/index.js';

let dir: string;
let context: BackupContext;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-backup-http-conn-'));
  const runtime = new DataRuntime({ cwd: dir, sources: { http_conn_mem: { provider: 'memory' } } });
  const storage = await StorageProfiles.load(
    { defaultProfile: 'local', profiles: { local: { provider: 'local', settings: { root: join(dir, 'backups') } } } },
    { cwd: dir },
  );
  context = new BackupContext({ runtime, storage });
});

afterAll(async () => {
  await context?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  socket: unknown;
}

/** One request through `agent`; `chunked` sends the body without a Content-Length. */
function send(agent: Agent, url: string, method: string, body?: string, chunked = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = body === undefined ? {} : { 'content-type': 'application/json' };
    if (body !== undefined && !chunked) headers['content-length'] = Buffer.byteLength(body);
    const req = request(url, { agent, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text, socket: req.socket }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('connections', () => {
  it('a body over 1 MiB gets 413 with Connection: close, and the next request on a keep-alive agent succeeds', async () => {
    const server = await serve(context, { port: 0 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const huge = JSON.stringify({ name: 'a', description: 'x'.repeat(2 * 1024 * 1024) });
      for (const chunked of [false, true]) {
        const first = await send(agent, `${server.url}/backups`, 'POST', huge, chunked);
        expect(first.status).toBe(413);
        expect(JSON.parse(first.body).error.code).toBe('PAYLOAD_TOO_LARGE');
        expect(first.headers.connection).toBe('close');
        const second = await send(agent, `${server.url}/stats`, 'GET');
        expect(second.status, second.body).toBe(200);
        expect(second.socket).not.toBe(first.socket);
      }
    } finally {
      agent.destroy();
      await server.close();
    }
  });

  it('any other response that leaves the body unread closes too; one that read it keeps the connection', async () => {
    const server = await serve(context, { port: 0 });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const big = JSON.stringify({ name: 'a', description: 'x'.repeat(900_000) });
      for (const [path, status] of [
        ['/backups?colour=red', 400], // refused on its query string, before the body is read
        ['/nowhere', 404],
      ] as const) {
        const first = await send(agent, `${server.url}${path}`, 'POST', big);
        expect(first.status).toBe(status);
        expect(first.headers.connection).toBe('close');
        expect((await send(agent, `${server.url}/stats`, 'GET')).status).toBe(200);
      }
      // the body was read (and refused): keep-alive goes on, on the same socket
      const read = await send(agent, `${server.url}/backups`, 'POST', JSON.stringify({ name: 'bad name!' }));
      expect(read.status).toBe(400);
      expect(read.headers.connection).toBe('keep-alive');
      const next = await send(agent, `${server.url}/stats`, 'GET');
      expect(next.status).toBe(200);
      expect(next.socket).toBe(read.socket);
    } finally {
      agent.destroy();
      await server.close();
    }
  });
});

describe('paths', () => {
  it('every route answers with or without one trailing slash, with and without basePath', async () => {
    for (const base of ['', '/admin']) {
      const app = createBackupApi(context, { basePath: base });
      try {
        for (const path of ['', '/', '/dashboard', '/dashboard/']) {
          if (!base && !path) continue; // no path at all is "/"
          const res = await app.request(`${base}${path}`);
          expect(res.status, `${base}${path}`).toBe(200);
          expect(await res.text()).toContain('<title>Koan backups</title>');
        }
        for (const path of ['/backups', '/backups/', '/stats', '/stats/', '/jobs/', '/entities/']) {
          const res = await app.request(`${base}${path}`);
          expect(res.status, `${base}${path}`).toBe(200);
        }
        const backups = (await (await app.request(`${base}/backups/?take=0`)).json()) as { totalCount: number };
        expect(backups.totalCount).toBe(0);
        // a parameterised route too: the backup is looked up (and not found), the route is not a 404 NOT_FOUND
        const one = await app.request(`${base}/backups/nightly/`);
        expect(((await one.json()) as { error: { code: string } }).error.code).toBe('BACKUP_NOT_FOUND');
        const cleanup = await app.request(`${base}/maintenance/cleanup/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        expect(cleanup.status).toBe(200);
        // two slashes are not one route
        expect((await app.request(`${base}/backups//`)).status).toBe(404);
      } finally {
        await shutdownBackupApi(app);
      }
    }
  });

  it('a trailing slash does not get around auth; the dashboard page stays public with one', async () => {
    const token = 'test-token-0123456789abcdef';
    const app = createBackupApi(context, { basePath: '/admin', auth: bearerToken(token) });
    try {
      for (const path of ['/admin', '/admin/', '/admin/dashboard', '/admin/dashboard/'])
        expect((await app.request(path)).status, path).toBe(200);
      for (const path of ['/admin/stats/', '/admin/backups/', '/admin/jobs/'])
        expect((await app.request(path)).status, path).toBe(401);
      const ok = await app.request('/admin/backups/', { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).toBe(200);
    } finally {
      await shutdownBackupApi(app);
    }
  });
});

describe('maintenance', () => {
  it('POST /maintenance/prune without any retention policy is a 400 naming the policy field', async () => {
    const app = createBackupApi(context);
    try {
      const res = await app.request('/maintenance/prune', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { code: string; message: string; details: { field?: string } } };
      expect(error.code).toBe('INVALID_OPTION');
      expect(error.details.field).toBe('policy');
      expect(error.message).toMatch(/RetentionPolicy/);
    } finally {
      await shutdownBackupApi(app);
    }
  });
});

// ---- the dashboard script in a fake DOM -------------------------------------------------------------------------

class FakeNode {
  textContent = '';
}
class FakeElement extends FakeNode {
  className = '';
  hidden = false;
  value = '';
  readonly children: unknown[] = [];
  readonly listeners = new Map<string, ((event: unknown) => unknown)[]>();
  constructor(readonly tag: string) {
    super();
  }
  addEventListener(type: string, fn: (event: unknown) => unknown) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  setAttribute() {}
  append(...nodes: unknown[]) {
    this.children.push(...nodes);
  }
  replaceChildren(...nodes: unknown[]) {
    this.children.splice(0, this.children.length, ...nodes);
  }
  fire(type: string) {
    for (const fn of this.listeners.get(type) ?? []) fn({ preventDefault() {}, target: this });
  }
}

/** A fake answer with a status other than 200. */
class WithStatus {
  constructor(
    readonly body: unknown,
    readonly status: number,
  ) {}
}

/** Runs the dashboard's script with `fetch` answered by `respond`; returns the page's elements by id. */
function runDashboard(respond: (method: string, path: string) => unknown) {
  const html = dashboardHtml({ basePath: '', nonce: 'n0nce', authRequired: false });
  const script = /<script nonce="n0nce">([\s\S]*)<\/script>/.exec(html)![1]!;
  const elements = new Map<string, FakeElement>();
  const byId = (id: string) => {
    if (!elements.has(id)) elements.set(id, new FakeElement(id));
    return elements.get(id)!;
  };
  const calls: string[] = [];
  const sandbox: Record<string, unknown> = {
    document: {
      getElementById: byId,
      querySelector: (selector: string) => ({ content: selector.includes('koan-auth') ? 'none' : '' }),
      createElement: (tag: string) => new FakeElement(tag),
      createTextNode: (text: string) => Object.assign(new FakeNode(), { textContent: text }),
    },
    Node: FakeNode,
    FormData: class {
      *[Symbol.iterator]() {}
      get() {
        return null;
      }
    },
    sessionStorage: { getItem: () => null, setItem() {} },
    fetch: async (url: string, init: { method: string }) => {
      calls.push(`${init.method} ${url}`);
      const answer = respond(init.method, url);
      return answer instanceof WithStatus
        ? Response.json(answer.body, { status: answer.status })
        : Response.json(answer);
    },
    AbortController,
    URLSearchParams,
    console,
  };
  sandbox.window = Object.assign(sandbox, { confirm: () => true });
  runInNewContext(script, sandbox);
  return { byId, calls, sandbox: sandbox as Record<string, (...args: unknown[]) => unknown> };
}

/** What GET /health answers when nothing is wrong. */
const HEALTHY = {
  healthy: true,
  checkedAt: '2024-12-17T08:00:00Z',
  storageProfiles: ['local'],
  targets: [],
  checks: [],
  problems: [],
};

const settle = async (calls: string[], until: (calls: string[]) => boolean) => {
  for (let i = 0; i < 200 && !until(calls); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  await new Promise((resolve) => setTimeout(resolve, 20));
};

describe('dashboard script', () => {
  it('keeps the "Deleted ..., freed ..." message through the refresh that follows; a user action clears it', async () => {
    const backup = { id: '0193aaaa-0000-7000-8000-000000000001', name: 'nightly', createdAt: '2024-12-17T08:00:00Z' };
    const page = runDashboard((method, path) => {
      if (method === 'DELETE') return { ...backup, storageProfile: 'local', deletedKeys: [], freedBytes: 2048 };
      if (path.startsWith('/health')) return HEALTHY;
      if (path.startsWith('/stats'))
        return { totalBackups: 0, healthyBackups: 0, backupsRequiringAttention: 0, totalSizeBytes: 0 };
      if (path.startsWith('/backups')) return { backups: [], totalCount: 0 };
      return { jobs: [] };
    });
    await settle(page.calls, (c) => c.length >= 3); // the first load
    page.sandbox.remove!(backup);
    await settle(page.calls, (c) => c.filter((x) => x.startsWith('GET /jobs')).length >= 2); // delete, then reload
    expect(page.calls).toContain(`DELETE /backups/${backup.id}?confirm=${backup.id}`);
    expect(page.byId('message').textContent).toBe('Deleted nightly, freed 2.0 KiB');
    expect(page.byId('message').className).toBe('');
    // the Refresh button is an explicit action: it clears the message
    page.byId('refresh').fire('click');
    expect(page.byId('message').textContent).toBe('');
  });
});

/** Every text under `node`, in order. */
function textOf(node: unknown): string {
  if (node instanceof FakeElement) return node.children.map(textOf).join(' ');
  return node instanceof FakeNode ? node.textContent : '';
}

describe('dashboard rendering', () => {
  it("shows how many objects a backup left out, and a restore job's status and created tables", async () => {
    const backup = {
      id: '0193aaaa-0000-7000-8000-000000000002',
      name: 'legacy',
      createdAt: '2024-12-17T08:00:00Z',
      status: 'Completed',
      healthStatus: 'Unknown',
      sizeBytes: 10,
      itemCount: 3,
      entityTypes: ['customers'],
      tags: [],
      restorable: true,
      omitted: [{ source: 'cli', name: 'audit', kind: 'table', reason: 'excluded on request (excludeEntityTypes)' }],
    };
    const job = {
      id: 'j1',
      kind: 'restore',
      backup: 'legacy',
      request: {},
      status: 'succeeded',
      createdAt: '2024-12-17T08:00:00Z',
      result: {
        status: 'Completed',
        dryRun: false,
        totalRecords: 3,
        createdTables: [{ source: 't', tables: ['a', 'b'] }],
      },
    };
    const page = runDashboard((_method, path) => {
      if (path.startsWith('/health')) return HEALTHY;
      if (path.startsWith('/stats'))
        return { totalBackups: 1, healthyBackups: 0, backupsRequiringAttention: 0, totalSizeBytes: 10 };
      if (path.startsWith('/backups')) return { backups: [backup], totalCount: 1 };
      return { jobs: [job] };
    });
    await settle(page.calls, (c) => c.length >= 3);
    expect(textOf(page.byId('backups'))).toContain('1 left out (hover for why)');
    expect(textOf(page.byId('jobs'))).toContain('Completed · restored 3 records · 2 tables created');
  });
});

describe('dashboard: storage profiles that could not be read', () => {
  /** The banner's text, spaced as the page shows it (textOf puts a space between every node). */
  const bannerText = (banner: unknown) => textOf(banner).replace(/\s+/g, ' ');
  const down = { profile: 's3', code: 'TRANSIENT', message: 'connect ECONNREFUSED 127.0.0.1:9' };
  const stats = { totalBackups: 0, healthyBackups: 0, backupsRequiringAttention: 0, totalSizeBytes: 0 };

  it('shows a banner naming each profile and why when a listing reports unavailableProfiles, and hides it after', async () => {
    let reported = [down];
    const page = runDashboard((_method, path) => {
      if (path.startsWith('/stats')) return { ...stats, unavailableProfiles: reported };
      if (path.startsWith('/backups')) return { backups: [], totalCount: 0, unavailableProfiles: reported };
      return { jobs: [] };
    });
    await settle(page.calls, (c) => c.length >= 3);
    const banner = page.byId('unavailable');
    expect(banner.hidden).toBe(false);
    expect(banner.children).toHaveLength(1); // one line per profile, though both answers report it
    expect(bannerText(banner)).toContain(
      'Storage profile s3 could not be read (TRANSIENT: connect ECONNREFUSED 127.0.0.1:9).',
    );
    expect(bannerText(banner)).toContain(
      'Its backups are not counted in the statistics. Its backups are missing from the list below.',
    );
    // the profile is back: the next refresh clears the banner
    reported = [];
    page.byId('refresh').fire('click');
    await settle(page.calls, (c) => c.length >= 6);
    expect(banner.hidden).toBe(true);
    expect(banner.children).toEqual([]);
  });

  it('and when a lookup by name that was allowed past them (a restore job) reports them', async () => {
    const job = {
      id: 'j9',
      kind: 'restore',
      backup: 'nightly',
      request: { allowUnreachableProfiles: true },
      status: 'succeeded',
      createdAt: '2024-12-17T08:00:00Z',
      result: { status: 'Completed', dryRun: false, totalRecords: 1, unavailableProfiles: [down] },
    };
    const page = runDashboard((_method, path) => {
      if (path.startsWith('/stats')) return { ...stats, unavailableProfiles: [] };
      if (path.startsWith('/backups')) return { backups: [], totalCount: 0, unavailableProfiles: [] };
      return { jobs: [job] };
    });
    await settle(page.calls, (c) => c.length >= 3);
    const banner = page.byId('unavailable');
    expect(banner.hidden).toBe(false);
    expect(bannerText(banner)).toContain('Storage profile s3 could not be read (TRANSIENT:');
    expect(bannerText(banner)).toContain('The restore job for nightly used the newest backup of the other profiles');
  });

  it('a listing that reports none leaves no banner', async () => {
    const page = runDashboard((_method, path) => {
      if (path.startsWith('/stats')) return { ...stats, unavailableProfiles: [] };
      if (path.startsWith('/backups')) return { backups: [], totalCount: 0, unavailableProfiles: [] };
      return { jobs: [] };
    });
    await settle(page.calls, (c) => c.length >= 3);
    expect(page.byId('unavailable').hidden).toBe(true);
  });
});

/** Waits (up to 15 s, so a loaded machine is no problem) until the page shows what `done` looks for. */
async function rendered(done: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(done()).toBe(true);
}

describe('dashboard monitor card', () => {
  const stats = { totalBackups: 0, healthyBackups: 0, backupsRequiringAttention: 0, totalSizeBytes: 0 };
  const answer = (health: unknown, status: number) => (_method: string, path: string) => {
    if (path.startsWith('/health')) return new WithStatus(health, status);
    if (path.startsWith('/stats')) return stats;
    if (path.startsWith('/backups')) return { backups: [], totalCount: 0 };
    return { jobs: [] };
  };

  it('shows Healthy, or (GET /health answering 503) how many problems and each one', async () => {
    const fine = runDashboard(answer(HEALTHY, 200));
    await rendered(() => fine.byId('monitor').textContent !== '');
    expect(fine.calls).toContain('GET /health');
    expect(fine.byId('message').textContent).toBe('');
    expect(fine.byId('monitor').textContent).toBe('Healthy');
    expect(fine.byId('monitor').className).toBe('value ok');
    expect(fine.byId('monitor-problems').children).toEqual([]);

    const problem = {
      scope: 'name',
      target: 'nightly',
      storageProfile: 'local',
      check: 'MaxAgeHours',
      observed: 30,
      limit: 26,
      message: 'nightly in local: the newest healthy completed backup is 30 hours old (MaxAgeHours 26)',
      hint: 'Back up now',
    };
    const sick = runDashboard(answer({ ...HEALTHY, healthy: false, problems: [problem] }, 503));
    await rendered(() => sick.byId('monitor').textContent !== '');
    expect(sick.byId('monitor').textContent).toBe('1 problem');
    expect(sick.byId('monitor').className).toBe('value bad');
    expect(textOf(sick.byId('monitor-problems'))).toBe(`MaxAgeHours: ${problem.message}`);
    expect(sick.byId('message').textContent).toBe('');
  });
});

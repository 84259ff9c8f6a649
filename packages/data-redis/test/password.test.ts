import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { inCI } from '@koan/data/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provider } from '../src/index.js';

// A Redis that requires a password: a second redis-server on a free loopback port, for this file only.
const hasServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasServer && inCI) throw new Error('redis-server is not installed: CI needs it (apt-get install redis-server)');

const Thing = buildSchema({ name: 'Thing', key: 'id', fields: { id: t.string() } }, 'declared');

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

describe.skipIf(!hasServer)('Redis password setting', () => {
  let server: ChildProcess;
  let url: string;
  beforeAll(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', 's3cret', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    // Ready when its port accepts connections (bounded: 200 tries, 50 ms apart).
    for (let i = 0; i < 200; i++) {
      const open = await new Promise<boolean>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.end();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (open) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(() => {
    server?.kill();
  });

  it('a separate password opens a URL that names none; without it the error says so', async () => {
    const withPassword = provider.create({ url, password: 's3cret' }, { source: 'x', cwd: '.' });
    await withPassword.init();
    try {
      expect(await withPassword.count(Thing, 'root')).toBe(0);
    } finally {
      await withPassword.close();
    }
    const without = provider.create({ url }, { source: 'x', cwd: '.' });
    await expect(
      (async () => {
        await without.init();
        await without.count(Thing, 'root');
      })(),
    ).rejects.toThrow(/NOAUTH|auth/i);
    await without.close().catch(() => {});
  });

  it('a password in the URL wins over the setting', async () => {
    const adapter = provider.create(
      { url: url.replace('//', '//:s3cret@'), password: 'wrong' },
      { source: 'x', cwd: '.' },
    );
    await adapter.init();
    try {
      expect(await adapter.count(Thing, 'root')).toBe(0);
    } finally {
      await adapter.close();
    }
  });
});

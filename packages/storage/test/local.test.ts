import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLocalStorage, createMemoryStorage, TEMP_DIR } from '../src/index.js';
import { describeStorageConformance, readAll } from '../src/testing/index.js';

const dirs: string[] = [];
async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'koan-storage-'));
  dirs.push(dir);
  return dir;
}

describeStorageConformance({ name: 'memory', create: async () => createMemoryStorage() });

let localRoot = '';
describeStorageConformance({
  name: 'local',
  create: async () => {
    localRoot = await tempRoot();
    return createLocalStorage({ root: localRoot, profile: 'disk' });
  },
  destroy: async () => rm(localRoot, { recursive: true, force: true }),
  additionalTests: ({ driver, prefix }) => {
    it('leaves no temp file after a failed put', async () => {
      async function* failing() {
        yield Buffer.from('partial');
        throw new Error('boom');
      }
      await expect(driver().put(`${prefix}t/f`, failing())).rejects.toThrow();
      expect(await readdir(join(localRoot, TEMP_DIR))).toEqual([]);
    });
  },
});

describe('local storage specifics', () => {
  it('reports temp files left by a crash and removes them', async () => {
    const root = await tempRoot();
    const storage = createLocalStorage({ root });
    await storage.put('a/b.txt', [Buffer.from('x')]);
    const crashed = join(root, TEMP_DIR, `dead-beef~${Buffer.from('a/c.txt').toString('base64url')}`);
    await writeFile(crashed, 'half');
    const left = [];
    for await (const u of storage.listIncomplete!()) left.push(u);
    expect(left).toMatchObject([{ key: 'a/c.txt', handle: crashed }]);
    await storage.abortIncomplete!(left[0]!);
    expect(await readdir(join(root, TEMP_DIR))).toEqual([]);
    await expect(
      storage.abortIncomplete!({ key: 'x', handle: join(root, 'a/b.txt'), startedAt: new Date() }),
    ).rejects.toThrow(/not a temp file/);
    const listed = [];
    for await (const o of storage.list('')) listed.push(o.key);
    expect(listed).toEqual(['a/b.txt']);
  });

  it('prunes directories emptied by delete but keeps the root', async () => {
    const root = await tempRoot();
    const storage = createLocalStorage({ root });
    await storage.put('x/y/z.txt', [Buffer.from('z')]);
    await storage.put('x/keep.txt', [Buffer.from('k')]);
    await storage.delete('x/y/z.txt');
    expect((await readdir(join(root, 'x'))).sort()).toEqual(['keep.txt']);
    await storage.delete('x/keep.txt');
    expect((await readdir(root)).filter((n) => n !== TEMP_DIR)).toEqual([]);
  });

  it('refuses keys inside the temp directory', async () => {
    const storage = createLocalStorage({ root: await tempRoot() });
    await expect(storage.put(`${TEMP_DIR}/x`, [Buffer.from('x')])).rejects.toMatchObject({ code: 'INVALID_KEY' });
  });

  it('treats a directory as no object', async () => {
    const root = await tempRoot();
    const storage = createLocalStorage({ root });
    await storage.put('dir/file', [Buffer.from('f')]);
    expect(await storage.head('dir')).toBeUndefined();
    await expect(storage.get('dir')).rejects.toMatchObject({ code: 'NOT_FOUND', key: 'dir' });
    expect(await storage.delete('dir')).toBe(false);
    expect((await readAll(await storage.get('dir/file'))).toString()).toBe('f');
  });
});

afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

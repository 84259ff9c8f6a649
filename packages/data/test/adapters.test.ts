import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createJsonFileAdapter, createMemoryAdapter, type DataAdapter, DataRuntime, t } from '@koan/data';
import { buildSchema, ROOT_SET } from '@koan/data/adapter-kit';
import { describeAdapterConformance, describeSingleKeyStore } from '@koan/data/testing';
import { afterAll, describe, expect, it } from 'vitest';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'koan-json-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describeAdapterConformance({ name: 'memory', create: async () => createMemoryAdapter() });
describeAdapterConformance({ name: 'json', create: async () => createJsonFileAdapter({ directory: await tempDir() }) });
describeSingleKeyStore({ name: 'memory', create: async () => createMemoryAdapter(), json: 'values' });
describeSingleKeyStore({
  name: 'json',
  create: async () => createJsonFileAdapter({ directory: await tempDir() }),
  json: 'values',
});

const Note = buildSchema(
  { name: 'JsonNote', key: 'id', fields: { id: t.integer(), text: t.string(), big: t.bigint() } },
  'declared',
);

describe('json-file adapter', () => {
  it('opening and reading a directory that does not exist creates nothing; the first write creates it', async () => {
    const dir = join(await tempDir(), 'not', 'yet');
    const a = createJsonFileAdapter({ directory: dir });
    await a.init();
    expect(await a.count(Note, ROOT_SET)).toBe(0);
    expect(await a.listSets(Note)).toEqual([]);
    expect(await a.readSnapshot(async (r) => r.count(Note, ROOT_SET))).toBe(0);
    expect(existsSync(dir)).toBe(false);
    await a.ensureEntity(Note, ROOT_SET);
    await a.importBatch(Note, ROOT_SET, [{ id: 1, text: 'x', big: 1n }], { mode: 'insert' });
    expect(await readdir(dir)).toEqual(['JsonNote.jsonl']);
    await a.close();
  });

  it('persists JSON Lines in the archive encoding, in key order, and reads them back after reopening', async () => {
    const dir = await tempDir();
    const a = createJsonFileAdapter({ directory: dir });
    await a.init();
    await a.ensureEntity(Note, ROOT_SET);
    await a.ensureEntity(Note, 'archive');
    await a.importBatch(
      Note,
      ROOT_SET,
      [
        { id: 2, text: 'two\nlines', big: 2n ** 62n },
        { id: 1, text: 'one', big: -1n },
      ],
      { mode: 'insert' },
    );
    await a.close();
    expect((await readdir(dir)).sort()).toEqual(['JsonNote%23archive.jsonl', 'JsonNote.jsonl']);
    const text = await readFile(join(dir, 'JsonNote.jsonl'), 'utf8');
    expect(text).toBe(`{"id":1,"text":"one","big":"-1"}\n{"id":2,"text":"two\\nlines","big":"${2n ** 62n}"}\n`);

    const b = createJsonFileAdapter({ directory: dir });
    await b.init();
    expect(await b.get(Note, ROOT_SET, 2)).toEqual({ id: 2, text: 'two\nlines', big: 2n ** 62n });
    expect(await b.listSets(Note)).toEqual([ROOT_SET, 'archive']);
    await b.close();
  });

  it('leaves no file changed and no temp file behind when a transaction throws (transactions: false, still all-or-nothing on throw)', async () => {
    const dir = await tempDir();
    const a = createJsonFileAdapter({ directory: dir });
    await a.init();
    await a.ensureEntity(Note, ROOT_SET);
    await a.importBatch(Note, ROOT_SET, [{ id: 1, text: 'one', big: 1n }], { mode: 'insert' });
    const before = await readFile(join(dir, 'JsonNote.jsonl'), 'utf8');
    await expect(
      a.transaction(async (tx) => {
        await tx.importBatch(Note, ROOT_SET, [{ id: 2, text: 'two', big: 2n }], { mode: 'insert' });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await readFile(join(dir, 'JsonNote.jsonl'), 'utf8')).toBe(before);
    expect(await a.count(Note, ROOT_SET)).toBe(1);
    expect(await readdir(dir)).toEqual(['JsonNote.jsonl']);
    await a.close();
  });

  it('reports a corrupt line with its file and line number', async () => {
    const dir = await tempDir();
    const a = createJsonFileAdapter({ directory: dir });
    await a.init();
    await a.ensureEntity(Note, ROOT_SET);
    await a.close();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'JsonNote.jsonl'), '{"id":1,"text":"ok","big":"1"}\n{"id":2,"text":"bad","big":1.5}\n');
    const b = createJsonFileAdapter({ directory: dir });
    await b.init();
    await expect(b.count(Note, ROOT_SET)).rejects.toMatchObject({
      code: 'CORRUPT_FILE',
      message: expect.stringContaining('JsonNote.jsonl:2'),
    });
    await b.close();
  });

  it('rejects writes to a set that was never ensured with TABLE_MISSING', async () => {
    const a: DataAdapter = createMemoryAdapter();
    await expect(
      a.importBatch(Note, 'nope', [{ id: 1, text: 'x', big: 1n }], { mode: 'insert' }),
    ).rejects.toMatchObject({ code: 'TABLE_MISSING' });
  });

  it('is loaded by the runtime for providers "memory" and "json"', async () => {
    const dir = await tempDir();
    const runtime = new DataRuntime({
      cwd: dir,
      sources: { m: { provider: 'memory' }, j: { provider: 'json', settings: { directory: 'data' } } },
    });
    expect((await runtime.adapter('m')).provider).toBe('memory');
    const j = await runtime.adapter('j');
    expect(j.provider).toBe('json');
    await j.ensureEntity(Note, ROOT_SET);
    expect(await readdir(join(dir, 'data'))).toEqual(['JsonNote.jsonl']);
    await runtime.close();
  });
});

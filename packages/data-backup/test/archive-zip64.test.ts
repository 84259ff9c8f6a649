import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSource, hashEntry, ZipReader, ZipWriter, type ZipWriterOptions } from '../src/archive/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-archive-zip64-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function writeArchive(name: string, build: (zip: ZipWriter) => Promise<void>, options: ZipWriterOptions = {}) {
  const path = join(dir, name);
  const zip = new ZipWriter(options);
  const written = pipeline(zip.output, createWriteStream(path));
  await build(zip);
  const result = await zip.finish();
  await written;
  return { path, ...result };
}

const PY_SUMMARY = `
import sys, zipfile, zlib
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    infos = z.infolist()
    print(bad, len(infos), sum(i.file_size for i in infos), infos[-1].filename, z.read(infos[-1]).decode())
`;

describe('ZIP64', () => {
  it('writes and reads an archive of more than 65,535 entries (ZIP64 end records)', async () => {
    const count = 65_600;
    const { path } = await writeArchive(
      'many.zip',
      async (zip) => {
        // Queued in batches without awaiting each entry: the writer serialises them.
        for (let i = 0; i < count; i += 1000) {
          const batch: Promise<unknown>[] = [];
          for (let j = i; j < Math.min(count, i + 1000); j++) batch.push(zip.addBuffer(`e/${j}.txt`, `${j}\n`));
          await Promise.all(batch);
        }
      },
      { compress: false },
    );
    const reader = await ZipReader.open(await fileSource(path));
    expect(reader.entries.length).toBe(count);
    expect(reader.entries[count - 1]!.name).toBe(`e/${count - 1}.txt`);
    expect((await reader.readBuffer('e/65599.txt')).toString()).toBe('65599\n');
    expect(await hashEntry(reader, 'e/70.txt')).toMatchObject({ bytes: 3, lines: 1 });
    await reader.close();

    const unzip = execFileSync('unzip', ['-tq', path], { encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(unzip).toContain('No errors detected');
    const py = execFileSync('python3', ['-c', PY_SUMMARY, path], { encoding: 'utf8' }).trim().split(' ');
    expect(py.slice(0, 4)).toEqual(['None', String(count), String(expectedBytes(count)), 'e/65599.txt']);
  });

  it('forceZip64 writes ZIP64 records for small archives that tools and the reader accept', async () => {
    const { path } = await writeArchive(
      'forced.zip',
      async (zip) => {
        await zip.addBuffer('a.jsonl', '{"a":1}\n'.repeat(1000));
        await zip.addBuffer('b.txt', '');
      },
      { forceZip64: true },
    );
    expect(execFileSync('unzip', ['-tq', path], { encoding: 'utf8' })).toContain('No errors detected');
    const py = execFileSync('python3', ['-c', PY_SUMMARY, path], { encoding: 'utf8' }).trim().split(' ');
    expect(py).toEqual(['None', '2', '8000', 'b.txt']);
    const reader = await ZipReader.open(await fileSource(path));
    expect(reader.entry('a.jsonl')).toMatchObject({ uncompressedSize: 8000, localHeaderOffset: 0 });
    expect(await hashEntry(reader, 'a.jsonl')).toMatchObject({ bytes: 8000, lines: 1000 });
    await reader.close();
  });

  // Opt-in: KOAN_TEST_ZIP64_BIG=1 npx vitest run packages/data-backup/test/archive-zip64
  // Writes a ~4.3 GB archive (incompressible data, so sizes AND offsets pass 4 GiB), reads it back.
  it.runIf(process.env.KOAN_TEST_ZIP64_BIG === '1')(
    'streams more than 4 GiB through the writer and reads it back',
    async () => {
      const total = 4.3e9;
      const block = randomBytes(16 << 20);
      const sha = createHash('sha256');
      async function* big() {
        for (let sent = 0; sent < total; ) {
          const at = sent % block.length;
          const chunk = block.subarray(at, Math.min(block.length, at + (1 << 20), at + total - sent));
          sha.update(chunk);
          sent += chunk.length;
          yield chunk;
        }
      }
      const t0 = performance.now();
      const { path, bytes } = await writeArchive('big.zip', async (zip) => {
        await zip.addBuffer('before.txt', 'before\n');
        const s = await zip.addEntry('big.bin', big());
        expect(s.uncompressedBytes).toBe(total);
        expect(s.compressedBytes).toBeGreaterThan(0xffffffff);
        await zip.addEntry(
          'after.jsonl',
          (async function* () {
            yield '{"after":true}\n';
          })(),
        );
      });
      const written = performance.now();
      expect(bytes).toBeGreaterThan(total);
      const reader = await ZipReader.open(await fileSource(path));
      const after = reader.entry('after.jsonl')!;
      expect(after.localHeaderOffset).toBeGreaterThan(0xffffffff);
      const lines: string[] = [];
      for await (const b of reader.lines('after.jsonl')) lines.push(...b.lines);
      expect(lines).toEqual(['{"after":true}']);
      const h = await hashEntry(reader, 'big.bin');
      expect(h).toMatchObject({ bytes: total, sha256: sha.digest('hex') });
      await reader.close();
      const read = performance.now();
      expect(execFileSync('unzip', ['-tq', path], { encoding: 'utf8' })).toContain('No errors detected');
      const tested = performance.now();
      const py = execFileSync('python3', ['-c', PY_SUMMARY, path], { encoding: 'utf8' }).trim().split(' ');
      expect(py).toEqual(['None', '3', String(total + 7 + 15), 'after.jsonl', '{"after":true}']);
      console.log(
        `ZIP64 big: ${(bytes / 1e9).toFixed(2)} GB archive; write ${((written - t0) / 1000).toFixed(1)} s, ` +
          `read+verify ${((read - written) / 1000).toFixed(1)} s, unzip -t ${((tested - read) / 1000).toFixed(1)} s, ` +
          `python ${((performance.now() - tested) / 1000).toFixed(1)} s`,
      );
      rmSync(path, { force: true });
    },
    30 * 60_000,
  );
});

function expectedBytes(count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) n += String(i).length + 1;
  return n;
}

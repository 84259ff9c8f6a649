import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { deflateRawSync, constants as zlibConstants } from 'node:zlib';
import { KoanError } from '@koan/data';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEntry } from '../src/archive/_encode.js';
import {
  bufferSource,
  EntrySpool,
  type EntryStats,
  fileSource,
  hashEntry,
  type LinesResult,
  ZipReader,
  ZipWriter,
  type ZipWriterOptions,
} from '../src/archive/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-archive-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

async function* chunks(...parts: (Uint8Array | string)[]): AsyncGenerator<Uint8Array | string> {
  for (const p of parts) yield p;
}

async function* jsonl(n: number, row: (i: number) => unknown): AsyncGenerator<string> {
  for (let i = 0; i < n; i++) yield `${JSON.stringify(row(i))}\n`;
}

async function collect(iterable: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of iterable) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Builds an archive file with `build` and returns its path plus what `finish` reported. */
async function writeArchive(
  name: string,
  build: (zip: ZipWriter) => Promise<void>,
  options: ZipWriterOptions = {},
): Promise<{ path: string; bytes: number; sha256: string }> {
  const path = join(dir, name);
  const zip = new ZipWriter(options);
  const written = pipeline(zip.output, createWriteStream(path));
  await build(zip);
  const result = await zip.finish();
  await written;
  return { path, ...result };
}

async function expectCode(p: Promise<unknown>, code: string, text?: string): Promise<KoanError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(KoanError);
  expect((err as KoanError).code).toBe(code);
  if (text) expect((err as KoanError).message).toContain(text);
  return err as KoanError;
}

const PY_CHECK = `
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    print(json.dumps({"bad": bad, "entries": {i.filename: [i.file_size, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()}}))
`;

/** Validates with Info-ZIP `unzip -t` and Python's zipfile; returns Python's view (name -> [size, sha256]). */
function externalCheck(path: string): Record<string, [number, string]> {
  const unzip = execFileSync('unzip', ['-tq', path], { encoding: 'utf8' });
  expect(unzip).toContain('No errors detected');
  const py = JSON.parse(execFileSync('python3', ['-c', PY_CHECK, path], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  expect(py.bad).toBeNull();
  return py.entries;
}

const unicodeText = '名前 ✓ héllo 🎉 Ωmega\n'.repeat(20_000);
const multiMbRows = (i: number) => ({ Id: i, Name: `user-${i}`, Note: 'ü✓'.repeat(i % 7), Score: (i * 7919) % 1000 });

async function sampleArchive(name: string, options: ZipWriterOptions = {}) {
  const stats = new Map<string, EntryStats>();
  const spoolDir = mkdtempSync(join(dir, 'spools-'));
  const spool = await EntrySpool.create('entities/Spooled.jsonl', { dir: spoolDir });
  const spooled = await spool.write(jsonl(30_000, (i) => ({ i, s: 'x'.repeat(i % 50) })));
  const stored = await EntrySpool.create('raw/stored.bin', { dir: spoolDir, compress: false });
  const storedEntry = await stored.write(chunks(randomBytes(100_000)));
  const archive = await writeArchive(
    name,
    async (zip) => {
      const add = async (p: Promise<EntryStats>) => {
        const s = await p;
        stats.set(s.name, s);
      };
      await add(zip.addBuffer('manifest.json', JSON.stringify({ version: 1 })));
      await add(zip.addEntry('entities/Empty.jsonl', chunks()));
      await add(zip.addEntry('entities/User.jsonl', jsonl(120_000, multiMbRows)));
      await add(zip.addSpooled(spooled));
      await add(
        zip.addEntry('ünïcode/名前 🎉.txt', chunks(unicodeText.slice(0, 1000), Buffer.from(unicodeText.slice(1000)))),
      );
      await add(zip.addSpooled(storedEntry));
      await add(zip.addBuffer('verification/checksums.json', new Uint8Array([123, 125])));
    },
    options,
  );
  await spooled.dispose();
  await storedEntry.dispose();
  rmSync(spoolDir, { recursive: true, force: true });
  return { ...archive, stats };
}

describe('ZIP writer and reader round trip', () => {
  it('round-trips streamed, buffered, spooled, empty, unicode and multi-MB entries', async () => {
    const { path, bytes, sha256: archiveSha, stats } = await sampleArchive('round-trip.zip');
    const file = readFileSync(path);
    expect(file.length).toBe(bytes);
    expect(sha256(file)).toBe(archiveSha);

    const user = stats.get('entities/User.jsonl')!;
    expect(user.uncompressedBytes).toBeGreaterThan(5_000_000);
    expect(user.lines).toBe(120_000);
    expect(user.compressedBytes).toBeLessThan(user.uncompressedBytes / 3);
    expect(stats.get('entities/Empty.jsonl')).toMatchObject({ uncompressedBytes: 0, lines: 0, crc32: 0 });
    expect(stats.get('raw/stored.bin')).toMatchObject({ uncompressedBytes: 100_000, compressedBytes: 100_000 });

    const reader = await ZipReader.open(await fileSource(path));
    try {
      expect(reader.entries.map((e) => e.name)).toEqual([...stats.keys()]);
      expect(reader.entry('raw/stored.bin')?.method).toBe(0);
      expect(reader.entry('entities/User.jsonl')?.method).toBe(8);
      for (const s of stats.values()) {
        const info = reader.entry(s.name)!;
        expect(info).toMatchObject({
          uncompressedSize: s.uncompressedBytes,
          compressedSize: s.compressedBytes,
          crc32: s.crc32,
        });
        const data = await collect(await reader.openEntry(s.name));
        expect(sha256(data), s.name).toBe(s.sha256);
        const h = await hashEntry(reader, s.name);
        expect(h).toEqual({
          sha256: s.sha256,
          bytes: s.uncompressedBytes,
          lines: h.lines,
          storedSha256: s.storedSha256,
        });
        if (s.lines !== undefined) expect(h.lines).toBe(s.lines);
      }
      expect((await reader.readBuffer('ünïcode/名前 🎉.txt')).toString('utf8')).toBe(unicodeText);
      expect(JSON.parse((await reader.readBuffer('manifest.json')).toString())).toEqual({ version: 1 });
      expect((await reader.readBuffer('entities/Empty.jsonl')).length).toBe(0);
    } finally {
      await reader.close();
    }
  });

  it('onChunk hears every line and byte once, per source chunk, as the writer and the spool count them', async () => {
    const heard = () => {
      const h = { calls: 0, lines: 0, bytes: 0 };
      const on = (lines: number, bytes: number) => {
        h.calls++;
        h.lines += lines;
        h.bytes += bytes;
      };
      return Object.assign(h, { on });
    };
    const rows = (i: number) => ({ i, s: 'ü'.repeat(i % 300) });
    const direct = heard();
    const spooledHeard = heard();
    let written: EntryStats | undefined;
    let spooled: EntryStats | undefined;
    const spool = await EntrySpool.create('entities/S.jsonl', { dir: mkdtempSync(join(dir, 'on-chunk-')) });
    const entry = await spool.write(jsonl(20_000, rows), { onChunk: spooledHeard.on });
    await writeArchive('on-chunk.zip', async (zip) => {
      written = await zip.addEntry('entities/A.jsonl', jsonl(20_000, rows), { onChunk: direct.on });
      spooled = await zip.addSpooled(entry);
    });
    await entry.dispose();
    for (const [h, stats] of [
      [direct, written],
      [spooledHeard, spooled],
    ] as const) {
      expect(stats?.lines).toBe(20_000);
      expect({ lines: h.lines, bytes: h.bytes }).toEqual({ lines: stats?.lines, bytes: stats?.uncompressedBytes });
      expect(h.calls, 'one call per chunk of the source, at its pace').toBe(20_000);
    }
  });

  it('writes archives that unzip -t and Python zipfile accept, plain and forced ZIP64', async () => {
    for (const forceZip64 of [false, true]) {
      const { path, stats } = await sampleArchive(`external-${forceZip64}.zip`, { forceZip64 });
      const py = externalCheck(path);
      expect(Object.keys(py)).toEqual([...stats.keys()]);
      for (const s of stats.values()) expect(py[s.name]).toEqual([s.uncompressedBytes, s.sha256]);
      const reader = await ZipReader.open(await fileSource(path));
      expect(reader.entries.length).toBe(stats.size);
      expect((await hashEntry(reader, 'entities/User.jsonl')).sha256).toBe(stats.get('entities/User.jsonl')!.sha256);
      await reader.close();
    }
  });

  it('reads archives written by Python zipfile (deflate and stored)', async () => {
    const path = join(dir, 'python.zip');
    execFileSync('python3', [
      '-c',
      `import zipfile, sys
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('a.jsonl', '{"a":1}\\n' * 5000, compress_type=zipfile.ZIP_DEFLATED)
    z.writestr('dir/b.txt', 'héllo', compress_type=zipfile.ZIP_STORED)
    z.comment = b'a comment'`,
      path,
    ]);
    const reader = await ZipReader.open(await fileSource(path));
    expect(reader.entries.map((e) => e.name)).toEqual(['a.jsonl', 'dir/b.txt']);
    expect((await reader.readBuffer('dir/b.txt')).toString()).toBe('héllo');
    expect(await hashEntry(reader, 'a.jsonl')).toMatchObject({ bytes: 8 * 5000, lines: 5000 });
    await reader.close();
  });

  it('stores entries uncompressed with level 0 or compress: false', async () => {
    for (const options of [{ level: 0 }, { compress: false }]) {
      const { path } = await writeArchive(
        'store.zip',
        async (zip) => {
          const s = await zip.addEntry('a.txt', chunks('hello\n', 'world\n'));
          expect(s).toMatchObject({ uncompressedBytes: 12, compressedBytes: 12, lines: 2 });
        },
        options,
      );
      externalCheck(path);
      const reader = await ZipReader.open(await fileSource(path));
      expect(reader.entry('a.txt')?.method).toBe(0);
      expect((await reader.readBuffer('a.txt')).toString()).toBe('hello\nworld\n');
      await reader.close();
    }
  });

  it('reads from an in-memory source', async () => {
    const { path } = await writeArchive('mem.zip', async (zip) => {
      await zip.addBuffer('x.txt', 'x\n');
    });
    const reader = await ZipReader.open(bufferSource(readFileSync(path)));
    expect((await reader.readBuffer('x.txt')).toString()).toBe('x\n');
  });
});

describe('JSONL lines', () => {
  async function archiveWith(name: string, content: string | Buffer) {
    const { path } = await writeArchive(`${name.replaceAll('/', '_')}.zip`, async (zip) => {
      await zip.addEntry(name, chunks(content));
    });
    return ZipReader.open(await fileSource(path));
  }

  async function readLines(reader: ZipReader, name: string, batchSize?: number) {
    const batches: { firstLine: number; lines: string[] }[] = [];
    let done: LinesResult | undefined;
    for await (const b of reader.lines(name, { ...(batchSize ? { batchSize } : {}), onDone: (r) => (done = r) })) {
      batches.push(b);
    }
    return { batches, lines: batches.flatMap((b) => b.lines), done: done! };
  }

  it('yields every line in numbered batches, with the SHA-256 of the bytes read', async () => {
    const rows = Array.from({ length: 2_500 }, (_, i) => JSON.stringify({ i, s: '✓'.repeat(i % 40) }));
    const text = rows.map((r) => `${r}\n`).join('');
    const reader = await archiveWith('entities/A.jsonl', text);
    const { batches, lines, done } = await readLines(reader, 'entities/A.jsonl', 1000);
    expect(lines).toEqual(rows);
    expect(batches.map((b) => [b.firstLine, b.lines.length])).toEqual([
      [1, 1000],
      [1001, 1000],
      [2001, 500],
    ]);
    expect(done).toEqual({
      sha256: sha256(text),
      bytes: Buffer.byteLength(text),
      lines: 2500,
      missingFinalNewline: false,
    });
    await reader.close();
  });

  it('onStored sees exactly the stored bytes the writer hashed; hashContent: false leaves sha256 out', async () => {
    const rows = Array.from({ length: 40_000 }, (_, i) => JSON.stringify({ i, s: '✓'.repeat(i % 40) }));
    const text = rows.map((r) => `${r}\n`).join('');
    let stats: EntryStats | undefined;
    const { path } = await writeArchive('stored-hash.zip', async (zip) => {
      stats = await zip.addEntry('entities/S.jsonl', chunks(text));
    });
    const file = readFileSync(path);
    // The stored bytes, located from the local header (fixed part 30 bytes, then name and extra field).
    const start = 30 + file.readUInt16LE(26) + file.readUInt16LE(28);
    const stored = file.subarray(start, start + stats!.compressedBytes);
    expect(stats!.storedSha256).toBe(sha256(stored));
    expect(stats!.storedSha256).not.toBe(stats!.sha256);
    const reader = await ZipReader.open(await fileSource(path));
    let done: LinesResult | undefined;
    const seen: string[] = [];
    const storedHash = createHash('sha256');
    for await (const b of reader.lines('entities/S.jsonl', {
      hashContent: false,
      onStored: (chunk) => storedHash.update(chunk),
      onDone: (d) => (done = d),
    }))
      seen.push(...b.lines);
    expect(seen).toEqual(rows);
    expect(storedHash.digest('hex')).toBe(stats!.storedSha256);
    expect(done).toEqual({ bytes: Buffer.byteLength(text), lines: 40_000, missingFinalNewline: false });
    expect((await readLines(reader, 'entities/S.jsonl')).done.sha256).toBe(sha256(text));
    await reader.close();
  });

  it('reads lines exactly across every internal boundary: multi-byte characters and newlines at each offset', async () => {
    // Lines of every length around the 64 KiB decode slices and the 256 KiB inflate pieces, made of 1- to 4-byte
    // UTF-8 characters so that some character, and some newline, falls on every byte offset of a boundary.
    const glyphs = ['a', 'é', '✓', '😀'];
    const rows: string[] = [];
    let bytes = 0;
    for (let i = 0; bytes < 3 * 1024 * 1024; i++) {
      const long = i % 50 === 0 ? 300_000 + i : (i * 7919) % 5_000;
      let row = '';
      for (let k = 0; row.length < long; k++) row += glyphs[(i + k) % glyphs.length];
      rows.push(row);
      bytes += Buffer.byteLength(row) + 1;
    }
    const text = rows.map((r) => `${r}\n`).join('');
    for (const compress of [true, false]) {
      const { path } = await writeArchive(
        `boundaries-${compress}.zip`,
        async (zip) => {
          await zip.addEntry('entities/U.jsonl', chunks(text));
        },
        { compress },
      );
      const reader = await ZipReader.open(await fileSource(path));
      const { lines, done } = await readLines(reader, 'entities/U.jsonl', 7);
      expect(lines.length).toBe(rows.length);
      expect(lines.every((line, i) => line === rows[i])).toBe(true);
      expect(done).toMatchObject({ sha256: sha256(text), lines: rows.length, missingFinalNewline: false });
      await reader.close();
    }
  });

  it('never drops a line: empty lines are yielded, a final line without newline is yielded and flagged', async () => {
    const reader = await archiveWith('entities/B.jsonl', '{"a":1}\n\n{"a":2}\r\n{"a":3}');
    const { lines, done } = await readLines(reader, 'entities/B.jsonl');
    expect(lines).toEqual(['{"a":1}', '', '{"a":2}\r', '{"a":3}']);
    expect(done.missingFinalNewline).toBe(true);
    expect(done.lines).toBe(3);
    await reader.close();
  });

  it('keeps multi-byte characters intact across chunk boundaries and handles very long lines', async () => {
    // 4-byte emoji and 3-byte CJK rows crossing every 64 KiB inflate chunk boundary, plus a 3 MB line.
    const rows = Array.from({ length: 20_000 }, (_, i) => `${'🎉名'.repeat(i % 13)}${i}`);
    const long = '名'.repeat(1_000_000);
    rows.splice(10_000, 0, long);
    const text = rows.map((r) => `${r}\n`).join('');
    const reader = await archiveWith('entities/C.jsonl', Buffer.from(text));
    const { lines, done } = await readLines(reader, 'entities/C.jsonl', 777);
    expect(lines.length).toBe(rows.length);
    expect(lines[10_000]!.length).toBe(long.length);
    expect(lines).toEqual(rows);
    expect(done.sha256).toBe(sha256(text));
    await reader.close();
  });

  it('bounds batches by bytes as well as lines: wide rows come a few at a time', async () => {
    const wide = Array.from({ length: 30 }, (_, i) => `${i}:${'x'.repeat(100_000)}`);
    const reader = await archiveWith('entities/W.jsonl', wide.map((r) => `${r}\n`).join(''));
    const batches: number[] = [];
    for await (const b of reader.lines('entities/W.jsonl', { batchSize: 1000, maxBatchBytes: 250_000 }))
      batches.push(b.lines.length);
    // A batch closes at the first line that takes it to 250,000 bytes: 3 lines of ~100,003.
    expect(batches).toEqual([3, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
    await reader.close();
  });

  it('counts a batch in UTF-8 bytes, not characters, and by default closes it at 8 MiB', async () => {
    // 50,000 characters of 2 bytes each: 100,001 bytes a line with its newline.
    const wide = Array.from({ length: 20 }, (_, i) => `${'é'.repeat(49_999)}${i % 10}`);
    const reader = await archiveWith('entities/U.jsonl', wide.map((r) => `${r}\n`).join(''));
    const batches: number[] = [];
    const got: string[] = [];
    for await (const b of reader.lines('entities/U.jsonl', { batchSize: 1000, maxBatchBytes: 250_000 })) {
      batches.push(b.lines.length);
      got.push(...b.lines);
    }
    expect(batches).toEqual([3, 3, 3, 3, 3, 3, 2]);
    expect(got).toEqual(wide);
    const big = Array.from({ length: 90 }, (_, i) => `${i}:${'y'.repeat(200_000)}`);
    const many = await archiveWith('entities/B.jsonl', big.map((r) => `${r}\n`).join(''));
    const sizes: number[] = [];
    for await (const b of many.lines('entities/B.jsonl')) sizes.push(b.lines.length);
    // 8 MiB = 41.9 lines of 200,004 bytes: the 42nd closes the batch.
    expect(sizes).toEqual([42, 42, 6]);
    await reader.close();
    await many.close();
  });

  it('refuses a line longer than maxLineChars with LINE_TOO_LONG naming the entry and line, without holding it', async () => {
    const rows = ['{"a":1}', `{"a":"${'y'.repeat(3_000_000)}"}`, '{"a":3}'];
    const reader = await archiveWith('entities/L.jsonl', rows.map((r) => `${r}\n`).join(''));
    const error = await (async () => {
      for await (const _ of reader.lines('entities/L.jsonl', { maxLineChars: 1_000_000 }));
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KoanError);
    expect(error).toMatchObject({
      code: 'LINE_TOO_LONG',
      details: { entry: 'entities/L.jsonl', line: 2, maxLineChars: 1_000_000 },
    });
    // The same line in the last position, without a final newline, is refused too.
    const last = await archiveWith('entities/M.jsonl', `{"a":1}\n${'z'.repeat(1_500_000)}`);
    await expect(
      (async () => {
        for await (const _ of last.lines('entities/M.jsonl', { maxLineChars: 1_000_000 }));
      })(),
    ).rejects.toMatchObject({ code: 'LINE_TOO_LONG', details: { line: 2 } });
    await reader.close();
    await last.close();
  });

  it('yields nothing for an empty entry', async () => {
    const reader = await archiveWith('entities/D.jsonl', '');
    const { lines, done } = await readLines(reader, 'entities/D.jsonl');
    expect(lines).toEqual([]);
    expect(done).toMatchObject({ bytes: 0, lines: 0, missingFinalNewline: false });
    await reader.close();
  });
});

describe('corruption and errors', () => {
  async function corruptCopy(name: string, mutate: (b: Buffer) => Buffer) {
    const { path } = await writeArchive(`${name}-src.zip`, async (zip) => {
      await zip.addBuffer('manifest.json', '{}');
      await zip.addEntry('entities/User.jsonl', jsonl(100_000, multiMbRows));
    });
    const reader = await ZipReader.open(await fileSource(path));
    const info = reader.entry('entities/User.jsonl')!;
    await reader.close();
    const damaged = join(dir, `${name}.zip`);
    writeFileSync(damaged, mutate(readFileSync(path)));
    return { damaged, info };
  }

  it('refuses an archive with bytes appended after its end, or with two entries of one name', async () => {
    const { damaged } = await corruptCopy('appended', (b) => Buffer.concat([b, Buffer.from('EVIL')]));
    await expectCode(fileSource(damaged).then(ZipReader.open), 'ARCHIVE_CORRUPT', '4 bytes follow the end');
    // Python's zipfile writes a second entry of the same name (with a warning): readers disagree on which counts.
    const twice = join(dir, 'twice.zip');
    execFileSync('python3', [
      '-W',
      'ignore',
      '-c',
      'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], "w") as z:\n  z.writestr("entities/U.jsonl", "{}\\n")\n  z.writestr("entities/U.jsonl", "EVIL\\n")',
      twice,
    ]);
    await expectCode(
      fileSource(twice).then(ZipReader.open),
      'ARCHIVE_CORRUPT',
      'entities/U.jsonl appears more than once',
    );
  });

  it('fails openEntry and hashEntry with ARCHIVE_CORRUPT naming the entry when a compressed byte flips', async () => {
    const { damaged, info } = await corruptCopy('flipped', (b) => {
      // The tiny manifest comes first: a third of the way in is inside the User entry's deflate data.
      const at = Math.floor(b.length / 3);
      b[at] = b[at]! ^ 0x55;
      return b;
    });
    expect(info.compressedSize).toBeGreaterThan(100_000);
    const reader = await ZipReader.open(await fileSource(damaged));
    await expectCode(hashEntry(reader, 'entities/User.jsonl'), 'ARCHIVE_CORRUPT', 'entities/User.jsonl');
    await expectCode(collect(await reader.openEntry('entities/User.jsonl')), 'ARCHIVE_CORRUPT', 'entities/User.jsonl');
    await expectCode(collect(reader.lines('entities/User.jsonl')), 'ARCHIVE_CORRUPT', 'entities/User.jsonl');
    // Other entries stay readable.
    expect((await reader.readBuffer('manifest.json')).toString()).toBe('{}');
    await reader.close();
  });

  it('detects a CRC mismatch in stored data', async () => {
    const { path } = await writeArchive(
      'stored-crc.zip',
      async (zip) => {
        await zip.addBuffer('a.txt', 'hello world\n');
      },
      { compress: false },
    );
    const b = readFileSync(path);
    const at = b.indexOf('hello world');
    b[at] = 'j'.charCodeAt(0);
    const reader = await ZipReader.open(bufferSource(b));
    await expectCode(reader.readBuffer('a.txt'), 'ARCHIVE_CORRUPT', 'a.txt fails its CRC-32 check');
  });

  it('fails open with ARCHIVE_CORRUPT on a truncated archive', async () => {
    const { damaged } = await corruptCopy('truncated', (b) => b.subarray(0, Math.floor(b.length * 0.6)));
    await expectCode(
      fileSource(damaged).then((s) => ZipReader.open(s)),
      'ARCHIVE_CORRUPT',
      'end of central directory',
    );
    const { damaged: tail } = await corruptCopy('truncated-tail', (b) => b.subarray(0, b.length - 10));
    await expectCode(
      fileSource(tail).then((s) => ZipReader.open(s)),
      'ARCHIVE_CORRUPT',
    );
    await expectCode(ZipReader.open(bufferSource(Buffer.from('not a zip'))), 'ARCHIVE_CORRUPT');
  });

  it('reports entries whose data runs past the central directory (bytes cut from the middle)', async () => {
    const { damaged } = await corruptCopy('cut-middle', (b) => {
      const cut = Math.floor(b.length / 2);
      return Buffer.concat([b.subarray(0, cut), b.subarray(cut + 1000)]);
    });
    // The central directory still parses, but offsets now point past it or at the wrong bytes.
    const reader = await ZipReader.open(await fileSource(damaged)).catch((e: unknown) => e);
    if (reader instanceof ZipReader) {
      await expectCode(hashEntry(reader, 'entities/User.jsonl'), 'ARCHIVE_CORRUPT', 'entities/User.jsonl');
      await reader.close();
    } else {
      expect((reader as KoanError).code).toBe('ARCHIVE_CORRUPT');
    }
  });

  it('reports a missing entry with ARCHIVE_ENTRY_MISSING', async () => {
    const { path } = await writeArchive('missing.zip', async (zip) => {
      await zip.addBuffer('a.txt', 'a');
    });
    const reader = await ZipReader.open(await fileSource(path));
    await expectCode(reader.openEntry('nope.jsonl'), 'ARCHIVE_ENTRY_MISSING', 'nope.jsonl');
    await expectCode(hashEntry(reader, 'nope.jsonl'), 'ARCHIVE_ENTRY_MISSING');
    await reader.close();
  });

  it('rejects duplicate and unsafe entry names without breaking the writer', async () => {
    const { path } = await writeArchive('names.zip', async (zip) => {
      await zip.addBuffer('a.txt', 'a');
      await expectCode(zip.addBuffer('a.txt', 'again'), 'ARCHIVE_DUPLICATE_ENTRY', 'a.txt');
      for (const bad of ['', '/abs', '../up', 'a//b', 'a\\b', 'x/./y']) {
        await expectCode(zip.addBuffer(bad, 'x'), 'ARCHIVE_INVALID_NAME');
      }
      await zip.addBuffer('b.txt', 'b');
    });
    expect(Object.keys(externalCheck(path))).toEqual(['a.txt', 'b.txt']);
  });

  it('refuses writes after finish', async () => {
    const zip = new ZipWriter();
    const sink = pipeline(zip.output, nullSink());
    await zip.finish();
    await sink;
    await expectCode(zip.addBuffer('late.txt', 'x'), 'ARCHIVE_WRITER_CLOSED');
    await expectCode(zip.finish(), 'ARCHIVE_WRITER_CLOSED');
  });
});

function nullSink(onChunk: (c: Buffer) => void = () => {}) {
  return new Writable({
    highWaterMark: 16 * 1024,
    write(c: Buffer, _e, cb) {
      onChunk(c);
      // A slow consumer: completes each write on a later turn of the event loop.
      setImmediate(cb);
    },
  });
}

describe('cancellation and backpressure', () => {
  it('an abort signal stops addEntry with ABORTED and errors the output', async () => {
    const zip = new ZipWriter();
    const outputError = new Promise<unknown>((resolve) => zip.output.on('error', resolve));
    zip.output.resume();
    const controller = new AbortController();
    let pulled = 0;
    // A source that stalls forever after a few rows: cancellation must not wait for it.
    const source = (async function* () {
      for (; pulled < 3; pulled++) yield 'row\n';
      controller.abort(new Error('user cancelled'));
      await new Promise(() => {});
    })();
    const err = await expectCode(zip.addEntry('entities/X.jsonl', source, { signal: controller.signal }), 'ABORTED');
    expect(err.cause).toBeInstanceOf(Error);
    expect(await outputError).toBe(err);
    expect(zip.output.destroyed).toBe(true);
    await expectCode(zip.addBuffer('after.txt', 'x'), 'ABORTED');
    await expectCode(zip.finish(), 'ABORTED');
  });

  it('an already-aborted signal rejects before anything is written', async () => {
    const zip = new ZipWriter();
    zip.output.on('error', () => {});
    await expectCode(zip.addEntry('a.txt', chunks('x'), { signal: AbortSignal.abort() }), 'ABORTED');
  });

  it('a failing source fails the writer with the source error', async () => {
    const zip = new ZipWriter();
    zip.output.on('error', () => {});
    zip.output.resume();
    const source = (async function* () {
      yield 'a\n';
      throw new Error('database went away');
    })();
    await expect(zip.addEntry('a.jsonl', source)).rejects.toThrow('database went away');
    await expect(zip.finish()).rejects.toThrow('database went away');
  });

  it('abort() destroys the output and rejects pending work', async () => {
    const zip = new ZipWriter();
    const outputError = new Promise<unknown>((resolve) => zip.output.on('error', resolve));
    const pending = zip.addEntry('big.bin', incompressible(64 << 20).source);
    zip.abort(new Error('storage failed'));
    await expect(pending).rejects.toThrow('storage failed');
    expect(((await outputError) as Error).message).toBe('storage failed');
  });

  it('a slow consumer keeps the source from being read far ahead', async () => {
    const total = 48 << 20;
    const input = incompressible(total);
    const zip = new ZipWriter({ level: 1 });
    let consumed = 0;
    let maxAhead = 0;
    const sink = pipeline(
      zip.output,
      nullSink((c) => {
        consumed += c.length;
        maxAhead = Math.max(maxAhead, input.pulled() - consumed);
      }),
    );
    const s = await zip.addEntry('random.bin', input.source);
    await zip.finish();
    await sink;
    expect(s.uncompressedBytes).toBe(total);
    // Incompressible data: output bytes track input bytes, so the gap is the pipeline's buffering.
    expect(maxAhead).toBeLessThan(12 << 20);
  });

  it('the source is not read while nobody reads the output', async () => {
    const input = incompressible(256 << 20);
    const zip = new ZipWriter({ level: 1 });
    zip.output.on('error', () => {});
    const done = zip.addEntry('random.bin', input.source);
    let last = -1;
    for (let i = 0; i < 200 && input.pulled() !== last; i++) {
      last = input.pulled();
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(input.pulled()).toBeLessThan(12 << 20);
    zip.abort(new Error('stop'));
    await expect(done).rejects.toThrow('stop');
  });

  it('an abort signal stops reading an entry with ABORTED', async () => {
    const { path } = await writeArchive('abort-read.zip', async (zip) => {
      await zip.addEntry('entities/User.jsonl', jsonl(200_000, multiMbRows));
    });
    const reader = await ZipReader.open(await fileSource(path));
    const controller = new AbortController();
    let batches = 0;
    const reading = (async () => {
      for await (const _ of reader.lines('entities/User.jsonl', { batchSize: 100, signal: controller.signal })) {
        if (++batches === 3) controller.abort(new Error('stop reading'));
      }
    })();
    await expectCode(reading, 'ABORTED');
    expect(batches).toBeLessThan(2000);
    await expectCode(reader.openEntry('entities/User.jsonl', { signal: controller.signal }), 'ABORTED');
    // The shared file handle stays usable after an aborted read.
    expect((await hashEntry(reader, 'entities/User.jsonl')).lines).toBe(200_000);
    await reader.close();
  });

  it('breaking out of lines() early releases the entry stream', async () => {
    const { path } = await writeArchive('break.zip', async (zip) => {
      await zip.addEntry(
        'a.jsonl',
        jsonl(50_000, (i) => ({ i })),
      );
    });
    const reader = await ZipReader.open(await fileSource(path));
    for (let k = 0; k < 20; k++) {
      for await (const b of reader.lines('a.jsonl', { batchSize: 10 })) {
        expect(b.firstLine).toBe(1);
        break;
      }
    }
    expect((await hashEntry(reader, 'a.jsonl')).lines).toBe(50_000);
    await reader.close();
  });

  it('a spool deletes its temp file when the source fails or on discard', async () => {
    const spoolDir = mkdtempSync(join(dir, 'spool-fail-'));
    const spool = await EntrySpool.create('e.jsonl', { dir: spoolDir });
    expect(existsSync(spool.path)).toBe(true);
    const controller = new AbortController();
    const source = (async function* () {
      yield 'a\n';
      controller.abort();
      await new Promise(() => {});
    })();
    await expectCode(spool.write(source, { signal: controller.signal }), 'ABORTED');
    expect(existsSync(spool.path)).toBe(false);
    const other = await EntrySpool.create('f.jsonl', { dir: spoolDir });
    const entry = await other.write(chunks('x\n'));
    expect(existsSync(entry.path)).toBe(true);
    await other.discard();
    expect(existsSync(entry.path)).toBe(false);
    await entry.dispose();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it('deflates each 1 MiB chunk exactly as a fresh deflateRaw with a sync flush would (reused zlib contexts)', async () => {
    const MiB = 1024 * 1024;
    const text = Array.from({ length: 120_000 }, (_, i) => `{"i":${i},"s":"${'ab'.repeat(i % 50)}"}\n`).join('');
    const all = Buffer.from(text);
    const chunks = Array.from({ length: Math.floor(all.length / MiB) }, (_, k) => all.subarray(k * MiB, (k + 1) * MiB));
    expect(chunks.length).toBeGreaterThan(4);
    const out: Buffer[] = [];
    const r = await encodeEntry(
      (async function* () {
        yield* chunks;
      })(),
      { level: 1, compress: true, parallelism: 2, emit: async (c) => void out.push(Buffer.from(c)) },
    );
    const options = { level: 1, memLevel: 9, finishFlush: zlibConstants.Z_SYNC_FLUSH };
    const expected = Buffer.concat([...chunks.map((c) => deflateRawSync(c, options)), Buffer.from([3, 0])]);
    expect(Buffer.concat(out).equals(expected)).toBe(true);
    expect(r.storedSha256).toBe(sha256(expected));
    expect(r.sha256).toBe(sha256(Buffer.concat(chunks)));
  });

  it('takes a source chunk larger than a deflate job in 1 MiB pieces (bounded jobs, same bytes)', async () => {
    const MiB = 1024 * 1024;
    const whole = Buffer.from(
      Array.from({ length: 60_000 }, (_, i) => `{"i":${i},"s":"${'cd'.repeat(i % 40)}"}\n`).join(''),
    );
    expect(whole.length).toBeGreaterThan(3 * MiB);
    const out: Buffer[] = [];
    const r = await encodeEntry(
      (async function* () {
        yield whole;
      })(),
      { level: 1, compress: true, parallelism: 2, emit: async (c) => void out.push(Buffer.from(c)) },
    );
    const options = { level: 1, memLevel: 9, finishFlush: zlibConstants.Z_SYNC_FLUSH };
    const pieces = Array.from({ length: Math.ceil(whole.length / MiB) }, (_, k) =>
      whole.subarray(k * MiB, (k + 1) * MiB),
    );
    const expected = Buffer.concat([...pieces.map((c) => deflateRawSync(c, options)), Buffer.from([3, 0])]);
    expect(Buffer.concat(out).equals(expected)).toBe(true);
    expect(r.sha256).toBe(sha256(whole));
    expect(r.lines).toBe(60_000);
  });

  it('stores a source string larger than a chunk in pieces of at most a chunk, never splitting a character', async () => {
    // 2-, 3- and 4-byte characters (the last a surrogate pair) at every offset of the pieces.
    const text = `${'a😀é名'.repeat(400_000)}\n`;
    const out: Buffer[] = [];
    const r = await encodeEntry(
      (async function* () {
        yield text;
      })(),
      { level: 0, compress: false, emit: async (c) => void out.push(Buffer.from(c)) },
    );
    expect(Buffer.concat(out).equals(Buffer.from(text))).toBe(true);
    expect(r.sha256).toBe(sha256(text));
    const sizes = out.map((c) => c.length);
    expect(sizes.length).toBeGreaterThan(8);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
  });

  it('spools compress concurrently and append without recompression', async () => {
    const spools = await Promise.all(
      ['A', 'B', 'C', 'D'].map(async (n) =>
        (await EntrySpool.create(`entities/${n}.jsonl`, {})).write(jsonl(50_000, (i) => ({ n, i }))),
      ),
    );
    const { path } = await writeArchive('spools.zip', async (zip) => {
      for (const s of spools) {
        const stats = await zip.addSpooled(s);
        expect(stats).toMatchObject({ name: s.name, sha256: s.sha256, lines: 50_000 });
      }
    });
    const py = externalCheck(path);
    for (const s of spools) {
      expect(py[s.name]).toEqual([s.uncompressedBytes, s.sha256]);
      await s.dispose();
    }
  });

  it('a spool whose temp file changed before it was appended fails the writer with ARCHIVE_CORRUPT', async () => {
    const spool = await (await EntrySpool.create('entities/T.jsonl', {})).write(jsonl(20_000, (i) => ({ i })));
    const bytes = readFileSync(spool.path);
    const mid = bytes.length >> 1;
    bytes.writeUInt8(bytes.readUInt8(mid) ^ 0x01, mid); // same length, one bit
    writeFileSync(spool.path, bytes);
    const zip = new ZipWriter();
    zip.output.on('error', () => {}); // the writer fails its output too
    zip.output.resume();
    await expectCode(zip.addSpooled(spool), 'ARCHIVE_CORRUPT', 'changed after it was written');
    await spool.dispose();
  });
});

/** `total` bytes of data deflate cannot shrink, produced in 64 KiB chunks, counting what was pulled. */
function incompressible(total: number) {
  const block = randomBytes(8 << 20);
  let pulled = 0;
  const source = (async function* () {
    while (pulled < total) {
      const at = pulled % block.length;
      const chunk = block.subarray(at, Math.min(at + 65_536, block.length, at + total - pulled));
      pulled += chunk.length;
      yield chunk;
    }
  })();
  return { source, pulled: () => pulled };
}

import { JsonText, t } from '@koan/data';
import {
  boundLineChunks,
  buildSchema,
  byteBatches,
  checkBatchBytes,
  cutLineChunk,
  DEFAULT_BATCH_BYTES,
  encodeRecordLine,
  formatByteSize,
  linePieces,
  lineTranscoder,
  PageSizer,
  pagedRecords,
  parseByteSize,
  recordBytes,
  transcodedPieces,
} from '@koan/data/adapter-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const newline = (s: string) => `${s}\n`;

/** Bytes of a chunk before its last line: what the budget bounds. */
function beforeLastLine(chunk: Uint8Array): number {
  if (chunk.byteLength < 2) return 0;
  const last = chunk.lastIndexOf(0x0a, chunk.byteLength - 2);
  return last + 1;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const lineSets = fc.array(
  fc.string({ unit: fc.constantFrom('a', 'é', '名', '😀', ' ', '{'), minLength: 0, maxLength: 300 }),
  {
    minLength: 1,
    maxLength: 60,
  },
);

describe('byte sizes', () => {
  it('reads sizes as numbers or texts with units, and refuses anything else', () => {
    expect(parseByteSize(65536)).toBe(65536);
    expect(parseByteSize('8MiB')).toBe(8 * 1024 * 1024);
    expect(parseByteSize('512 KiB')).toBe(512 * 1024);
    expect(parseByteSize('1.5MB')).toBe(1_500_000);
    expect(parseByteSize('2g')).toBe(2 * 1024 ** 3);
    expect(parseByteSize('64kb')).toBe(64_000);
    for (const bad of ['', 'lots', '8 parsecs', '-1MiB', '1e3', null, {}, Number.NaN])
      expect(parseByteSize(bad)).toBe(undefined);
    expect(formatByteSize(DEFAULT_BATCH_BYTES)).toBe('1 MiB');
    expect(formatByteSize(1536)).toBe('1.5 KiB');
  });

  it('checkBatchBytes takes 1 byte to 1 GiB (default 1 MiB) and refuses the rest naming batchBytes', () => {
    expect(checkBatchBytes(undefined)).toBe(1024 * 1024);
    expect(checkBatchBytes(1)).toBe(1);
    expect(checkBatchBytes(1024 ** 3)).toBe(1024 ** 3);
    for (const bad of [0, -1, 1.5, Number.NaN, 1024 ** 3 + 1])
      expect(() => checkBatchBytes(bad)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringContaining('batchBytes') }),
      );
  });

  it('recordBytes is the exact size of an archive line for text without escapes, and no less with json', () => {
    const schema = buildSchema(
      { name: 'Sized', key: 'id', fields: { id: t.integer(), s: t.string(), j: t.json(), b: t.binary() } },
      'declared',
    );
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('a', 'é', '名', '😀', ' '), maxLength: 500 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 20 }), fc.boolean())),
        (s, b, j) => {
          for (const json of [j, new JsonText(JSON.stringify(j))]) {
            const record = { id: 12345, s, j: json, b };
            const exact = Buffer.byteLength(encodeRecordLine(schema, record, 'text')) + 1;
            expect(recordBytes(record)).toBeGreaterThanOrEqual(exact);
            expect(recordBytes(record)).toBeLessThan(exact * 1.5 + 100);
          }
        },
      ),
    );
  });
});

describe('grouping by bytes', () => {
  it('byteBatches: every batch holds less than the budget before its last item and at most maxItems', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 30 }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 20_000 }),
        async (pages, maxItems, maxBytes) => {
          const batches = await collect(
            byteBatches(
              (async function* () {
                yield* pages;
              })(),
              (n) => n,
              maxItems,
              maxBytes,
            ),
          );
          expect(batches.flat()).toEqual(pages.flat());
          for (const b of batches) {
            expect(b.length).toBeGreaterThan(0);
            expect(b.length).toBeLessThanOrEqual(maxItems);
            expect(b.slice(0, -1).reduce((x, y) => x + y, 0)).toBeLessThan(maxBytes);
          }
        },
      ),
    );
  });

  it('PageSizer asks 16 rows first, then what fills the room at the rows seen, growing at most 8 times a page', () => {
    const sizer = new PageSizer(1000, 1_000_000);
    expect(sizer.next()).toBe(16);
    sizer.seen(16, 16 * 100_000);
    expect(sizer.next()).toBe(10);
    expect(sizer.next(250_000)).toBe(3);
    const narrow = new PageSizer(1000, 1_000_000);
    expect(narrow.next()).toBe(16);
    narrow.seen(16, 16 * 300);
    expect(narrow.next()).toBe(128);
    narrow.seen(128, 128 * 300);
    expect(narrow.next()).toBe(1000);
  });

  it('pagedRecords reads pages sized to the budget and yields every record in order, in bounded batches', async () => {
    const rows = Array.from({ length: 200 }, (_, i) => ({ id: i, s: 'x'.repeat(i % 2 ? 10_000 : 100) }));
    const asked: number[] = [];
    let at = 0;
    const batches = await collect(
      pagedRecords(
        (n) => {
          asked.push(n);
          const page = rows.slice(at, at + n);
          at += page.length;
          return page;
        },
        (r) => r,
        50,
        64 * 1024,
      ),
    );
    expect(batches.flat()).toEqual(rows);
    for (const b of batches) {
      expect(b.length).toBeLessThanOrEqual(50);
      expect(b.slice(0, -1).reduce((n, r) => n + recordBytes(r), 0)).toBeLessThan(64 * 1024);
    }
    expect(asked[0]).toBe(16);
    expect(Math.max(...asked)).toBeLessThanOrEqual(50);
  });

  it('cutLineChunk, boundLineChunks and linePieces cut whole lines, less than the budget before the last one', async () => {
    await fc.assert(
      fc.asyncProperty(
        lineSets,
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: 1, max: 700 }),
        async (lines, budget, cut) => {
          const all = Buffer.from(lines.map(newline).join(''));
          const check = (pieces: Uint8Array[]) => {
            expect(Buffer.concat(pieces).equals(all)).toBe(true);
            for (const p of pieces) {
              expect(p[p.byteLength - 1]).toBe(0x0a);
              expect(beforeLastLine(p)).toBeLessThan(budget);
            }
          };
          check([...cutLineChunk(all, budget)]);
          check(
            await collect(
              boundLineChunks(
                (async function* () {
                  yield all;
                })(),
                budget,
              ),
            ),
          );
          // Bytes cut anywhere, as a COPY's output arrives: pieces of whole lines again.
          const arriving = (async function* () {
            for (let i = 0; i < all.length; i += cut) yield all.subarray(i, i + cut);
          })();
          check(await collect(linePieces(arriving, budget)));
        },
      ),
    );
  });

  it('transcodedPieces gives what pieces gives, a group at a time', () => {
    const schema = buildSchema({ name: 'Piece', key: 'id', fields: { id: t.integer(), s: t.string() } }, 'declared');
    const target = {
      null: '\\N',
      separator: '\t',
      canonical: () => (raw: string) => raw,
      parsed: () => (value: unknown) => String(value),
    };
    const transcoder = lineTranscoder(schema, target, 'text');
    const lines = Array.from({ length: 300 }, (_, i) =>
      encodeRecordLine(schema, { id: i, s: 'y'.repeat(i * 7) }, 'text'),
    );
    const lazy = [...transcodedPieces(transcoder, lines, 5)];
    expect(lazy.join('')).toBe(transcoder.pieces(lines, 5).join(''));
    expect(lazy.length).toBeGreaterThan(3);
    const bad = [...lines.slice(0, 100), '{"id":1,'];
    expect(() => [
      ...transcodedPieces(transcoder, bad, 0, (_e, part, first) => new Error(`at ${first}+${part.length}`)),
    ]).toThrow(/^at \d+\+\d+$/);
  });
});

/**
 * Conformance group: wide rows. Every batch an adapter yields, and every JSON-lines chunk, is bounded by the byte
 * budget (`ExportOptions.batchBytes`, default 1 MiB) as well as by the record count: it holds less than the budget
 * before its last record, on the adapter and inside its snapshots.
 */
import { expect } from 'vitest';
import type { DataAdapter, DataReader } from '../../adapter.js';
import { DEFAULT_BATCH_BYTES } from '../../batch-bytes.js';
import { encodeRecordLine } from '../../codec.js';
import { KoanError } from '../../errors.js';
import { t } from '../../fields.js';
import { type EntitySchema, ROOT_SET } from '../../schema.js';
import type { DataRecord } from '../../types.js';
import type { ConformanceSuite } from './suite.js';

/** The archive bytes of a record's line, newline included: what the budget is about. */
function lineBytes(schema: EntitySchema, record: DataRecord): number {
  return Buffer.byteLength(encodeRecordLine(schema, record, 'text')) + 1;
}

/** `width` characters of text that differ per row and need no JSON escaping. */
function filler(id: number, width: number): string {
  const unit = `${id.toString(36)}-abcdefghijklmnopqrstuvwxyz0123456789|`;
  return unit.repeat(Math.ceil(width / unit.length)).slice(0, width);
}

/** Asserts that each batch holds less than `budget` bytes before its last record; returns the ids in order. */
async function exportChecked(
  reader: DataReader,
  schema: EntitySchema,
  options: { batchSize?: number; batchBytes?: number },
  budget: number,
): Promise<{ ids: number[]; batches: number }> {
  const ids: number[] = [];
  let batches = 0;
  for await (const batch of reader.exportEntity(schema, ROOT_SET, { ...options, exactJson: true })) {
    batches++;
    expect(batch.length).toBeGreaterThan(0);
    expect(batch.length).toBeLessThanOrEqual(options.batchSize ?? 1000);
    const sizes = batch.map((r) => lineBytes(schema, r));
    const beforeLast = sizes.slice(0, -1).reduce((a, b) => a + b, 0);
    expect(beforeLast, `batch ${batches}: ${batch.length} records of ${sizes.join('+')} bytes`).toBeLessThan(budget);
    for (const r of batch) {
      expect(r.payload).toBe(filler(r.id as number, (r.payload as string).length));
      ids.push(r.id as number);
    }
  }
  return { ids, batches };
}

async function insertWide(a: DataAdapter, schema: EntitySchema, count: number, width: number): Promise<void> {
  await a.ensureEntity(schema, ROOT_SET);
  const rows = Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    label: `row ${i + 1}`,
    payload: filler(i + 1, width),
    meta: { n: i + 1, tags: ['wide'] },
  }));
  for (let i = 0; i < rows.length; i += 10)
    await a.importBatch(schema, ROOT_SET, rows.slice(i, i + 10), { mode: 'insert' });
}

/** 1, 2, ... n: the ids `insertWide` gives. */
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Batches and JSON-lines chunks bounded in bytes (`batchBytes`) as well as in records. */
export function wideRowTests(s: ConformanceSuite): void {
  const { test, entity } = s;
  const fields = { id: t.integer(), label: t.string(), payload: t.string(), meta: t.json() };

  test('wide rows: exportEntity closes a batch at batchBytes, one record past it at most (adapter and snapshot)', async (a) => {
    const Wide = entity('WideBudget', 'id', fields);
    await insertWide(a, Wide, 40, 20_000);
    const budget = 64 * 1024;
    // 40 records of ~20 KB under a 64 KiB budget: 4 a batch at most, whatever the record count allows.
    const direct = await exportChecked(a, Wide, { batchSize: 1000, batchBytes: budget }, budget);
    expect(direct.ids).toEqual(oneTo(40));
    expect(direct.batches).toBeGreaterThanOrEqual(10);
    const inSnapshot = await a.readSnapshot((r) =>
      exportChecked(r, Wide, { batchSize: 1000, batchBytes: budget }, budget),
    );
    expect(inSnapshot.ids).toEqual(oneTo(40));
    expect(inSnapshot.batches).toBeGreaterThanOrEqual(10);
    // The record count still bounds batches of narrow enough rows.
    const counted = await exportChecked(a, Wide, { batchSize: 3, batchBytes: 1 << 30 }, 1 << 30);
    expect(counted.ids).toEqual(oneTo(40));
    expect(counted.batches).toBe(14);
    // A budget smaller than one record: one record a batch.
    expect((await exportChecked(a, Wide, { batchBytes: 1 }, 1)).batches).toBe(40);
  });

  test('wide rows: without batchBytes, batches stay under the 1 MiB default (30 rows of 100 KB)', async (a) => {
    const Wide = entity('WideDefault', 'id', fields);
    await insertWide(a, Wide, 30, 100_000);
    expect(DEFAULT_BATCH_BYTES).toBe(1024 * 1024);
    const direct = await exportChecked(a, Wide, {}, DEFAULT_BATCH_BYTES);
    expect(direct.ids).toEqual(oneTo(30));
    expect(direct.batches).toBeGreaterThanOrEqual(3);
    const inSnapshot = await a.readSnapshot((r) => exportChecked(r, Wide, {}, DEFAULT_BATCH_BYTES));
    expect(inSnapshot.ids).toEqual(oneTo(30));
  });

  test('wide rows: exportJsonLines chunks hold less than batchBytes before their last line', async (a, ctx) => {
    const Wide = entity('WideLines', 'id', fields);
    if (!a.exportJsonLines || a.jsonLinesSupported?.(Wide) === false) return ctx.skip('no JSON-lines export');
    await insertWide(a, Wide, 40, 20_000);
    const budget = 64 * 1024;
    const check = async (reader: DataReader) => {
      const ids: number[] = [];
      let chunks = 0;
      for await (const chunk of reader.exportJsonLines!(Wide, ROOT_SET, { batchBytes: budget })) {
        chunks++;
        const text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
        expect(text.endsWith('\n'), 'a chunk holds whole lines').toBe(true);
        const lines = text.slice(0, -1).split('\n');
        const last = Buffer.byteLength(lines[lines.length - 1]!) + 1;
        expect(chunk.byteLength - last, `chunk ${chunks}: ${lines.length} lines`).toBeLessThan(budget);
        for (const line of lines) ids.push((JSON.parse(line) as { id: number }).id);
      }
      expect(ids).toEqual(oneTo(40));
      expect(chunks).toBeGreaterThanOrEqual(10);
    };
    await check(a);
    await a.readSnapshot(check);
  });

  test('wide rows: a batchBytes that is not a whole number of bytes from 1 is refused, naming it', async (a) => {
    const Wide = entity('WideBad', 'id', fields);
    await a.ensureEntity(Wide, ROOT_SET);
    for (const batchBytes of [0, -1, 1.5, Number.NaN]) {
      const error = await (async () => {
        for await (const _ of a.exportEntity(Wide, ROOT_SET, { batchBytes }));
      })().catch((e: unknown) => e);
      expect(error, `batchBytes ${batchBytes}`).toBeInstanceOf(KoanError);
      expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'batchBytes' } });
      expect((error as Error).message).toContain('batchBytes');
    }
  });
}

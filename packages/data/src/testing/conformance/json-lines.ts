/** Conformance: the JSON-lines fast paths (`importJsonLines`, `importJsonLineStream`, `exportJsonLines`) agree with the record paths. */
import { expect } from 'vitest';
import { decodeRecord, encodeRecordLine } from '../../codec.js';
import { t } from '../../fields.js';
import { type EntitySchema, ROOT_SET } from '../../schema.js';
import type { DataRecord } from '../../types.js';
import { expectSameRecord, typeFixtures } from './records.js';
import { type ConformanceSuite, collect } from './suite.js';

/** The JSON-lines import paths store exactly what importBatch stores. */
export function jsonLineImportTests(s: ConformanceSuite): void {
  const { test, entity, Types } = s;
  test('archive lines import exactly what importBatch stores (importJsonLines / importJsonLineStream, where offered)', async (a, ctx) => {
    const plain = Object.fromEntries(Object.entries(Types.fields).filter(([n]) => n !== 'optNull'));
    let offered = false;
    // Without optional nullable fields (the stores' fast paths), and with one (their record paths).
    for (const [name, fields] of [
      ['LinesPlain', plain],
      ['LinesTracked', Types.fields],
    ] as const) {
      const batch = entity(name, 'id', fields);
      const streamed = entity(`${name}Stream`, 'id', fields);
      const want = typeFixtures(batch);
      const lines = want.map((r) => encodeRecordLine(batch, r, 'text'));
      await a.ensureEntity(batch, ROOT_SET);
      await a.ensureEntity(streamed, ROOT_SET);
      const written: EntitySchema[] = [];
      await a.transaction(async (tx) => {
        if (tx.importJsonLines) {
          written.push(batch);
          expect(await tx.importJsonLines(batch, ROOT_SET, lines, { mode: 'insert', bulk: true })).toEqual({
            inserted: want.length,
            updated: 0,
          });
          expect(await tx.importJsonLines(batch, ROOT_SET, lines, { mode: 'upsert', bulk: true })).toEqual({
            inserted: 0,
            updated: want.length,
          });
        }
        if (tx.importJsonLineStream) {
          written.push(streamed);
          const batches = async function* () {
            for (const line of lines) yield [line];
          };
          expect(await tx.importJsonLineStream(streamed, ROOT_SET, batches(), { mode: 'insert', bulk: true })).toEqual({
            inserted: want.length,
            updated: 0,
          });
        }
      });
      offered ||= written.length > 0;
      for (const schema of written) {
        const got = await collect(a.exportEntity(schema, ROOT_SET));
        expect(got).toHaveLength(want.length);
        got.forEach((r, i) => {
          expectSameRecord(schema, r, want[i]!, `${schema.name}[${i}]`);
        });
      }
    }
    if (!offered) return ctx.skip('the adapter has no JSON-lines import');
  });
}

/** The JSON-lines export: exact lines, in key order, in small whole-line chunks. */
export function jsonLineExportTests(s: ConformanceSuite): void {
  const { test, entity, Types } = s;
  test('exportJsonLines, where offered: the lines decode to exactly what exportEntity returns, in key order', async (a, ctx) => {
    if (!a.exportJsonLines) return ctx.skip('the adapter has no JSON-lines export');
    const drop = (names: string[]) =>
      Object.fromEntries(Object.entries(Types.fields).filter(([n]) => !names.includes(n)));
    // The widest field set the store renders itself.
    const candidates = [drop(['optNull']), drop(['optNull', 'n']), drop(['optNull', 'n', 'opt', 'bin', 'v'])].map(
      (fields, i) => entity(`LinesOut${i}`, 'id', fields),
    );
    const E = candidates.find((c) => a.jsonLinesSupported?.(c) ?? true);
    if (!E) return ctx.skip('no JSON-lines export for these field types');
    await a.ensureEntity(E, ROOT_SET);
    const want = typeFixtures(E);
    await a.importBatch(E, ROOT_SET, want, { mode: 'insert' });
    const linesOf = async (chunks: AsyncIterable<Uint8Array>) => {
      let text = '';
      for await (const chunk of chunks) {
        expect(chunk[chunk.length - 1], 'chunks end on a line boundary').toBe(0x0a);
        text += Buffer.from(chunk).toString('utf8');
      }
      return text.split('\n').slice(0, -1);
    };
    const check = (lines: string[], label: string) => {
      expect(lines).toHaveLength(want.length);
      lines.forEach((line, i) => {
        expectSameRecord(E, decodeRecord(E, JSON.parse(line), 'text').record, want[i]!, `${label}[${i}]`);
      });
    };
    check(await linesOf(a.exportJsonLines(E, ROOT_SET)), 'exportJsonLines');
    await a.readSnapshot(async (reader) => {
      if (reader.exportJsonLines) check(await linesOf(reader.exportJsonLines(E, ROOT_SET)), 'snapshot');
      // Stopping early inside the snapshot leaves it usable.
      for (let i = 0; i < 3; i++) for await (const _ of reader.exportJsonLines?.(E, ROOT_SET) ?? []) break;
      expect(await reader.count(E, ROOT_SET)).toBe(want.length);
    });
    for (let i = 0; i < 12; i++) for await (const _ of a.exportJsonLines(E, ROOT_SET)) break;
    expect(await a.count(E, ROOT_SET)).toBe(want.length);
  });

  test('a multi-MB JSON-lines export comes in small whole-line chunks, and streams back in exactly', async (a, ctx) => {
    if (!a.exportJsonLines) return ctx.skip('the adapter has no JSON-lines export');
    const E = entity('LinesBig', 'id', { id: t.integer(), s: t.string(), j: t.json(), at: t.datetime() });
    if (!(a.jsonLinesSupported?.(E) ?? true)) return ctx.skip('no JSON-lines export for these field types');
    await a.ensureEntity(E, ROOT_SET);
    await a.ensureEntity(E, 'lines-copy');
    const want = Array.from({ length: 12_000 }, (_, id) => ({
      id,
      s: `${'ü✓'.repeat(id % 50)} row ${id} ${'x'.repeat(id % 200)}`,
      j: { id, tags: ['a', `t${id % 7}`], nested: { ok: id % 2 === 0 } },
      at: `2024-03-01T10:00:${String(id % 60).padStart(2, '0')}.${String(id).padStart(6, '0')}Z`,
    }));
    for (let i = 0; i < want.length; i += 3_000)
      await a.importBatch(E, ROOT_SET, want.slice(i, i + 3_000), { mode: 'insert', bulk: true });
    const lines: string[] = [];
    let largest = 0;
    for await (const chunk of a.exportJsonLines(E, ROOT_SET, { batchSize: 1_000 })) {
      expect(chunk[chunk.length - 1], 'chunks end on a line boundary').toBe(0x0a);
      largest = Math.max(largest, chunk.length);
      lines.push(...Buffer.from(chunk).toString('utf8').split('\n').slice(0, -1));
    }
    // Bounded memory: chunks stay small whatever the entity's size (1 MiB chunks cost page faults too).
    expect(largest).toBeLessThan(256 * 1024);
    expect(lines).toHaveLength(want.length);
    lines.forEach((line, i) => {
      expectSameRecord(E, decodeRecord(E, JSON.parse(line), 'text').record, want[i]!, `line ${i}`);
    });
    let streamed = false;
    await a.transaction(async (tx) => {
      if (!tx.importJsonLineStream) return;
      streamed = true;
      const batches = async function* () {
        for (let i = 0; i < lines.length; i += 1_000) yield lines.slice(i, i + 1_000);
      };
      expect(await tx.importJsonLineStream(E, 'lines-copy', batches(), { mode: 'insert', bulk: true })).toEqual({
        inserted: want.length,
        updated: 0,
      });
    });
    if (!streamed) return;
    const back: DataRecord[] = [];
    for await (const batch of a.exportEntity(E, 'lines-copy', { batchSize: 5_000 })) back.push(...batch);
    expect(back).toHaveLength(want.length);
    back.forEach((r, i) => {
      expectSameRecord(E, r, want[i]!, `copy ${i}`);
    });
  });
}

/** A bad line fails the whole JSON-lines import. */
export function badLineTests(s: ConformanceSuite): void {
  const { test, entity, Types } = s;
  test('a bad archive line fails the whole JSON-lines import; nothing of it stays', async (a, ctx) => {
    const Plain = entity(
      'LinesBad',
      'id',
      Object.fromEntries(Object.entries(Types.fields).filter(([n]) => n !== 'optNull')),
    );
    await a.ensureEntity(Plain, ROOT_SET);
    const lines = typeFixtures(Plain).map((r) => encodeRecordLine(Plain, r, 'text'));
    const broken = [...lines.slice(0, 2), '{"id": 9, "s":', ...lines.slice(2)];
    let offered = false;
    await a.transaction(async (tx) => {
      if (tx.importJsonLines) {
        offered = true;
        await expect(tx.importJsonLines(Plain, ROOT_SET, broken, { mode: 'insert', bulk: true })).rejects.toThrow();
      }
    });
    await a.transaction(async (tx) => {
      if (tx.importJsonLineStream) {
        offered = true;
        const batches = async function* () {
          yield lines.slice(0, 1);
          yield broken.slice(1);
        };
        await expect(
          tx.importJsonLineStream(Plain, ROOT_SET, batches(), { mode: 'insert', bulk: true }),
        ).rejects.toMatchObject({ details: { line: 2 } });
      }
    });
    if (!offered) return ctx.skip('the adapter has no JSON-lines import');
    expect(await a.count(Plain, ROOT_SET)).toBe(0);
  });
}

/**
 * The shared conformance suite every data adapter runs: exact round trips of every field type, key order,
 * keyset paging, early release of streams, insert vs upsert, transactions, sets, snapshots and aborts.
 * Tests branch on `adapter.capabilities`, never on the provider's name.
 *
 * @example
 * // packages/data-foo/test/foo.test.ts
 * describeAdapterConformance({
 *   name: 'foo',
 *   create: async () => createFooAdapter({ url, schema: `t_${randomUUID()}` }),
 *   destroy: async () => dropSchema(),
 *   skip: () => probeService('foo', () => ping(url)),
 * });
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { DataAdapter, DataReader } from '../adapter.js';
import { decodeRecord, encodeRecordLine, normalizeRecord } from '../codec.js';
import { buildSchema } from '../entity.js';
import { KoanError } from '../errors.js';
import { type FieldsShape, t } from '../fields.js';
import { JsonText, sameNumber } from '../json-text.js';
import { compareKeys, type EntitySchema, ROOT_SET } from '../schema.js';
import type { DataRecord, KeyValue } from '../types.js';
import { describeWideRows } from './conformance-wide.js';

export interface AdapterHarness {
  /** Shown in the suite title. */
  readonly name: string;
  /** A fresh, isolated adapter (own database file, schema or key prefix), not yet `init()`ed. */
  create(): Promise<DataAdapter>;
  /** Removes what `create` made. Called after the suite closed the adapter. */
  destroy?(adapter: DataAdapter): Promise<void>;
  /** A reason to skip the whole suite (e.g. from `probeService`), or undefined to run it. */
  skip?: () => Promise<string | undefined>;
}

/** Registers the conformance tests (vitest `describe`/`it`) for one adapter. */
export function describeAdapterConformance(harness: AdapterHarness): void {
  describe(`data adapter conformance: ${harness.name}`, () => {
    let adapter: DataAdapter | undefined;
    let skipReason: string | undefined;
    // Unique names, so a persistent store (a shared server) never sees leftovers of an earlier run.
    const tag = randomBytes(3).toString('hex');
    const entity = (name: string, key: string, fields: FieldsShape | EntitySchema['fields']) =>
      buildSchema({ name: `Conf${name}_${tag}`, key, fields }, 'declared');

    beforeAll(async () => {
      skipReason = await harness.skip?.();
      if (skipReason) return;
      adapter = await harness.create();
      await adapter.init();
    });

    afterAll(async () => {
      if (!adapter) return;
      try {
        await adapter.close();
      } finally {
        await harness.destroy?.(adapter);
      }
    });

    const test = (name: string, fn: (a: DataAdapter, ctx: TestContext) => Promise<void>) =>
      it(name, async (ctx) => {
        if (skipReason || !adapter) return ctx.skip(skipReason ?? 'adapter not created');
        await fn(adapter, ctx);
      });

    const Types = entity('Types', 'id', {
      id: t.integer(),
      s: t.string(),
      u: t.uuid().nullable(),
      i: t.integer().nullable(),
      n: t.number().nullable(),
      b: t.bigint().nullable(),
      d: t.decimal().nullable(),
      bo: t.boolean().nullable(),
      dt: t.datetime().nullable(),
      da: t.date().nullable(),
      j: t.json().nullable(),
      bin: t.binary().nullable(),
      v: t.vector(4).nullable(),
      opt: t.string().optional(),
      optNull: t.integer().optional().nullable(),
    });

    test('every field type round-trips exactly (insert, get, getMany, export)', async (a) => {
      await a.ensureEntity(Types, ROOT_SET);
      const want = typeFixtures(Types);
      expect(await a.importBatch(Types, ROOT_SET, want, { mode: 'insert' })).toEqual({
        inserted: want.length,
        updated: 0,
      });
      for (const w of want) expectSameRecord(Types, await a.get(Types, ROOT_SET, w.id as number), w, `get(${w.id})`);
      const many = await a.getMany(
        Types,
        ROOT_SET,
        want.map((w) => w.id as number),
      );
      expect(many).toHaveLength(want.length);
      many.forEach((got, i) => {
        expectSameRecord(Types, got, want[i]!, `getMany[${i}]`);
      });
      const exported = await collect(a.exportEntity(Types, ROOT_SET, { batchSize: 2 }));
      exported.forEach((got, i) => {
        expectSameRecord(Types, got, want[i]!, `export[${i}]`);
      });
    });

    test('every field type round-trips exactly through upsert and bulk import', async (a) => {
      const TypesBulk = entity('TypesBulk', 'id', Types.fields);
      await a.ensureEntity(TypesBulk, ROOT_SET);
      const want = typeFixtures(TypesBulk);
      await a.importBatch(TypesBulk, ROOT_SET, want, { mode: 'insert', bulk: true });
      await a.importBatch(TypesBulk, ROOT_SET, want, { mode: 'upsert' });
      const exported = await collect(a.exportEntity(TypesBulk, ROOT_SET));
      expect(exported).toHaveLength(want.length);
      exported.forEach((got, i) => {
        expectSameRecord(TypesBulk, got, want[i]!, `export[${i}]`);
      });
    });

    test('null and missing optional values stay distinct', async (a) => {
      const Opt = entity('Optional', 'id', {
        id: t.string(),
        o: t.string().optional(),
        n: t.string().nullable(),
        on: t.integer().optional().nullable(),
        oj: t.json().optional().nullable(),
      });
      await a.ensureEntity(Opt, ROOT_SET);
      const want = [
        { id: 'a', n: null },
        { id: 'b', o: '', n: '', on: null, oj: null },
        { id: 'c', n: null, on: 0, oj: { x: null } },
        { id: 'd', o: 'x', n: 'y' },
      ].map((r) => normalizeRecord(Opt, r));
      await a.importBatch(Opt, ROOT_SET, want, { mode: 'insert' });
      for (const w of want) expectSameRecord(Opt, await a.get(Opt, ROOT_SET, w.id as string), w, `get(${w.id})`);
      const exported = await collect(a.exportEntity(Opt, ROOT_SET));
      exported.forEach((got, i) => {
        expectSameRecord(Opt, got, want[i]!, `export[${i}]`);
      });
    });

    test('non-finite numbers and -0 round-trip where capabilities.nonFiniteNumbers', async (a, ctx) => {
      if (!a.capabilities.nonFiniteNumbers)
        return ctx.skip('adapter declares nonFiniteNumbers false: NaN, ±Infinity and -0 are unsupported');
      const E = entity('NonFinite', 'id', { id: t.integer(), n: t.number() });
      await a.ensureEntity(E, ROOT_SET);
      const want = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0].map((n, id) => ({ id, n }));
      await a.importBatch(E, ROOT_SET, want, { mode: 'insert' });
      const got = await collect(a.exportEntity(E, ROOT_SET));
      got.forEach((g, i) => {
        expectSameRecord(E, g, want[i]!, `export[${i}]`);
      });
      expectSameRecord(E, await a.get(E, ROOT_SET, 3), want[3]!, 'get(3)');
    });

    /*
     * Float32 bit patterns must survive every path unchanged. A float32 read into a JS number (a double) has its
     * signalling NaN quieted (0x7f800001 becomes 0x7fc00001), so only byte and uint32 copies pass these.
     */
    const vectorBits = {
      // -0, the smallest and largest subnormals (both signs), ±Infinity, +0, the largest finite, 1.
      exact: [
        [0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff],
        [0x7f800000, 0xff800000, 0x00000000, 0x3f800000],
        [0x00400000, 0x80000001, 0xff7fffff, 0x00800000],
      ],
      // Signalling NaNs (quiet bit clear) with payloads and both signs, quiet NaNs with and without payloads.
      nan: [
        [0x7f800001, 0xff800123, 0x7fc00000, 0x80000000],
        [0x7fbfffff, 0xffc00001, 0x00000001, 0xff800000],
        [0x7fa5a5a5, 0x7fffffff, 0xffbfffff, 0x7f800002],
      ],
    };

    const vectorBitsRoundTrip = async (a: DataAdapter, name: string, words: readonly (readonly number[])[]) => {
      const E = entity(name, 'id', { id: t.integer(), v: t.vector(4).nullable() });
      const vec = (w: readonly number[]) => new Float32Array(Uint32Array.from(w).buffer);
      const bitsOf = (v: unknown, where: string) => {
        expect(v, `${where} is a Float32Array`).toBeInstanceOf(Float32Array);
        const f = v as Float32Array;
        return Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length), (x) => x.toString(16).padStart(8, '0'));
      };
      const want = [...words.map((w, i) => ({ id: i + 1, v: vec(w) })), { id: words.length + 1, v: null }];
      const wantBits = (id: number) => (want[id - 1]!.v ? bitsOf(want[id - 1]!.v, 'fixture') : null);
      const check = (got: DataRecord | undefined, where: string) => {
        expect(got, `${where}: record missing`).toBeDefined();
        const id = got!.id as number;
        const w = wantBits(id);
        if (w === null) expect(got!.v, `${where}.v`).toBeNull();
        else expect(bitsOf(got!.v, `${where}.v`), `${where}.v bits`).toEqual(w);
      };
      // The archive text: base64 of the little-endian bytes, built here without the codec.
      const base64Of = (w: readonly number[]) => {
        const view = new DataView(new ArrayBuffer(w.length * 4));
        w.forEach((x, i) => {
          view.setUint32(i * 4, x, true);
        });
        return Buffer.from(view.buffer).toString('base64');
      };
      const checkLine = (line: string, where: string) => {
        const obj = JSON.parse(line) as Record<string, unknown>;
        const w = words[(obj.id as number) - 1];
        expect(obj.v, `${where}: archive text of v`).toBe(w ? base64Of(w) : null);
        check(decodeRecord(E, obj, 'text').record, where);
      };

      // encodeRecordLine / decodeRecord (no store involved).
      const lines = want.map((r) => encodeRecordLine(E, r, 'text'));
      lines.forEach((line, i) => {
        checkLine(line, `encodeRecordLine[${i}]`);
      });

      await a.ensureEntity(E, ROOT_SET);
      await a.importBatch(E, ROOT_SET, want, { mode: 'insert' });
      for (const w of want) check(await a.get(E, ROOT_SET, w.id), `get(${w.id})`);
      (
        await a.getMany(
          E,
          ROOT_SET,
          want.map((w) => w.id),
        )
      ).forEach((g, i) => {
        check(g, `getMany[${i}]`);
      });
      const exported = await collect(a.exportEntity(E, ROOT_SET));
      expect(exported).toHaveLength(want.length);
      exported.forEach((g, i) => {
        check(g, `export[${i}]`);
      });
      // The upsert and bulk paths write the same bits.
      await a.importBatch(E, ROOT_SET, want, { mode: 'upsert', bulk: true });
      const bulk = entity(`${name}Bulk`, 'id', E.fields);
      await a.ensureEntity(bulk, ROOT_SET);
      await a.importBatch(bulk, ROOT_SET, want, { mode: 'insert', bulk: true });
      for (const [schema, label] of [
        [E, 'upsert'],
        [bulk, 'bulk insert'],
      ] as const)
        (await collect(a.exportEntity(schema, ROOT_SET))).forEach((g, i) => {
          check(g, `${label}[${i}]`);
        });

      // JSON-lines export, where the store renders this entity itself.
      if (a.exportJsonLines && (a.jsonLinesSupported?.(E) ?? true)) {
        let text = '';
        for await (const chunk of a.exportJsonLines(E, ROOT_SET)) text += Buffer.from(chunk).toString('utf8');
        const out = text.split('\n').slice(0, -1);
        expect(out).toHaveLength(want.length);
        out.forEach((line, i) => {
          checkLine(line, `exportJsonLines[${i}]`);
        });
      }

      // JSON-lines import, where offered.
      const viaLines = entity(`${name}Lines`, 'id', E.fields);
      const viaStream = entity(`${name}Stream`, 'id', E.fields);
      await a.ensureEntity(viaLines, ROOT_SET);
      await a.ensureEntity(viaStream, ROOT_SET);
      const written: EntitySchema[] = [];
      await a.transaction(async (tx) => {
        if (tx.importJsonLines) {
          written.push(viaLines);
          await tx.importJsonLines(viaLines, ROOT_SET, lines, { mode: 'insert', bulk: true });
        }
        if (tx.importJsonLineStream) {
          written.push(viaStream);
          const batches = async function* () {
            for (const line of lines) yield [line];
          };
          await tx.importJsonLineStream(viaStream, ROOT_SET, batches(), { mode: 'insert', bulk: true });
        }
      });
      for (const schema of written) {
        const got = await collect(a.exportEntity(schema, ROOT_SET));
        expect(got).toHaveLength(want.length);
        got.forEach((g, i) => {
          check(g, `${schema.name}[${i}]`);
        });
      }
    };

    test('vectors keep float32 bits exactly: -0, subnormals, ±Infinity (records, upsert, bulk, JSON lines, codec)', async (a) => {
      await vectorBitsRoundTrip(a, 'VectorBits', vectorBits.exact);
    });

    test('vectors keep NaN payloads bit for bit, signalling NaNs included, or the adapter refuses NaN by name', async (a, ctx) => {
      // A store that cannot keep NaN in vectors (documented per adapter) must refuse it before writing, never change it.
      const Probe = entity('VectorNaNProbe', 'id', { id: t.integer(), v: t.vector(4) });
      await a.ensureEntity(Probe, ROOT_SET);
      const probe = [{ id: 1, v: new Float32Array(Uint32Array.from(vectorBits.nan[0]!).buffer) }];
      const refused = await a.importBatch(Probe, ROOT_SET, probe, { mode: 'insert' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (refused !== undefined) {
        expect(refused, 'NaN in a vector refused with a KoanError').toBeInstanceOf(KoanError);
        expect(['INVALID_VALUE', 'UNSUPPORTED_VALUE']).toContain((refused as KoanError).code);
        expect(await a.count(Probe, ROOT_SET), 'nothing written').toBe(0);
        return ctx.skip(`the adapter refuses NaN in vectors: ${(refused as Error).message}`);
      }
      await vectorBitsRoundTrip(a, 'VectorNaN', vectorBits.nan);
    });

    test('a batch of hundreds of records of every type round-trips (insert, upsert into an empty set, lines)', async (a) => {
      // Stores bind many rows per statement on these paths; 257 rows leave a partial statement at the end.
      const plain = Object.fromEntries(Object.entries(Types.fields).filter(([n]) => n !== 'optNull'));
      for (const [name, fields] of [
        ['Plain', plain],
        ['Tracked', Types.fields],
      ] as const) {
        const inserted = entity(`Wide${name}Insert`, 'id', fields);
        const upserted = entity(`Wide${name}Upsert`, 'id', fields);
        const lines = entity(`Wide${name}Lines`, 'id', fields);
        const fixtures = typeFixtures(inserted);
        const records = Array.from({ length: 257 }, (_, i) => ({ ...fixtures[i % fixtures.length]!, id: i + 1 }));
        for (const schema of [inserted, upserted, lines]) await a.ensureEntity(schema, ROOT_SET);
        await a.transaction(async (tx) => {
          expect(await tx.importBatch(inserted, ROOT_SET, records, { mode: 'insert', bulk: true })).toEqual({
            inserted: records.length,
            updated: 0,
          });
          expect(await tx.importBatch(upserted, ROOT_SET, records, { mode: 'upsert', bulk: true })).toEqual({
            inserted: records.length,
            updated: 0,
          });
          if (tx.importJsonLines) {
            const encoded = records.map((r) => encodeRecordLine(lines, r, 'text'));
            expect(await tx.importJsonLines(lines, ROOT_SET, encoded, { mode: 'insert', bulk: true })).toEqual({
              inserted: records.length,
              updated: 0,
            });
          } else await tx.importBatch(lines, ROOT_SET, records, { mode: 'insert' });
        });
        for (const schema of [inserted, upserted, lines]) {
          const got = await collect(a.exportEntity(schema, ROOT_SET, { batchSize: 100 }));
          expect(got).toHaveLength(records.length);
          got.forEach((r, i) => {
            expectSameRecord(schema, r, records[i]!, `${schema.name}[${i}]`);
          });
        }
      }
    });

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
            expect(
              await tx.importJsonLineStream(streamed, ROOT_SET, batches(), { mode: 'insert', bulk: true }),
            ).toEqual({ inserted: want.length, updated: 0 });
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

    test('json values: numbers of any precision and JSON null come back exactly (exactJson), or are refused by name before anything is written', async (a) => {
      const E = entity('JsonExact', 'id', { id: t.integer(), j: t.json().nullable() });
      await a.ensureEntity(E, ROOT_SET);
      const texts = [
        '{"k":"v","n":[1,2.5,true,null]}',
        '{"big":12345678901234567890123,"s":"a\\nb"}',
        '[0.10000000000000000001,1.10,-0.0000000000000000000000000001e-300]',
        'null',
      ];
      const stored: { id: number; text: string | null }[] = [];
      for (const [i, text] of [...texts, null].entries()) {
        const record = { id: i + 1, j: text === null ? null : JsonText.parse(text) };
        const before = await a.count(E, ROOT_SET);
        const refused = await a.importBatch(E, ROOT_SET, [record], { mode: 'insert' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (refused === undefined) {
          stored.push({ id: record.id, text });
          continue;
        }
        expect(refused, `${text}: refused with a KoanError`).toBeInstanceOf(KoanError);
        expect((refused as KoanError).code, `${text}: refusal code`).toBe('UNSUPPORTED_VALUE');
        expect((refused as Error).message, `${text}: the refusal names the field`).toContain(`${E.name}.j`);
        expect(await a.count(E, ROOT_SET), `${text}: nothing written`).toBe(before);
        // Plain JSON and SQL NULL are stored by every store.
        expect(i === 0 || text === null, `${text}: refused`).toBe(false);
      }
      const exported = await collect(a.exportEntity(E, ROOT_SET, { exactJson: true }));
      expect(exported.map((r) => r.id)).toEqual(stored.map((s) => s.id));
      exported.forEach((r, i) => {
        const want = stored[i]!.text;
        const where = `record ${r.id} (${want})`;
        if (want === null) expect(r.j, `${where}: SQL NULL`).toBeNull();
        else if (r.j instanceof JsonText) expect(sameJson(r.j.text, want), `${where}: got ${r.j.text}`).toBe(true);
        else expect(sameJson(JSON.stringify(r.j), want), `${where}: got ${JSON.stringify(r.j)}`).toBe(true);
      });
      // Archive lines rendered by the store itself, where it does: the json field is its text as a JSON string.
      if (a.exportJsonLines && (a.jsonLinesSupported?.(E) ?? true)) {
        let text = '';
        for await (const chunk of a.exportJsonLines(E, ROOT_SET)) text += Buffer.from(chunk).toString('utf8');
        const lines = text
          .split('\n')
          .slice(0, -1)
          .map((l) => JSON.parse(l) as { id: number; j: unknown });
        expect(lines.map((l) => l.id)).toEqual(stored.map((s) => s.id));
        lines.forEach((l, i) => {
          const want = stored[i]!.text;
          if (want === null) expect(l.j, `line ${l.id}: SQL NULL`).toBeNull();
          else expect(typeof l.j === 'string' && sameJson(l.j, want), `line ${l.id}: ${String(l.j)}`).toBe(true);
        });
      }
    });

    test('keys beyond one string, uuid or integer (composite, none, bigint, decimal, date) work exactly or are refused by name (UNSUPPORTED_KEY) before anything is written', async (a) => {
      const cases: { name: string; schema: EntitySchema; records: DataRecord[]; ordered: boolean }[] = [
        {
          name: 'composite',
          schema: buildSchema(
            {
              name: `ConfKeyPair_${tag}`,
              key: 'a',
              keyFields: ['a', 'b'],
              fields: { a: t.integer(), b: t.string(), v: t.string() },
            },
            'declared',
          ),
          records: [
            { a: 1, b: 'x', v: '1x' },
            { a: 1, b: 'y', v: '1y' },
            { a: 2, b: 'x', v: '2x' },
          ],
          ordered: true,
        },
        {
          name: 'keyless',
          schema: buildSchema(
            { name: `ConfKeyNone_${tag}`, keyless: true, fields: { a: t.integer(), s: t.string() } },
            'declared',
          ),
          records: [
            { a: 1, s: 'same' },
            { a: 1, s: 'same' },
            { a: 0, s: 'other' },
          ],
          ordered: false,
        },
        {
          name: 'bigint',
          schema: entity('KeyBig', 'id', { id: t.bigint(), v: t.string() }),
          records: [-5n, 2n ** 53n + 1n, 2n ** 62n].map((id) => ({ id, v: String(id) })),
          ordered: true,
        },
        {
          name: 'decimal',
          schema: entity('KeyDec', 'id', { id: t.decimal(), v: t.string() }),
          records: ['2.25', '10.5', '-1'].map((id) => ({ id, v: id })),
          ordered: false,
        },
        {
          name: 'date',
          schema: entity('KeyDate', 'id', { id: t.date(), v: t.string() }),
          records: ['1999-12-31', '2024-02-29'].map((id) => ({ id, v: id })),
          ordered: true,
        },
      ];
      for (const c of cases) {
        const refused = await (async () => {
          await a.ensureEntity(c.schema, ROOT_SET);
          await a.importBatch(c.schema, ROOT_SET, c.records, { mode: 'insert' });
        })().then(
          () => undefined,
          (e: unknown) => e,
        );
        if (refused !== undefined) {
          expect(refused, `${c.name}: refused with a KoanError`).toBeInstanceOf(KoanError);
          expect((refused as KoanError).code, `${c.name}: ${(refused as Error).message}`).toBe('UNSUPPORTED_KEY');
          expect((refused as Error).message, `${c.name}: names the entity`).toContain(c.schema.name);
          const left = await a.count(c.schema, ROOT_SET).catch((e: unknown) => (e as KoanError).code);
          expect([0, 'UNSUPPORTED_KEY'], `${c.name}: nothing written`).toContain(left);
          continue;
        }
        // Paged one record at a time: each comes once, with its exact values.
        const got = await collect(a.exportEntity(c.schema, ROOT_SET, { batchSize: 1 }));
        const text = (r: DataRecord) => JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
        if (c.ordered) expect(got.map(text), c.name).toEqual(c.records.map(text));
        else expect(got.map(text).sort(), c.name).toEqual(c.records.map(text).sort());
      }
    });

    test('integer keys stream in numeric order across many batches (keyset paging)', async (a) => {
      const E = entity('IntKeys', 'id', { id: t.integer(), payload: t.string() });
      await a.ensureEntity(E, ROOT_SET);
      const keys = Array.from({ length: 2_500 }, (_, i) => i - 1_250);
      keys[0] = Number.MIN_SAFE_INTEGER;
      keys[1] = Number.MAX_SAFE_INTEGER;
      await importShuffled(a, E, keys);
      await expectKeyOrder(a, E, keys);
      expect(await a.count(E, ROOT_SET)).toBe(2_500);
    });

    test('string keys stream in UTF-8 byte order across many batches (keyset paging)', async (a) => {
      const E = entity('StrKeys', 'id', { id: t.string(), payload: t.string() });
      await a.ensureEntity(E, ROOT_SET);
      const pieces = [
        'a',
        'A',
        'z',
        'Z',
        '0',
        '9',
        'é',
        'ß',
        'Ω',
        '€',
        '中',
        '\uFF5E',
        '😀',
        '𝄞',
        '-',
        '_',
        '~',
        'a b',
      ];
      const keys = Array.from(
        { length: 2_500 },
        (_, i) => `${pieces[i % pieces.length]}${pieces[Math.floor(i / pieces.length) % pieces.length]}${i}`,
      );
      // The suite is only meaningful if UTF-8 order differs from JavaScript's UTF-16 order here.
      expect([...keys].sort(compareKeys)).not.toEqual([...keys].sort());
      await importShuffled(a, E, keys);
      await expectKeyOrder(a, E, keys);
    });

    test('breaking out of an export releases its resources (12 times, then a normal query)', async (a) => {
      const E = entity('BreakEarly', 'id', { id: t.integer(), v: t.string() });
      await a.ensureEntity(E, ROOT_SET);
      await a.importBatch(
        E,
        ROOT_SET,
        range(300).map((id) => ({ id, v: `v${id}` })),
        { mode: 'insert' },
      );
      for (let i = 0; i < 12; i++) {
        for await (const batch of a.exportEntity(E, ROOT_SET, { batchSize: 10 })) {
          expect(batch).toHaveLength(10);
          break;
        }
      }
      for (let i = 0; i < 12; i++) {
        await a.readSnapshot(async (reader) => {
          for await (const batch of reader.exportEntity(E, ROOT_SET, { batchSize: 10 })) {
            expect(batch).toHaveLength(10);
            break;
          }
        });
      }
      expect(await a.count(E, ROOT_SET)).toBe(300);
      await a.importBatch(E, ROOT_SET, [{ id: 300, v: 'more' }], { mode: 'insert' });
      expect(await collect(a.exportEntity(E, ROOT_SET, { batchSize: 64 }))).toHaveLength(301);
    });

    test('insert of an existing key fails with DUPLICATE_KEY; upsert replaces', async (a) => {
      const E = entity('Upsert', 'id', { id: t.string(), v: t.integer() });
      await a.ensureEntity(E, ROOT_SET);
      expect(
        await a.importBatch(
          E,
          ROOT_SET,
          [
            { id: 'a', v: 1 },
            { id: 'b', v: 1 },
          ],
          { mode: 'insert' },
        ),
      ).toEqual({ inserted: 2, updated: 0 });
      await expectCode(a.importBatch(E, ROOT_SET, [{ id: 'a', v: 2 }], { mode: 'insert' }), 'DUPLICATE_KEY');
      expect((await a.get(E, ROOT_SET, 'a'))?.v).toBe(1);

      await expectCode(
        a.transaction(async (tx) => {
          await tx.importBatch(E, ROOT_SET, [{ id: 'd', v: 1 }], { mode: 'insert' });
          await tx.importBatch(
            E,
            ROOT_SET,
            [
              { id: 'c', v: 1 },
              { id: 'a', v: 2 },
            ],
            { mode: 'insert' },
          );
        }),
        'DUPLICATE_KEY',
      );
      expect((await a.get(E, ROOT_SET, 'a'))?.v).toBe(1);
      if (a.capabilities.transactions) {
        expect(await a.get(E, ROOT_SET, 'd')).toBeUndefined();
        expect(await a.get(E, ROOT_SET, 'c')).toBeUndefined();
        expect(await a.count(E, ROOT_SET)).toBe(2);
      }

      const r = await a.importBatch(
        E,
        ROOT_SET,
        [
          { id: 'a', v: 3 },
          { id: 'z', v: 1 },
        ],
        { mode: 'upsert' },
      );
      // Adapters that cannot tell updates from inserts report both as inserted (see ImportResult).
      expect([`1/1`, `2/0`]).toContain(`${r.inserted}/${r.updated}`);
      expect((await a.get(E, ROOT_SET, 'a'))?.v).toBe(3);
      expect((await a.get(E, ROOT_SET, 'z'))?.v).toBe(1);
    });

    test('transaction commits what fn wrote and returns its result', async (a) => {
      const E = entity('TxCommit', 'id', { id: t.integer(), v: t.string() });
      await a.ensureEntity(E, ROOT_SET);
      const result = await a.transaction(async (tx) => {
        await tx.importBatch(
          E,
          ROOT_SET,
          [
            { id: 1, v: 'one' },
            { id: 2, v: 'two' },
          ],
          { mode: 'insert' },
        );
        await tx.remove(E, ROOT_SET, [2]);
        return 42;
      });
      expect(result).toBe(42);
      expect(await collect(a.exportEntity(E, ROOT_SET))).toEqual([{ id: 1, v: 'one' }]);
    });

    test('transaction rolls back every write when fn throws (capabilities.transactions)', async (a, ctx) => {
      if (!a.capabilities.transactions) return ctx.skip('adapter declares transactions false');
      const E = entity('TxRollback', 'id', { id: t.integer(), v: t.string() });
      await a.ensureEntity(E, ROOT_SET);
      await a.ensureEntity(E, 'other');
      await a.importBatch(
        E,
        ROOT_SET,
        [
          { id: 1, v: 'one' },
          { id: 2, v: 'two' },
        ],
        { mode: 'insert' },
      );
      await a.importBatch(E, 'other', [{ id: 9, v: 'nine' }], { mode: 'insert' });
      const boom = new Error('boom');
      await expect(
        a.transaction(async (tx) => {
          await tx.importBatch(
            E,
            ROOT_SET,
            [
              { id: 1, v: 'changed' },
              { id: 3, v: 'new' },
            ],
            { mode: 'upsert' },
          );
          await tx.remove(E, ROOT_SET, [2]);
          await tx.clear(E, 'other');
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect(await collect(a.exportEntity(E, ROOT_SET))).toEqual([
        { id: 1, v: 'one' },
        { id: 2, v: 'two' },
      ]);
      expect(await a.count(E, 'other')).toBe(1);
    });

    test('sets are isolated from each other and listed by listSets', async (a, ctx) => {
      if (!a.capabilities.sets) return ctx.skip('adapter declares sets false');
      const E = entity('Sets', 'id', { id: t.integer(), label: t.string() });
      for (const set of [ROOT_SET, 'tenant_a', 'tenant.b-2']) await a.ensureEntity(E, set);
      await a.importBatch(
        E,
        ROOT_SET,
        [1, 2, 3].map((id) => ({ id, label: `r${id}` })),
        { mode: 'insert' },
      );
      await a.importBatch(
        E,
        'tenant_a',
        [1, 10].map((id) => ({ id, label: `a${id}` })),
        { mode: 'insert' },
      );
      expect(await a.count(E, ROOT_SET)).toBe(3);
      expect(await a.count(E, 'tenant_a')).toBe(2);
      expect(await a.count(E, 'tenant.b-2')).toBe(0);
      expect(await a.get(E, ROOT_SET, 10)).toBeUndefined();
      expect((await a.get(E, 'tenant_a', 1))?.label).toBe('a1');
      expect((await a.get(E, ROOT_SET, 1))?.label).toBe('r1');
      expect((await a.listSets(E)).sort()).toEqual([ROOT_SET, 'tenant.b-2', 'tenant_a'].sort());
      expect([2, -1]).toContain(await a.clear(E, 'tenant_a'));
      expect(await a.count(E, 'tenant_a')).toBe(0);
      expect(await collect(a.exportEntity(E, 'tenant_a'))).toEqual([]);
      expect(await a.count(E, ROOT_SET)).toBe(3);
    });

    test('count, remove and clear', async (a) => {
      const E = entity('Remove', 'id', { id: t.integer(), v: t.integer() });
      await a.ensureEntity(E, ROOT_SET);
      await a.importBatch(
        E,
        ROOT_SET,
        range(10).map((id) => ({ id, v: id })),
        { mode: 'insert' },
      );
      expect(await a.count(E, ROOT_SET)).toBe(10);
      expect(await a.remove(E, ROOT_SET, [1, 2, 999])).toBe(2);
      expect(await a.count(E, ROOT_SET)).toBe(8);
      expect(await a.get(E, ROOT_SET, 1)).toBeUndefined();
      expect(await a.remove(E, ROOT_SET, [])).toBe(0);
      expect([8, -1]).toContain(await a.clear(E, ROOT_SET));
      expect(await a.count(E, ROOT_SET)).toBe(0);
      expect(await collect(a.exportEntity(E, ROOT_SET))).toEqual([]);
      await a.importBatch(E, ROOT_SET, [{ id: 1, v: 1 }], { mode: 'insert' });
      expect(await a.count(E, ROOT_SET)).toBe(1);
    });

    test('hasRecords, where offered, agrees with count: missing table, empty set, one record, cleared', async (a, ctx) => {
      if (!a.hasRecords) return ctx.skip('the adapter has no hasRecords probe');
      const E = entity('Probe', 'id', { id: t.integer(), v: t.string() });
      expect(await a.hasRecords(E, ROOT_SET)).toBe(false);
      await a.ensureEntity(E, ROOT_SET);
      expect(await a.hasRecords(E, ROOT_SET)).toBe(false);
      await a.importBatch(E, ROOT_SET, [{ id: 7, v: 'x' }], { mode: 'insert' });
      expect(await a.hasRecords(E, ROOT_SET)).toBe(true);
      await a.clear(E, ROOT_SET);
      expect(await a.hasRecords(E, ROOT_SET)).toBe(false);
    });

    test('reading a set that was never created finds nothing and creates nothing (backups write nothing)', async (a) => {
      const E = entity('NeverMade', 'id', { id: t.integer(), v: t.string() });
      const drain = async (it: AsyncIterable<unknown> | undefined) => {
        let n = 0;
        for await (const _ of it ?? []) n++;
        return n;
      };
      const reads = async (r: DataReader) => {
        expect(await r.count(E, ROOT_SET)).toBe(0);
        expect(await drain(r.exportEntity(E, ROOT_SET))).toBe(0);
        if (r.exportJsonLines && (r.jsonLinesSupported?.(E) ?? true))
          expect(await drain(r.exportJsonLines(E, ROOT_SET))).toBe(0);
      };
      await reads(a);
      await a.readSnapshot(reads);
      expect(await a.getMany(E, ROOT_SET, [1, 2])).toEqual([]);
      expect(await a.get(E, ROOT_SET, 1)).toBeUndefined();
      expect(await a.describe(E, ROOT_SET)).toMatchObject({ exists: false });
      expect(await a.listSets(E)).toEqual([]);
    });

    test('get and getMany keep the order of keys and skip missing ones', async (a) => {
      const E = entity('GetMany', 'id', { id: t.string(), v: t.integer() });
      await a.ensureEntity(E, ROOT_SET);
      await a.importBatch(
        E,
        ROOT_SET,
        ['k1', 'k2', 'k3', 'k5'].map((id, v) => ({ id, v })),
        { mode: 'insert' },
      );
      expect(await a.get(E, ROOT_SET, 'k2')).toEqual({ id: 'k2', v: 1 });
      expect(await a.get(E, ROOT_SET, 'k4')).toBeUndefined();
      const many = await a.getMany(E, ROOT_SET, ['k5', 'nope', 'k1', 'k3']);
      expect(many.map((r) => r.id)).toEqual(['k5', 'k1', 'k3']);
      expect(await a.getMany(E, ROOT_SET, [])).toEqual([]);
    });

    test('describe reports existence, columns and primary key', async (a) => {
      const E = entity('Describe', 'code', { code: t.string(), qty: t.integer(), note: t.string().nullable() });
      await a.ensureEntity(E, ROOT_SET);
      await a.ensureEntity(E, ROOT_SET); // idempotent
      const d = await a.describe(E, ROOT_SET);
      expect(d.exists).toBe(true);
      expect(d.provider).toBe(a.provider);
      expect(typeof d.location).toBe('string');
      expect(d.primaryKey).toEqual(['code']);
      if (d.columns.length)
        for (const name of Object.keys(E.fields)) expect(d.columns.map((c) => c.name)).toContain(name);
      expect((await a.describe(E, 'never_created')).exists).toBe(false);
    });

    test('readSnapshot reports its consistency; a snapshot does not see later writes (capabilities.snapshotReads)', async (a) => {
      const E = entity('Snap', 'id', { id: t.integer(), v: t.string() });
      const F = entity('SnapOther', 'id', { id: t.integer(), v: t.string() });
      await a.ensureEntity(E, ROOT_SET);
      await a.ensureEntity(F, ROOT_SET);
      await a.importBatch(
        E,
        ROOT_SET,
        range(20).map((id) => ({ id, v: 'before' })),
        { mode: 'insert' },
      );
      await a.importBatch(
        F,
        ROOT_SET,
        range(5).map((id) => ({ id, v: 'before' })),
        { mode: 'insert' },
      );
      const seen = await a.readSnapshot(async (reader) => {
        expect(reader.consistency).toBe(a.capabilities.snapshotReads ? 'snapshot' : 'fuzzy');
        const before = await reader.count(E, ROOT_SET);
        await a.importBatch(
          E,
          ROOT_SET,
          [
            { id: 0, v: 'after' },
            { id: 20, v: 'after' },
          ],
          { mode: 'upsert' },
        );
        await a.importBatch(F, ROOT_SET, [{ id: 5, v: 'after' }], { mode: 'insert' });
        return {
          before,
          after: await reader.count(E, ROOT_SET),
          rows: await collect(reader.exportEntity(E, ROOT_SET, { batchSize: 7 })),
          other: await reader.count(F, ROOT_SET),
        };
      });
      if (a.capabilities.snapshotReads) {
        expect(seen.before).toBe(20);
        expect(seen.after).toBe(20);
        expect(seen.rows).toHaveLength(20);
        expect(seen.rows.every((r) => r.v === 'before')).toBe(true);
        expect(seen.other).toBe(5);
      }
      expect(await a.count(E, ROOT_SET)).toBe(21);
      expect((await a.get(E, ROOT_SET, 0))?.v).toBe('after');
    });

    test('aborting an export stops it with ABORTED', async (a) => {
      const E = entity('Abort', 'id', { id: t.integer() });
      await a.ensureEntity(E, ROOT_SET);
      await a.importBatch(
        E,
        ROOT_SET,
        range(100).map((id) => ({ id })),
        { mode: 'insert' },
      );
      const controller = new AbortController();
      let batches = 0;
      await expectCode(
        (async () => {
          for await (const _ of a.exportEntity(E, ROOT_SET, { batchSize: 10, signal: controller.signal })) {
            if (++batches === 2) controller.abort(new Error('stop'));
          }
        })(),
        'ABORTED',
      );
      expect(batches).toBe(2);
      await expectCode(collect(a.exportEntity(E, ROOT_SET, { signal: AbortSignal.abort() })), 'ABORTED');
      expect(await a.count(E, ROOT_SET)).toBe(100);
    });

    describeWideRows(test, entity);
  });
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

async function collect(stream: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of stream) out.push(...batch);
  return out;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a KoanError ${code}`).toBeInstanceOf(KoanError);
  expect((error as KoanError).code).toBe(code);
}

/** Deterministic shuffle (LCG), so inserts do not arrive in key order. */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let seed = 42;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function importShuffled(a: DataAdapter, e: EntitySchema, keys: readonly KeyValue[]): Promise<void> {
  const records = shuffled(keys).map((id) => ({ id, payload: `p-${id}` }));
  for (let i = 0; i < records.length; i += 250)
    await a.importBatch(e, ROOT_SET, records.slice(i, i + 250), { mode: 'insert' });
}

async function expectKeyOrder(a: DataAdapter | DataReader, e: EntitySchema, keys: readonly KeyValue[]): Promise<void> {
  const got: KeyValue[] = [];
  let batches = 0;
  for await (const batch of a.exportEntity(e, ROOT_SET, { batchSize: 100 })) {
    batches++;
    expect(batch.length).toBeGreaterThan(0);
    expect(batch.length).toBeLessThanOrEqual(100);
    for (const r of batch) {
      expect(r.payload).toBe(`p-${r.id}`);
      got.push(r.id as KeyValue);
    }
  }
  expect(batches).toBeGreaterThanOrEqual(25);
  expect(got).toEqual([...keys].sort(compareKeys));
}

function typeFixtures(schema: EntitySchema): DataRecord[] {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => (i * 37) % 256);
  return [
    {
      id: 1,
      s: 'hello',
      u: 'f47ac10b-58cc-4372-a567-0e02b2c3d479',
      i: 42,
      n: 0.1 + 0.2,
      b: 2n ** 63n - 1n,
      d: '12.50',
      bo: true,
      dt: '2024-05-01T10:00:00.123456Z',
      da: '2024-02-29',
      j: { a: 1, nested: { arr: [1, 'two', null, true, { deep: 'ü😀' }] }, nul: null },
      bin: new Uint8Array([0, 0, 0]),
      v: Float32Array.from([1.1, -0, 3.4028234663852886e38, 1e-45]),
      opt: 'present',
      optNull: 7,
    },
    {
      id: 2,
      s: '',
      u: '00000000-0000-0000-0000-000000000000',
      i: Number.MAX_SAFE_INTEGER,
      n: 1e300,
      b: -(2n ** 63n),
      d: '123456789012345678901234567890.123456789',
      bo: false,
      dt: '1970-01-01T00:00:00.000001Z',
      da: '1999-12-31',
      j: [],
      bin: new Uint8Array(0),
      v: new Float32Array(4),
      opt: '',
      optNull: null,
    },
    {
      id: 3,
      s: 'line1\nline2\r\n\ttab "double" \'single\' \\ back ☃ 😀 𝄞 中文',
      u: 'F47AC10B-58CC-4372-A567-0E02B2C3D479',
      i: Number.MIN_SAFE_INTEGER,
      n: -2.5e-300,
      b: -1n,
      d: '-0.000000000000000000000000000001',
      bo: true,
      dt: '2999-12-31T23:59:59.999999Z',
      da: '2000-01-01',
      j: 'just a string',
      bin: bytes,
      v: Float32Array.from([-1.5, 2.5, 1 / 3, 7]),
    },
    {
      id: 4,
      s: 'x'.repeat(10_000),
      u: null,
      i: null,
      n: null,
      b: null,
      d: null,
      bo: null,
      dt: null,
      da: null,
      j: null,
      bin: null,
      v: null,
      optNull: null,
    },
    {
      id: 5,
      s: 'zero values',
      u: '123e4567-e89b-12d3-a456-426614174000',
      i: 0,
      n: -1.5,
      b: 0n,
      d: '0',
      bo: false,
      dt: '2024-05-01T10:00:00.000000Z',
      da: '2024-01-01',
      j: { deep: { deeper: { deepest: [[], {}, 0, -1.25, 'naïve'] } } },
      bin: new Uint8Array([255]),
      v: Float32Array.from([0.5, -0.5, 1e-10, -1e10]),
    },
    // Fields `schema` leaves out (a variant of the Types entity) are dropped.
  ].map((r) =>
    normalizeRecord(schema, Object.fromEntries(Object.entries(r).filter(([k]) => Object.hasOwn(schema.fields, k)))),
  );
}

/**
 * Whether two JSON texts hold the same value exactly: numbers compared as decimal numbers of any precision
 * (`1.10` = `1.1`, `1e2` = `100`, never rounded to doubles), objects by their keys in any order.
 */
export function sameJson(a: string, b: string): boolean {
  return sameTree(jsonTree(a), jsonTree(b));
}

type JsonTree = { n: string } | string | boolean | null | JsonTree[] | { o: [string, JsonTree][] };

/** A JSON text as a tree whose numbers stay text. */
function jsonTree(text: string): JsonTree {
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const value = (): JsonTree => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: [string, JsonTree][] = [];
      ws();
      if (text[i] === '}') i++;
      else
        for (;;) {
          const key = value() as string;
          ws();
          i++; // :
          o.push([key, value()]);
          ws();
          if (text[i++] === '}') break;
        }
      return { o };
    }
    if (c === '[') {
      i++;
      const arr: JsonTree[] = [];
      ws();
      if (text[i] === ']') i++;
      else
        for (;;) {
          arr.push(value());
          ws();
          if (text[i++] === ']') break;
        }
      return arr;
    }
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const s = JSON.parse(text.slice(i, end + 1)) as string;
      i = end + 1;
      return s;
    }
    const m = /^(true|false|null|-?[0-9][0-9.eE+-]*)/.exec(text.slice(i))!;
    i += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : { n: m[0] };
  };
  return value();
}

function sameTree(x: JsonTree, y: JsonTree): boolean {
  if (x === null || y === null || typeof x !== 'object' || typeof y !== 'object') return x === y;
  if (Array.isArray(x) || Array.isArray(y))
    return Array.isArray(x) && Array.isArray(y) && x.length === y.length && x.every((v, i) => sameTree(v, y[i]!));
  if ('n' in x || 'n' in y) return 'n' in x && 'n' in y && sameNumber(x.n, y.n);
  const ox = 'o' in x ? x.o : [];
  const oy = 'o' in y ? y.o : [];
  const sort = (o: [string, JsonTree][]) => [...o].sort((p, q) => (p[0] < q[0] ? -1 : p[0] > q[0] ? 1 : 0));
  const [sx, sy] = [sort(ox), sort(oy)];
  return sx.length === sy.length && sx.every(([k, v], i) => k === sy[i]![0] && sameTree(v, sy[i]![1]));
}

/** The JavaScript value of a json field's value (a JsonText parsed). */
function jsonValue(v: unknown): unknown {
  return v instanceof JsonText ? JSON.parse(v.text) : v;
}

function hexOf(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('hex');
}

function show(v: unknown): string {
  return typeof v === 'bigint' ? `${v}n` : Object.is(v, -0) ? '-0' : String(v);
}

/** Field-by-field exact comparison: types, bits of floats and vectors, bytes of binaries, absent vs null. */
export function expectSameRecord(
  schema: EntitySchema,
  got: DataRecord | undefined,
  want: DataRecord,
  label: string,
): void {
  expect(got, `${label}: record missing`).toBeDefined();
  if (!got) return;
  expect(Object.keys(got).sort(), `${label}: fields present`).toEqual(Object.keys(want).sort());
  for (const [name, spec] of Object.entries(schema.fields)) {
    const w = want[name];
    const g = got[name];
    const where = `${label}.${name}`;
    if (w === undefined) {
      expect(name in got, `${where} should be absent`).toBe(false);
    } else if (w === null) {
      expect(g, where).toBeNull();
    } else if (spec.type === 'binary') {
      expect(g, `${where} is a Uint8Array`).toBeInstanceOf(Uint8Array);
      expect(hexOf(g as Uint8Array), where).toBe(hexOf(w as Uint8Array));
    } else if (spec.type === 'vector') {
      expect(g, `${where} is a Float32Array`).toBeInstanceOf(Float32Array);
      expect(hexOf(g as Float32Array), `${where} bits`).toBe(hexOf(w as Float32Array));
    } else if (spec.type === 'number') {
      expect(Object.is(g, w), `${where}: got ${show(g)}, want ${show(w)}`).toBe(true);
    } else if (spec.type === 'bigint') {
      expect(typeof g, where).toBe('bigint');
      expect(g, where).toBe(w);
    } else if (spec.type === 'json') {
      // A JsonText (an exact export, a decoded archive line) compares by its value here; exactness has its own test.
      expect(jsonValue(g), where).toEqual(jsonValue(w));
    } else {
      expect(g, where).toBe(w);
    }
  }
}

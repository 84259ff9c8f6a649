/** Conformance: values of every field type survive every path exactly (records, upsert, bulk, JSON lines). */
import { expect } from 'vitest';
import type { DataAdapter } from '../../adapter.js';
import { decodeRecord, encodeRecordLine, normalizeRecord } from '../../codec.js';
import { KoanError } from '../../errors.js';
import { t } from '../../fields.js';
import { JsonText } from '../../json-text.js';
import { type EntitySchema, ROOT_SET } from '../../schema.js';
import type { DataRecord } from '../../types.js';
import { expectSameRecord, sameJson, typeFixtures } from './records.js';
import { type ConformanceSuite, collect } from './suite.js';

/** Every field type, null against missing, non-finite numbers. */
export function fieldTypeTests(s: ConformanceSuite): void {
  const { test, entity, Types } = s;
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
}

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

async function vectorBitsRoundTrip(
  s: ConformanceSuite,
  a: DataAdapter,
  name: string,
  words: readonly (readonly number[])[],
): Promise<void> {
  const { entity } = s;
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
}

/** Float32 bits of vectors, NaN payloads included, or a refusal by name. */
export function vectorTests(s: ConformanceSuite): void {
  const { test, entity } = s;
  test('vectors keep float32 bits exactly: -0, subnormals, ±Infinity (records, upsert, bulk, JSON lines, codec)', async (a) => {
    await vectorBitsRoundTrip(s, a, 'VectorBits', vectorBits.exact);
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
    await vectorBitsRoundTrip(s, a, 'VectorNaN', vectorBits.nan);
  });
}

/** Hundreds of records of every type, on every write path. */
export function wideBatchTests(s: ConformanceSuite): void {
  const { test, entity, Types } = s;
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
}

/** json fields: exact numbers and JSON null, or a refusal by name. */
export function jsonValueTests(s: ConformanceSuite): void {
  const { test, entity } = s;
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
}

/** Conformance: keys of every kind, and the order they stream in. */
import { expect } from 'vitest';
import { buildSchema } from '../../entity.js';
import { KoanError } from '../../errors.js';
import { t } from '../../fields.js';
import { compareKeyValues, type EntitySchema, ROOT_SET } from '../../schema.js';
import type { DataRecord } from '../../types.js';
import { type ConformanceSuite, collect, expectKeyOrder, importShuffled } from './suite.js';

/** Keys beyond one string, uuid or integer: exact, or refused by name. */
export function keyKindTests(s: ConformanceSuite): void {
  const { test, entity, tag } = s;
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
}

/** Key order across many batches (keyset paging). */
export function keyOrderTests(s: ConformanceSuite): void {
  const { test, entity } = s;
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
    const pieces = ['a', 'A', 'z', 'Z', '0', '9', 'é', 'ß', 'Ω', '€', '中', '\uFF5E', '😀', '𝄞', '-', '_', '~', 'a b'];
    const keys = Array.from(
      { length: 2_500 },
      (_, i) => `${pieces[i % pieces.length]}${pieces[Math.floor(i / pieces.length) % pieces.length]}${i}`,
    );
    // The suite is only meaningful if UTF-8 order differs from JavaScript's UTF-16 order here.
    expect([...keys].sort(compareKeyValues)).not.toEqual([...keys].sort());
    await importShuffled(a, E, keys);
    await expectKeyOrder(a, E, keys);
  });
}

/**
 * Tests for the stores that key records by one string, uuid or integer field (memory, JSON files, Redis, LanceDB):
 * what they cannot hold is refused by name before anything is written, and ordinary values still round-trip.
 *
 * @example
 * describeSingleKeyStore({ name: 'memory', create: async () => createMemoryAdapter(), json: 'values' });
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { DataAdapter } from '../adapter.js';
import { buildSchema } from '../entity.js';
import { KoanError } from '../errors.js';
import { t } from '../fields.js';
import { JsonText } from '../json-text.js';
import { type EntitySchema, ROOT_SET } from '../schema.js';
import type { DataRecord } from '../types.js';
import type { AdapterHarness } from './conformance.js';

export interface SingleKeyStoreHarness extends AdapterHarness {
  /**
   * How the store keeps json: `values` (JavaScript values: JSON a double or an object cannot hold is refused) or
   * `text` (the JSON text exactly as given).
   */
  readonly json: 'values' | 'text';
}

async function failure(promise: Promise<unknown>): Promise<KoanError | undefined> {
  return promise.then(
    () => undefined,
    (e: unknown) => {
      expect(e).toBeInstanceOf(KoanError);
      return e as KoanError;
    },
  );
}

async function all(a: DataAdapter, e: EntitySchema, exactJson = false): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of a.exportEntity(e, ROOT_SET, { exactJson })) out.push(...batch);
  return out;
}

export function describeSingleKeyStore(harness: SingleKeyStoreHarness): void {
  describe(`single-key store refusals: ${harness.name}`, () => {
    let adapter: DataAdapter | undefined;
    let skipReason: string | undefined;
    const tag = randomBytes(3).toString('hex');
    const name = (n: string) => `Single${n}_${tag}`;

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
    const test = (title: string, fn: (a: DataAdapter) => Promise<void>) =>
      it(title, async (ctx: TestContext) => {
        if (skipReason || !adapter) return ctx.skip(skipReason ?? 'adapter not created');
        await fn(adapter);
      });

    test('composite keys, tables without a primary key and bigint, decimal, date keys are refused by name, before anything is written', (a) =>
      refusesOtherKeys(a, name));
    test('json: ordinary values round-trip; a JsonText JavaScript cannot hold exactly is kept as text or refused by name before anything is written', (a) =>
      keepsOrRefusesJson(a, name, harness.json));
  });
}

/** What a single-key store cannot key by is refused by name (`UNSUPPORTED_KEY`), on every write path, before writing. */
async function refusesOtherKeys(a: DataAdapter, name: (n: string) => string): Promise<void> {
  const Plain = buildSchema({ name: name('Plain'), key: 'id', fields: { id: t.integer(), v: t.string() } }, 'declared');
  await a.ensureEntity(Plain, ROOT_SET);
  const sameTable = { table: Plain.name };
  const refused: [string, EntitySchema, RegExp][] = [
    [
      'composite',
      buildSchema(
        {
          name: name('Pair'),
          key: 'id',
          keyFields: ['id', 'v'],
          fields: { id: t.integer(), v: t.string() },
          ...sameTable,
        },
        'introspected',
      ),
      /composite key \(id, v\)/,
    ],
    [
      'keyless',
      buildSchema(
        { name: name('None'), keyless: true, fields: { id: t.integer(), v: t.string() }, ...sameTable },
        'introspected',
      ),
      /has no primary key/,
    ],
    ...(['bigint', 'decimal', 'date'] as const).map((type): [string, EntitySchema, RegExp] => [
      type,
      buildSchema(
        { name: name(`Key_${type}`), key: 'id', fields: { id: t[type](), v: t.string() }, ...sameTable },
        'introspected',
      ),
      new RegExp(`has a ${type} key`),
    ]),
  ];
  const records: Record<string, DataRecord> = {
    composite: { id: 1, v: 'a' },
    keyless: { id: 1, v: 'a' },
    bigint: { id: 1n, v: 'a' },
    decimal: { id: '1.5', v: 'a' },
    date: { id: '2024-01-01', v: 'a' },
  };
  for (const [what, schema, why] of refused) {
    for (const [step, call] of [
      ['ensureEntity', () => a.ensureEntity(schema, ROOT_SET)],
      ['importBatch', () => a.importBatch(schema, ROOT_SET, [records[what]!], { mode: 'insert' })],
      [
        'transaction',
        () => a.transaction((tx) => tx.importBatch(schema, ROOT_SET, [records[what]!], { mode: 'upsert' })),
      ],
    ] as const) {
      const e = await failure(call());
      expect(e?.code, `${what} ${step}`).toBe('UNSUPPORTED_KEY');
      expect(e?.message, `${what} ${step}`).toMatch(why);
      expect(e?.message, `${what} ${step}`).toContain(schema.name);
    }
  }
  // Written into the same table, none of them left a record.
  expect(await a.count(Plain, ROOT_SET)).toBe(0);
}

/** json the store cannot keep exactly is kept as text (`json: 'text'`) or refused by name before anything is written. */
async function keepsOrRefusesJson(
  a: DataAdapter,
  name: (n: string) => string,
  json: SingleKeyStoreHarness['json'],
): Promise<void> {
  const Doc = buildSchema(
    { name: name('Doc'), key: 'id', fields: { id: t.integer(), j: t.json().nullable() } },
    'declared',
  );
  const ordinary = '{"a":[1,2.5,-0.001,1e21],"b":{"c":"x\\ny"},"d":true}';
  const inexact = {
    'a number beyond a double': '{"big":12345678901234567890123}',
    'a fraction beyond a double': '[0.10000000000000000001]',
    'a key twice': '{"k":1,"k":2}',
    'JSON null': 'null',
  };

  await a.ensureEntity(Doc, ROOT_SET);
  expect(
    await a.importBatch(
      Doc,
      ROOT_SET,
      [
        { id: 1, j: JsonText.parse(ordinary) },
        { id: 2, j: null },
        { id: 3, j: { x: [1, 'two'] } },
      ],
      {
        mode: 'insert',
      },
    ),
  ).toMatchObject({ inserted: 3 });
  const back = await all(a, Doc);
  expect(back).toEqual([
    { id: 1, j: JSON.parse(ordinary) },
    { id: 2, j: null },
    { id: 3, j: { x: [1, 'two'] } },
  ]);
  let id = 10;
  for (const [what, text] of Object.entries(inexact)) {
    id++;
    const batch = [
      { id, j: JsonText.parse(ordinary) },
      { id: id + 100, j: JsonText.parse(text) },
    ];
    if (json === 'values') {
      for (const write of [
        () => a.importBatch(Doc, ROOT_SET, batch, { mode: 'insert' }),
        () => a.transaction((tx) => tx.importBatch(Doc, ROOT_SET, batch, { mode: 'upsert' })),
      ]) {
        const e = await failure(write());
        expect(e?.code, what).toBe('UNSUPPORTED_VALUE');
        expect(e?.message, what).toContain(`${Doc.name}.j of record ${id + 100}`);
      }
      expect(await a.count(Doc, ROOT_SET), `${what}: nothing of the batch was written`).toBe(3);
    } else {
      await a.importBatch(Doc, ROOT_SET, batch, { mode: 'insert' });
      const [got] = (await all(a, Doc, true)).filter((r) => r.id === id + 100);
      expect(got?.j, what).toBeInstanceOf(JsonText);
      expect((got!.j as JsonText).text, what).toBe(text);
    }
  }
}

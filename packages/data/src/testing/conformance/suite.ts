/** What the groups of the conformance suite share: the suite they register tests in, and helpers. */
import { expect, type TestContext } from 'vitest';
import type { DataAdapter, DataReader } from '../../adapter.js';
import { KoanError } from '../../errors.js';
import type { FieldsShape } from '../../fields.js';
import { compareKeyValues, type EntitySchema, ROOT_SET } from '../../schema.js';
import type { DataRecord, KeyValue } from '../../types.js';

/** The suite a group registers its tests in: `describeAdapterConformance` makes one per adapter. */
export interface ConformanceSuite {
  /** Registers a test that runs against the suite's adapter (skipped when the adapter could not be made). */
  test(name: string, fn: (a: DataAdapter, ctx: TestContext) => Promise<void>): void;
  /** A schema with a name unique to this run (`Conf<name>_<tag>`). */
  entity(name: string, key: string, fields: FieldsShape | EntitySchema['fields']): EntitySchema;
  /** One entity with a field of every type (and optional / nullable variants). */
  readonly Types: EntitySchema;
  /** This run's suffix of every name. */
  readonly tag: string;
}

export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

export async function collect(stream: AsyncIterable<DataRecord[]>): Promise<DataRecord[]> {
  const out: DataRecord[] = [];
  for await (const batch of stream) out.push(...batch);
  return out;
}

export async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
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

export async function importShuffled(a: DataAdapter, e: EntitySchema, keys: readonly KeyValue[]): Promise<void> {
  const records = shuffled(keys).map((id) => ({ id, payload: `p-${id}` }));
  for (let i = 0; i < records.length; i += 250)
    await a.importBatch(e, ROOT_SET, records.slice(i, i + 250), { mode: 'insert' });
}

export async function expectKeyOrder(
  a: DataAdapter | DataReader,
  e: EntitySchema,
  keys: readonly KeyValue[],
): Promise<void> {
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
  expect(got).toEqual([...keys].sort(compareKeyValues));
}

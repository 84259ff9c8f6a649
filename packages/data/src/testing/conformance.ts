/**
 * The shared conformance suite every data adapter runs: exact round trips of every field type, key order,
 * keyset paging, early release of streams, insert vs upsert, transactions, sets, snapshots and aborts.
 * Tests branch on `adapter.capabilities`, never on the provider's name. They live in `conformance/` by group (values,
 * json-lines, keys, crud, streams, wide-rows), registered here in one order for every adapter.
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
import { afterAll, beforeAll, describe, it, type TestContext } from 'vitest';
import type { DataAdapter } from '../adapter.js';
import { buildSchema } from '../entity.js';
import { type FieldsShape, t } from '../fields.js';
import type { EntitySchema } from '../schema.js';
import { readTests, setTests, writeTests } from './conformance/crud.js';
import { badLineTests, jsonLineExportTests, jsonLineImportTests } from './conformance/json-lines.js';
import { keyKindTests, keyOrderTests } from './conformance/keys.js';
import { releaseTests, snapshotTests } from './conformance/streams.js';
import type { ConformanceSuite } from './conformance/suite.js';
import { fieldTypeTests, jsonValueTests, vectorTests, wideBatchTests } from './conformance/values.js';
import { wideRowTests } from './conformance/wide-rows.js';

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

    const suite: ConformanceSuite = { test, entity, Types, tag };
    fieldTypeTests(suite);
    vectorTests(suite);
    wideBatchTests(suite);
    jsonLineImportTests(suite);
    jsonLineExportTests(suite);
    badLineTests(suite);
    jsonValueTests(suite);
    keyKindTests(suite);
    keyOrderTests(suite);
    releaseTests(suite);
    writeTests(suite);
    setTests(suite);
    readTests(suite);
    snapshotTests(suite);
    wideRowTests(suite);
  });
}

export { expectSameRecord } from './conformance/records.js';

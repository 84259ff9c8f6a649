// Throughput figures, not assertions on speed: KOAN_BENCH=1 npx vitest run packages/data-lancedb/test/throughput.test.ts
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DataRecord, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { describe, expect, it } from 'vitest';
import { createLanceDbAdapter } from '../src/index.js';

const Doc = buildSchema(
  {
    name: 'BenchDoc',
    key: 'id',
    fields: { id: t.integer(), title: t.string(), at: t.datetime(), embedding: t.vector(128) },
  },
  'declared',
);

describe.skipIf(!process.env.KOAN_BENCH)('lancedb throughput', () => {
  it('imports and exports 100k records with 128-d vectors', { timeout: 600_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'koan-lancedb-bench-'));
    const adapter = createLanceDbAdapter({ uri: dir });
    await adapter.init();
    const total = Number(process.env.KOAN_BENCH_ROWS ?? 100_000);
    const batch = 5000;
    try {
      for (const [label, mode, bulk] of [
        ['insert (key check + add)', 'insert', false],
        ['upsert (merge insert)', 'upsert', false],
      ] as const) {
        await adapter.clear(Doc, label.split(' ')[0]!);
        let started = performance.now();
        for (let start = 0; start < total; start += batch) {
          const records: DataRecord[] = Array.from({ length: Math.min(batch, total - start) }, (_, i) => ({
            id: start + i,
            title: `doc ${start + i}`,
            at: '2024-05-01T10:00:00.123456Z',
            embedding: Float32Array.from({ length: 128 }, (_, k) => Math.sin(start + i + k)),
          }));
          await adapter.importBatch(Doc, label.split(' ')[0]!, records, { mode, bulk });
        }
        const importSeconds = (performance.now() - started) / 1000;
        started = performance.now();
        let seen = 0;
        for await (const records of adapter.exportEntity(Doc, label.split(' ')[0]!, { batchSize: 1000 }))
          seen += records.length;
        const exportSeconds = (performance.now() - started) / 1000;
        expect(seen).toBe(total);
        console.log(
          `[lancedb] ${total} records, ${label}: import ${Math.round(total / importSeconds)} rows/s (${importSeconds.toFixed(2)} s), export ${Math.round(total / exportSeconds)} rows/s (${exportSeconds.toFixed(2)} s)`,
        );
      }
    } finally {
      await adapter.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Throughput figures, not assertions on speed: KOAN_BENCH=1 npx vitest run packages/data-redis/test/throughput.test.ts
import { randomBytes } from 'node:crypto';
import { type DataRecord, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { serviceUrls } from '@koan/data/testing';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisAdapter } from '../src/index.js';

const Row = buildSchema(
  {
    name: 'BenchRow',
    key: 'id',
    fields: {
      id: t.integer(),
      name: t.string(),
      price: t.decimal(),
      at: t.datetime(),
      tags: t.json(),
      score: t.number(),
    },
  },
  'declared',
);

describe.skipIf(!process.env.KOAN_BENCH)('redis throughput', () => {
  it('imports and exports 100k records', { timeout: 600_000 }, async () => {
    const prefix = `koan_test_${randomBytes(6).toString('hex')}`;
    const adapter = createRedisAdapter({ url: serviceUrls.redis, keyPrefix: prefix });
    await adapter.init();
    const total = 100_000;
    const batch = 1000;
    try {
      let started = performance.now();
      for (let start = 0; start < total; start += batch) {
        const records: DataRecord[] = Array.from({ length: batch }, (_, i) => ({
          id: start + i,
          name: `row ${start + i}`,
          price: '19.99',
          at: '2024-05-01T10:00:00.123456Z',
          tags: ['a', { b: start + i }],
          score: (start + i) / 7,
        }));
        await adapter.importBatch(Row, 'root', records, { mode: 'insert' });
      }
      const importSeconds = (performance.now() - started) / 1000;
      started = performance.now();
      let seen = 0;
      for await (const records of adapter.exportEntity(Row, 'root', { batchSize: batch })) seen += records.length;
      const exportSeconds = (performance.now() - started) / 1000;
      expect(seen).toBe(total);
      console.log(
        `[redis] ${total} records: import ${Math.round(total / importSeconds)} rows/s (${importSeconds.toFixed(2)} s), export ${Math.round(total / exportSeconds)} rows/s (${exportSeconds.toFixed(2)} s)`,
      );
    } finally {
      await adapter.close();
      const raw = new Redis(serviceUrls.redis);
      let cursor = '0';
      for (let i = 0; i < 100_000; i++) {
        const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        if (keys.length > 0) await raw.del(...keys);
        cursor = next;
        if (cursor === '0') break;
      }
      raw.disconnect();
    }
  });
});

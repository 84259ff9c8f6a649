/**
 * Wide rows: a backup reads, and a restore writes, batches bounded in bytes (`batchBytes`, Koan.Backup.DefaultBatchBytes)
 * as well as in records, on every SQL store: each write holds less than the budget before its last record.
 */
import { type DataAdapter, DataRuntime, Entity, KoanError, t } from '@koan/data';
import { buildSchema, type DataWriter, type ExportOptions, encodeRecordLine } from '@koan/data/adapter-kit';
import { BackupContext, backupEntity, restoreEntity } from '@koan/data-backup';
import { describe, expect, it } from 'vitest';
import { makeContext, withScratchContext } from './helpers.js';
import { DIALECTS } from './scratch-databases.js';

const fields = { id: t.integer(), label: t.string(), payload: t.string(), meta: t.json() };
const schema = buildSchema({ name: 'WideRow', key: 'id', fields }, 'declared');

/** `width` characters that differ per row and need no JSON escaping. */
const filler = (id: number, width: number) => {
  const unit = `${id.toString(36)}-abcdefghijklmnopqrstuvwxyz0123456789|`;
  return unit.repeat(Math.ceil(width / unit.length)).slice(0, width);
};
const rows = (count: number, width: number) =>
  Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    label: `row ${i + 1}`,
    payload: filler(i + 1, width),
    meta: { n: i + 1 },
  }));

/**
 * The bytes of each record (or archive line) of every write the adapter's transactions are asked for. The writer's
 * methods are wrapped in place: adapters recognise their own writer object (MySQL's structure facet does).
 */
function spyOnWrites(adapter: DataAdapter): number[][] {
  const writes: number[][] = [];
  const lineBytes = (lines: readonly string[]) => lines.map((l) => Buffer.byteLength(l) + 1);
  const transaction = adapter.transaction.bind(adapter);
  adapter.transaction = (fn, options) =>
    transaction((tx: DataWriter) => {
      const { importBatch, importJsonLines, importJsonLineStream } = tx;
      tx.importBatch = (e, s, records, o) => {
        writes.push(records.map((r) => Buffer.byteLength(encodeRecordLine(e, r, 'text')) + 1));
        return importBatch.call(tx, e, s, records, o);
      };
      if (importJsonLines)
        tx.importJsonLines = (e, s, lines, o) => {
          writes.push(lineBytes(lines));
          return importJsonLines.call(tx, e, s, lines, o);
        };
      if (importJsonLineStream)
        tx.importJsonLineStream = (e, s, batches, o) =>
          importJsonLineStream.call(
            tx,
            e,
            s,
            (async function* () {
              for await (const lines of batches) {
                writes.push(lineBytes(lines));
                yield lines;
              }
            })(),
            o,
          );
      return fn(tx);
    }, options);
  return writes;
}

/** The `batchBytes` every export of the adapter's snapshots is asked for. */
function spyOnExports(adapter: DataAdapter): (number | undefined)[] {
  const seen: (number | undefined)[] = [];
  const readSnapshot = adapter.readSnapshot.bind(adapter);
  adapter.readSnapshot = (fn) =>
    readSnapshot((reader) =>
      fn(
        new Proxy(reader, {
          get(target, prop) {
            const v = Reflect.get(target, prop) as unknown;
            if (typeof v !== 'function') return v;
            if (prop === 'exportEntity' || prop === 'exportJsonLines')
              return (e: typeof schema, s: string, o: ExportOptions = {}) => {
                seen.push(o.batchBytes);
                return (v as (...a: unknown[]) => unknown).call(target, e, s, o);
              };
            return (v as (...a: unknown[]) => unknown).bind(target);
          },
        }),
      ),
    );
  return seen;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

describe('wide rows: batches bounded in bytes', () => {
  for (const dialect of DIALECTS)
    it(`${dialect}: a backup reads and a restore writes batches of less than batchBytes before their last record`, async (ctx) =>
      withScratchContext(ctx, dialect, 'wide', async ({ context }) => {
        const Wide = new Entity(schema, fields).withRuntime(context.runtime);
        const want = rows(40, 20_000);
        for (let i = 0; i < want.length; i += 10) await Wide.upsertMany(want.slice(i, i + 10));
        const adapter = await context.runtime.adapter('default');
        const exports = spyOnExports(adapter);
        await backupEntity(context, Wide, 'wide', { batchBytes: '64KiB' });
        expect(exports).toEqual([64 * 1024]);

        const writes = spyOnWrites(adapter);
        const report = await restoreEntity(context, Wide, 'wide', { targetSet: 'copy', batchBytes: 64 * 1024 });
        expect(report.totalRecords).toBe(40);
        // 40 records of ~20 KB: under a 64 KiB budget, 4 a write at most, whatever the record count allows.
        expect(writes.length).toBeGreaterThanOrEqual(10);
        for (const w of writes)
          expect(sum(w) - w[w.length - 1]!, `write of ${w.join('+')} bytes`).toBeLessThan(64 * 1024);
        expect(sum(writes.map((w) => w.length))).toBe(40);
        const copy = await Wide.set('copy').all();
        expect(copy.map((r) => r.payload)).toEqual(want.map((r) => r.payload));
      }));

  it('without batchBytes, a restore writes batches under Koan.Backup.DefaultBatchBytes; a backup reads with it', async () => {
    const { context, cleanup } = await makeContext(
      { default: { provider: 'memory' } },
      { config: { defaultBatchBytes: 256 * 1024 } },
    );
    try {
      const Wide = new Entity(schema, fields).withRuntime(context.runtime);
      await Wide.upsertMany(rows(30, 50_000));
      const adapter = await context.runtime.adapter('default');
      const exports = spyOnExports(adapter);
      await backupEntity(context, Wide, 'wide');
      expect(exports).toEqual([256 * 1024]);
      const writes = spyOnWrites(adapter);
      await restoreEntity(context, Wide, 'wide', { targetSet: 'copy' });
      expect(writes.length).toBeGreaterThanOrEqual(5);
      for (const w of writes) expect(sum(w) - w[w.length - 1]!).toBeLessThan(256 * 1024);
      expect(await Wide.set('copy').count()).toBe(30);
    } finally {
      await cleanup();
    }
  });

  it('the default budget is 1 MiB, and Koan.Backup.DefaultBatchBytes may be a size written as text', () => {
    const runtime = new DataRuntime({ sources: { default: { provider: 'memory' } } });
    expect(new BackupContext({ runtime }).config.defaultBatchBytes).toBe(1024 * 1024);
    expect(new BackupContext({ runtime, config: { defaultBatchBytes: '2MiB' } }).config.defaultBatchBytes).toBe(
      2 * 1024 * 1024,
    );
    expect(new BackupContext({ runtime, config: { defaultBatchBytes: 65536 } }).config.defaultBatchBytes).toBe(65536);
    for (const bad of ['lots', 0, '2GiB'])
      expect(() => new BackupContext({ runtime, config: { defaultBatchBytes: bad } })).toThrow(
        /Koan\.Backup\.DefaultBatchBytes/,
      );
  });

  it('a batchBytes that is not a size from 1 byte to 1 GiB is refused before anything is read, naming it', async () => {
    const { context, cleanup } = await makeContext({ default: { provider: 'memory' } });
    try {
      const Wide = new Entity(schema, fields).withRuntime(context.runtime);
      await Wide.upsertMany(rows(2, 10));
      await backupEntity(context, Wide, 'wide');
      for (const batchBytes of [0, -5, 1.5, '2GiB', 'lots', '8 parsecs']) {
        for (const run of [
          () => backupEntity(context, Wide, 'wide', { batchBytes }),
          () => restoreEntity(context, Wide, 'wide', { batchBytes }),
        ]) {
          const error = await run().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, `batchBytes ${batchBytes}`).toBeInstanceOf(KoanError);
          expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option: 'batchBytes' } });
          expect((error as Error).message).toContain('batchBytes');
        }
      }
      expect(
        (await restoreEntity(context, Wide, 'wide', { batchBytes: '1 KiB', targetSet: 'small' })).totalRecords,
      ).toBe(2);
    } finally {
      await cleanup();
    }
  });
});

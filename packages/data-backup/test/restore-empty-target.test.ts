import { createMemoryAdapter, type DataAdapter, DataRuntime, Entity, t } from '@koan/data';
import { buildSchema, type DataProvider, type ImportOptions } from '@koan/data/adapter-kit';
import { BackupContext, backupEntity, restoreEntity } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import { describe, expect, it } from 'vitest';

const fields = { id: t.integer(), label: t.string() };
const schema = buildSchema({ name: 'EmptyTargetNote', key: 'id', fields }, 'declared');

/** The memory adapter, recording the mode of every write it is asked for. */
function recordingProvider(modes: string[]): DataProvider {
  return {
    name: 'recording-memory',
    create: () => {
      const inner = createMemoryAdapter();
      const record = (o: ImportOptions) => modes.push(o.mode);
      return new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop === 'transaction')
            return (fn: Parameters<DataAdapter['transaction']>[0]) =>
              target.transaction((tx) =>
                fn({
                  ...tx,
                  clear: tx.clear.bind(tx),
                  remove: tx.remove.bind(tx),
                  importBatch: (e, s, r, o) => {
                    record(o);
                    return tx.importBatch(e, s, r, o);
                  },
                }),
              );
          const v = Reflect.get(target, prop, receiver);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
    },
  };
}

describe('restore into an empty set', () => {
  it('writes with insert-only semantics (the plain bulk path) and merges only where records exist', async () => {
    const modes: string[] = [];
    const runtime = new DataRuntime({
      sources: { default: { provider: 'recording-memory' } },
      providers: [recordingProvider(modes)],
    });
    const storage = await StorageProfiles.load({ profiles: { mem: { provider: 'memory', settings: {} } } });
    const context = new BackupContext({ runtime, storage });
    const Note = new Entity(schema, fields).withRuntime(runtime);
    await Note.upsertMany(Array.from({ length: 50 }, (_, i) => ({ id: i, label: `n${i}` })));
    await backupEntity(context, Note, 'notes', { batchSize: 20 });

    modes.length = 0;
    await restoreEntity(context, Note, 'notes', { targetSet: 'fresh', batchSize: 20 });
    expect(new Set(modes)).toEqual(new Set(['insert']));
    expect(await Note.set('fresh').count()).toBe(50);

    modes.length = 0;
    const merged = await restoreEntity(context, Note, 'notes', { batchSize: 20 });
    expect(new Set(modes)).toEqual(new Set(['upsert']));
    expect(merged.entities[0]).toMatchObject({ updated: 50, inserted: 0 });

    modes.length = 0;
    await restoreEntity(context, Note, 'notes', { batchSize: 20, replaceExisting: true });
    expect(new Set(modes)).toEqual(new Set(['insert']));
    expect(await Note.count()).toBe(50);
    await context.close();
  });
});

describe('optimizeForBulkInsert', () => {
  it('asks the store for its bulk path (and SQLite for its JSON-lines path) only when on', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'koan-bulk-'));
    const calls: string[] = [];
    const { provider: sqlite } = await import('@koan/data-sqlite');
    const recording: DataProvider = {
      name: 'recording-sqlite',
      create: (settings, ctx) => {
        const inner = sqlite.create(settings as never, ctx);
        const wrapTx = (tx: Parameters<Parameters<DataAdapter['transaction']>[0]>[0]) =>
          new Proxy(tx, {
            get(target, prop, receiver) {
              const v = Reflect.get(target, prop, receiver);
              if (prop === 'importBatch' || prop === 'importJsonLines')
                return (...args: unknown[]) => {
                  calls.push(`${String(prop)}:bulk=${(args[3] as ImportOptions).bulk}`);
                  return (v as (...a: unknown[]) => unknown).apply(target, args);
                };
              return typeof v === 'function' ? v.bind(target) : v;
            },
          });
        return new Proxy(inner, {
          get(target, prop, receiver) {
            if (prop === 'transaction')
              return (fn: Parameters<DataAdapter['transaction']>[0]) => target.transaction((tx) => fn(wrapTx(tx)));
            const v = Reflect.get(target, prop, receiver);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        });
      },
    };
    const runtime = new DataRuntime({
      sources: { default: { provider: 'recording-sqlite', settings: { path: join(dir, 'db.sqlite') } } },
      providers: [recording],
      cwd: dir,
    });
    const storage = await StorageProfiles.load({ profiles: { mem: { provider: 'memory', settings: {} } } });
    const context = new BackupContext({ runtime, storage });
    const Note = new Entity(schema, fields).withRuntime(runtime);
    await Note.upsertMany(Array.from({ length: 30 }, (_, i) => ({ id: i, label: `n${i}` })));
    await backupEntity(context, Note, 'notes');
    calls.length = 0;
    await restoreEntity(context, Note, 'notes', { replaceExisting: true });
    expect(new Set(calls)).toEqual(new Set(['importJsonLines:bulk=true']));
    calls.length = 0;
    await restoreEntity(context, Note, 'notes', { replaceExisting: true, optimizeForBulkInsert: false });
    expect(new Set(calls)).toEqual(new Set(['importBatch:bulk=false']));
    expect(await Note.count()).toBe(30);
    await context.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

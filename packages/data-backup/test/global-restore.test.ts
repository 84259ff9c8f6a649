/**
 * Enterprise: full application restores (RestoreService.restoreAllEntities with GlobalRestoreOptions), on a real
 * SQLite file (transactional), a JSON-file folder and memory. Sources are unique to this file (gr_*).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineEntity, t, unregisterEntity } from '@koan/data';
import {
  BackupDiscoveryService,
  type BackupError,
  BackupService,
  type RestoreReport,
  RestoreService,
} from '@koan/data-backup';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeContext, maxInFlight, progressLog } from './helpers.js';

// GrInvoice sorts before its parent GrPayer, so dependency order is visible in the events.
const GrPayer = defineEntity({
  name: 'GrPayer',
  key: 'id',
  source: 'gr_sqlite',
  fields: { id: t.integer(), name: t.string() },
});
const GrInvoice = defineEntity({
  name: 'GrInvoice',
  key: 'id',
  source: 'gr_sqlite',
  fields: { id: t.integer(), payerId: t.integer().references('GrPayer'), amount: t.decimal() },
});
const GrNote = defineEntity({
  name: 'GrNote',
  key: 'id',
  source: 'gr_mem',
  fields: { id: t.string(), text: t.string() },
});
const GrLog = defineEntity({
  name: 'GrLog',
  key: 'id',
  source: 'gr_json',
  fields: { id: t.integer(), line: t.string() },
});
const NAMES = ['GrInvoice', 'GrLog', 'GrNote', 'GrPayer'];

let env: Awaited<ReturnType<typeof makeContext>>;
let restore: RestoreService;
const payers = Array.from({ length: 300 }, (_, i) => ({ id: i + 1, name: `payer ${i + 1}` }));
const invoices = Array.from({ length: 900 }, (_, i) => ({ id: i + 1, payerId: (i % 300) + 1, amount: `${i}.10` }));
const notes = Array.from({ length: 400 }, (_, i) => ({ id: `n${String(i).padStart(4, '0')}`, text: `note ${i}` }));
const logs = Array.from({ length: 250 }, (_, i) => ({ id: i + 1, line: `log ${i}` }));

const bound = () => {
  const rt = env.context.runtime;
  return {
    payer: GrPayer.withRuntime(rt),
    invoice: GrInvoice.withRuntime(rt),
    note: GrNote.withRuntime(rt),
    log: GrLog.withRuntime(rt),
  };
};

async function seed(): Promise<void> {
  const e = bound();
  await Promise.all([e.payer.removeAll(), e.invoice.removeAll(), e.note.removeAll(), e.log.removeAll()]);
  await e.payer.upsertMany(payers);
  await e.invoice.upsertMany(invoices);
  await e.note.upsertMany(notes);
  await e.log.upsertMany(logs);
}

/** Every record of every entity (root and the sets used here). */
async function snapshot() {
  const e = bound();
  return {
    payer: await e.payer.all(),
    invoice: await e.invoice.all(),
    note: await e.note.all(),
    log: await e.log.all(),
    staging: await e.invoice.set('staging').all(),
    payerStaging: await e.payer.set('staging').all(),
  };
}

const entity = (r: RestoreReport, name: string) => r.entities.find((e) => e.entityType === name)!;

beforeAll(async () => {
  env = await makeContext({
    gr_sqlite: { provider: 'sqlite', settings: { path: 'gr.sqlite' } },
    gr_mem: { provider: 'memory' },
    gr_json: { provider: 'json', settings: { directory: 'gr-json' } },
  });
  restore = new RestoreService(env.context);
  await seed();
  const backup = new BackupService(env.context);
  await backup.backupAllEntities('gr-full');
  await backup.backupAllEntities('gr-plain', { compressData: false });
});
afterAll(async () => {
  for (const n of NAMES) unregisterEntity(n);
  await env.cleanup();
});

/** Changes the data after the backup: new records, changed records, removed records. */
async function drift(): Promise<void> {
  const e = bound();
  await e.payer.upsertMany([
    { id: 1, name: 'renamed' },
    { id: 1000, name: 'new payer' },
  ]);
  await e.invoice.removeMany([1, 2, 3]);
  await e.note.upsertMany([{ id: 'zz-extra', text: 'extra' }]);
  await e.log.removeAll();
}

describe('RestoreService.restoreAllEntities', () => {
  beforeEach(seed);

  it('restores every entity with a per-entity report: inserted, updated, skipped, failed, duration', async () => {
    const before = await snapshot();
    await drift();
    const report = await restore.restoreAllEntities('gr-full');
    expect(report.dryRun).toBe(false);
    expect(report.validated).toBe(true);
    const rows = report.entities
      .map((e) => [e.entityType, e.status, e.inserted, e.updated, e.skipped, e.failed])
      .sort();
    expect(rows).toEqual([
      ['GrInvoice', 'Restored', 3, 897, 0, 0],
      ['GrLog', 'Restored', 250, 0, 0, 0],
      ['GrNote', 'Restored', 0, 400, 0, 0],
      ['GrPayer', 'Restored', 0, 300, 0, 0],
    ]);
    for (const e of report.entities) expect(e.durationMs).toBeGreaterThan(0);
    const after = await snapshot();
    expect(after.invoice).toEqual(before.invoice);
    expect(after.log).toEqual(before.log);
    // merge (the default) keeps what the backup does not have
    expect(after.payer).toHaveLength(301);
    expect(after.note.map((n) => n.id)).toContain('zz-extra');
  });

  it('includeEntityTypes restores only those entities (partial restore)', async () => {
    await drift();
    const report = await restore.restoreAllEntities('gr-full', { includeEntityTypes: ['GrLog', 'grnote'] });
    expect(report.entities.map((e) => e.entityType).sort()).toEqual(['GrLog', 'GrNote']);
    const after = await snapshot();
    expect(after.log).toHaveLength(250);
    expect(after.payer.find((p) => p.id === 1)!.name).toBe('renamed');
    expect(after.invoice).toHaveLength(897);
  });

  it('excludeEntityTypes leaves those entities untouched', async () => {
    await drift();
    const report = await restore.restoreAllEntities('gr-full', { excludeEntityTypes: ['GrPayer', 'GrLog'] });
    expect(report.entities.map((e) => e.entityType).sort()).toEqual(['GrInvoice', 'GrNote']);
    const after = await snapshot();
    expect(after.log).toHaveLength(0);
    expect(after.payer.find((p) => p.id === 1)!.name).toBe('renamed');
    expect(after.invoice).toHaveLength(900);
  });

  it('replaceExisting removes records the backup does not have, and reports how many', async () => {
    const before = await snapshot();
    await drift();
    const report = await restore.restoreAllEntities('gr-full', { replaceExisting: true });
    expect(entity(report, 'GrPayer')).toMatchObject({ removed: 301, inserted: 300, updated: 0 });
    expect(entity(report, 'GrNote')).toMatchObject({ removed: 401, inserted: 400 });
    const after = await snapshot();
    expect(after.payer).toEqual(before.payer);
    expect(after.note).toEqual(before.note);
  });

  it('replaceExisting is transactional per source: a failure in one entity rolls back every entity of that source', async () => {
    await drift();
    const err = (await restore
      .restoreAllEntities('gr-full', {
        replaceExisting: true,
        includeEntityTypes: ['GrPayer', 'GrInvoice'],
        transforms: {
          GrInvoice: (r) => {
            if (r.id === 500) throw new Error('cannot upcast invoice 500');
            return r;
          },
        },
      })
      .catch((e) => e)) as BackupError;
    expect(err.code).toBe('RESTORE_FAILED');
    expect(err.message).toMatch(/GrInvoice@root failed; everything this restore wrote into its target was rolled back/);
    const entities = err.details.entities as RestoreReport['entities'];
    expect(entities.map((e) => [e.entityType, e.status]).sort()).toEqual([
      ['GrInvoice', 'Failed'],
      ['GrPayer', 'Failed'],
    ]);
    expect(entities.find((e) => e.entityType === 'GrPayer')!.error).toMatch(/rolled back/);
    // GrPayer was cleared and fully restored before GrInvoice failed; all of it was rolled back
    const after = await snapshot();
    expect(after.payer).toHaveLength(301);
    expect(after.payer.find((p) => p.id === 1)!.name).toBe('renamed');
    expect(after.invoice).toHaveLength(897);
  });

  it('insert-only mode inserts into empty targets, and on an existing key fails without writing (rolled back)', async () => {
    const e = bound();
    await Promise.all([e.payer.removeAll(), e.invoice.removeAll()]);
    const ok = await restore.restoreAllEntities('gr-full', {
      mode: 'insert',
      includeEntityTypes: ['GrPayer', 'GrInvoice'],
    });
    expect(entity(ok, 'GrInvoice')).toMatchObject({ inserted: 900, updated: 0 });
    await e.invoice.removeMany([7]);
    await e.payer.removeAll();
    const err = (await restore
      .restoreAllEntities('gr-full', { mode: 'insert', includeEntityTypes: ['GrPayer', 'GrInvoice'] })
      .catch((x) => x)) as BackupError;
    expect(err.code).toBe('RESTORE_FAILED');
    // the payers inserted first are rolled back with the failing invoices
    expect(await e.payer.count()).toBe(0);
    expect(await e.invoice.count()).toBe(899);
  });

  it('dryRun reports what would change (inserted, updated, removed) and writes nothing', async () => {
    await drift();
    const before = await snapshot();
    const merge = await restore.restoreAllEntities('gr-full', { dryRun: true });
    expect(merge.dryRun).toBe(true);
    expect(merge.entities.every((e) => e.status === 'DryRun')).toBe(true);
    expect(entity(merge, 'GrInvoice')).toMatchObject({ inserted: 3, updated: 897, removed: 0 });
    expect(entity(merge, 'GrLog')).toMatchObject({ inserted: 250, updated: 0 });
    const replace = await restore.restoreAllEntities('gr-full', { dryRun: true, replaceExisting: true });
    expect(entity(replace, 'GrPayer')).toMatchObject({ inserted: 300, updated: 0, removed: 301 });
    const insertOnly = await restore.restoreAllEntities('gr-full', { dryRun: true, mode: 'insert' });
    expect(entity(insertOnly, 'GrInvoice')).toMatchObject({ inserted: 3, failed: 897 });
    expect(entity(insertOnly, 'GrInvoice').error).toMatch(/897 records already exist/);
    // Into a set that does not exist yet: everything would be inserted, and no table is created for it.
    const fresh = await restore.restoreAllEntities('gr-full', { dryRun: true, targetSet: 'dry_target' });
    expect(entity(fresh, 'GrPayer')).toMatchObject({ inserted: 300, updated: 0 });
    for (const x of Object.values(bound())) {
      const adapter = await env.context.runtime.adapter(x.schema.source);
      expect(await adapter.listSets(x.schema), x.schema.name).not.toContain('dry_target');
    }
    expect(await snapshot()).toEqual(before);
  });

  it('targetSet restores every entity into another set and leaves root alone', async () => {
    await drift();
    const report = await restore.restoreAllEntities('gr-full', {
      targetSet: 'staging',
      includeEntityTypes: ['GrPayer', 'GrInvoice'],
    });
    expect(report.entities.every((e) => e.targetSet === 'staging')).toBe(true);
    const after = await snapshot();
    expect(after.staging).toHaveLength(900);
    expect(after.payerStaging).toHaveLength(300);
    expect(after.invoice).toHaveLength(897);
    await Promise.all([bound().payer.set('staging').removeAll(), bound().invoice.set('staging').removeAll()]);
  });

  it('setMap restores per entity into its own set, winning over targetSet', async () => {
    const report = await restore.restoreAllEntities('gr-full', {
      includeEntityTypes: ['GrPayer', 'GrInvoice'],
      targetSet: 'root',
      setMap: { GrInvoice: 'staging' },
    });
    expect(entity(report, 'GrInvoice').targetSet).toBe('staging');
    expect(entity(report, 'GrPayer').targetSet).toBe('root');
    const after = await snapshot();
    expect(after.staging).toHaveLength(900);
    expect(after.payerStaging).toHaveLength(0);
    await bound().invoice.set('staging').removeAll();
  });

  it('foreign-key order: parents are restored before the entities that reference them', async () => {
    const log = progressLog();
    await restore.restoreAllEntities('gr-full', {
      includeEntityTypes: ['GrInvoice', 'GrPayer'],
      onProgress: log.listener,
    });
    const starts = log.events.filter((e) => e.phase === 'entity-start').map((e) => e.entity);
    expect(starts).toEqual(['GrPayer', 'GrInvoice']);
  });

  it('maxConcurrency restores different sources at the same time', async () => {
    const parallel = progressLog();
    await restore.restoreAllEntities('gr-full', { maxConcurrency: 3, batchSize: 50, onProgress: parallel.listener });
    expect(maxInFlight(parallel.events)).toBeGreaterThan(1);
    const serial = progressLog();
    await restore.restoreAllEntities('gr-full', { maxConcurrency: 1, batchSize: 50, onProgress: serial.listener });
    expect(maxInFlight(serial.events)).toBe(1);
  });

  it('batchSize sets how many records are written per batch', async () => {
    const small = progressLog();
    await restore.restoreAllEntities('gr-full', {
      includeEntityTypes: ['GrLog'],
      batchSize: 100,
      progressIntervalMs: 0,
      onProgress: small.listener,
    });
    const steps = small.events.filter((e) => e.phase === 'progress').map((e) => e.records);
    expect(steps).toEqual([100, 200, 250]);
    await expect(restore.restoreAllEntities('gr-full', { batchSize: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
  });

  describe('validateBeforeRestore', () => {
    beforeAll(async () => {
      // flip one byte inside GrPayer's data in the uncompressed archive
      const b = await new BackupDiscoveryService(env.context).getBackup('gr-plain');
      const file = join(env.dir, 'backups', b.archiveKey!);
      const bytes = readFileSync(file);
      const at = bytes.indexOf(Buffer.from('"payer 42"'));
      expect(at).toBeGreaterThan(0);
      bytes[at + 7] = '9'.charCodeAt(0);
      writeFileSync(file, bytes);
    });

    it('(default on) checks the whole archive before the first write: nothing is written, even for entities that are intact', async () => {
      await drift();
      const before = await snapshot();
      const err = (await restore
        .restoreAllEntities('gr-plain', { includeEntityTypes: ['GrNote', 'GrPayer'], replaceExisting: true })
        .catch((e) => e)) as BackupError;
      expect(err.code).toBe('VALIDATION_FAILED');
      expect(err.message).toMatch(/entities\/GrPayer\.jsonl: .*(CRC-32|SHA-256)/);
      expect(await snapshot()).toEqual(before);
      // the whole archive, not only the selected entities
      const partial = (await restore
        .restoreAllEntities('gr-plain', { includeEntityTypes: ['GrNote'] })
        .catch((e) => e)) as BackupError;
      expect(partial.code).toBe('VALIDATION_FAILED');
    });

    it('off: the damage is found only while restoring, after earlier sources were written', async () => {
      await drift();
      const err = (await restore
        .restoreAllEntities('gr-plain', {
          includeEntityTypes: ['GrNote', 'GrPayer'],
          replaceExisting: true,
          validateBeforeRestore: false,
        })
        .catch((e) => e)) as BackupError;
      expect(err.code).toBe('RESTORE_FAILED');
      expect(err.message).toMatch(/GrPayer/);
      const after = await snapshot();
      // GrNote (memory source, restored first) was replaced; GrPayer (SQLite) was rolled back
      expect(after.note.map((n) => n.id)).not.toContain('zz-extra');
      expect(after.payer).toHaveLength(301);
    });
  });
});

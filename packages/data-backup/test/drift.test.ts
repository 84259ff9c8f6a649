/**
 * Schema drift: a backup's schema snapshot is compared with the entity's current schema on restore.
 * Version 1 of each entity is backed up; version 2 (same name, changed fields) is what the application now defines.
 */
import { defineEntity, Entity, type FieldsShape, t, unregisterEntity } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { type BackupError, backupEntity, restoreAllEntities, restoreEntity } from '@koan/data-backup';
import { compareSchemas, runBackup } from '@koan/data-backup/plan';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const entity = <S extends FieldsShape>(name: string, key: string, fields: S, source = 'dr_mem') =>
  new Entity(buildSchema({ name, key, fields, source }, 'declared'), fields);

const v1Fields = { id: t.integer(), fullName: t.string(), age: t.integer(), legacy: t.string().optional() };
const v1 = entity('DrPerson', 'id', v1Fields);

let env: Awaited<ReturnType<typeof makeContext>>;
beforeAll(async () => {
  env = await makeContext({ dr_mem: { provider: 'memory' } });
  const P = v1.withRuntime(env.context.runtime);
  await P.upsertMany(
    Array.from({ length: 50 }, (_, i) => ({
      id: i + 1,
      fullName: `Person ${i + 1}`,
      age: 20 + i,
      ...(i % 2 ? { legacy: `L${i}` } : {}),
    })),
  );
  await backupEntity(env.context, P, 'people-v1');
});
afterAll(async () => env.cleanup());

describe('schema drift', () => {
  it('compareSchemas reports fields added, removed, type changed and key changed', () => {
    const v2 = entity('DrPerson', 'uid', {
      uid: t.string(),
      fullName: t.string(),
      age: t.string(),
      email: t.string(),
      nick: t.string().optional(),
    });
    const d = compareSchemas(v1.schema, v2.schema);
    expect(d).toMatchObject({
      added: ['uid', 'email', 'nick'],
      removed: ['id', 'legacy'],
      changed: [{ field: 'age', from: 'integer', to: 'string', convertible: true }],
      keyChanged: true,
      missingRequired: ['uid', 'email'],
      identical: false,
    });
    expect(compareSchemas(v1.schema, v1.schema).identical).toBe(true);
    expect(
      compareSchemas(v1.schema, entity('DrPerson', 'id', { ...v1Fields, age: t.boolean() }).schema).changed[0]!
        .convertible,
    ).toBe(false);
  });

  it('compareSchemas sees nullability, optionality and decimal size: narrowing is incompatible, widening convertible', () => {
    const base = { id: t.integer() };
    const drift = (from: FieldsShape, to: FieldsShape) =>
      compareSchemas(entity('DrN', 'id', { ...base, ...from }).schema, entity('DrN', 'id', { ...base, ...to }).schema)
        .changed;
    expect(drift({ a: t.string().nullable() }, { a: t.string() })).toEqual([
      { field: 'a', from: 'string nullable', to: 'string', convertible: false },
    ]);
    expect(drift({ a: t.string() }, { a: t.string().nullable() })).toEqual([
      { field: 'a', from: 'string', to: 'string nullable', convertible: true },
    ]);
    expect(drift({ a: t.string().optional() }, { a: t.string() })[0]?.convertible).toBe(false);
    expect(drift({ a: t.string() }, { a: t.string().optional() })[0]?.convertible).toBe(true);
    expect(drift({ a: t.integer().nullable() }, { a: t.bigint() })[0]?.convertible).toBe(false);
    expect(drift({ a: t.integer().nullable() }, { a: t.bigint().nullable() })[0]?.convertible).toBe(true);
    expect(drift({ d: t.decimal(12, 2) }, { d: t.decimal(12, 1) })[0]).toMatchObject({
      from: 'decimal(12,2)',
      to: 'decimal(12,1)',
      convertible: false,
    });
    expect(drift({ d: t.decimal(12, 2) }, { d: t.decimal(11, 2) })[0]?.convertible).toBe(false);
    expect(drift({ d: t.decimal(12, 2) }, { d: t.decimal(14, 3) })[0]?.convertible).toBe(true);
    expect(drift({ d: t.decimal(12, 2) }, { d: t.decimal() })[0]?.convertible).toBe(true);
    expect(drift({ d: t.decimal() }, { d: t.decimal(12, 2) })[0]?.convertible).toBe(false);
    expect(drift({ a: t.string().nullable() }, { a: t.string().nullable() })).toEqual([]);
  });

  it('an archive that holds nulls restores into a field that no longer allows them under neither policy', async () => {
    const rt = env.context.runtime;
    const old = entity('DrNullable', 'id', { id: t.integer(), note: t.string().nullable() }).withRuntime(rt);
    await old.upsertMany([
      { id: 1, note: 'kept' },
      { id: 2, note: null },
    ]);
    await backupEntity(env.context, old, 'nullable-v1');
    const now = entity('DrNullable', 'id', { id: t.integer(), note: t.string() }).withRuntime(rt);
    const strict = (await restoreEntity(env.context, now, 'nullable-v1', { targetSet: 'narrow' }).catch(
      (e) => e,
    )) as BackupError;
    expect(strict.code).toBe('SCHEMA_INCOMPATIBLE');
    expect(strict.message).toMatch(/note string nullable → string \(incompatible\)/);
    const lenient = await restoreEntity(env.context, now, 'nullable-v1', {
      targetSet: 'narrow',
      schemaPolicy: 'lenient',
    });
    expect(lenient.entities[0]).toMatchObject({ status: 'Failed', inserted: 0 });
    expect(await now.set('narrow').count()).toBe(0);
    // The other way round (a field that now allows nulls) is a widening: lenient restores every record.
    const wider = entity('DrNullable', 'id', { id: t.integer(), note: t.string().nullable().optional() }).withRuntime(
      rt,
    );
    const widened = await restoreEntity(env.context, wider, 'nullable-v1', {
      targetSet: 'wide',
      schemaPolicy: 'lenient',
    });
    expect(widened.entities[0]).toMatchObject({ status: 'Restored', inserted: 2 });
  });

  it('strict policy (default) fails before writing on any drift, and says how to proceed', async () => {
    const v2 = entity('DrPerson', 'id', {
      id: t.integer(),
      fullName: t.string(),
      age: t.integer(),
      legacy: t.string().optional(),
      nick: t.string().optional(),
    }).withRuntime(env.context.runtime);
    await v2.set('strict').upsertMany([{ id: 999, fullName: 'keep', age: 1 }]);
    const err = (await restoreEntity(env.context, v2, 'people-v1', {
      targetSet: 'strict',
      replaceExisting: true,
    }).catch((e) => e)) as BackupError;
    expect(err.code).toBe('SCHEMA_INCOMPATIBLE');
    expect(err.message).toMatch(/added nick/);
    expect(err.message).toMatch(/schemaPolicy "lenient"/);
    expect((await v2.set('strict').all()).map((r) => r.id)).toEqual([999]);
  });

  it('lenient: unknown fields are dropped and reported, missing optional fields are left empty, widened types converted', async () => {
    const v2 = entity('DrPerson', 'id', {
      id: t.integer(),
      fullName: t.string(),
      age: t.string(),
      nick: t.string().optional(),
    }).withRuntime(env.context.runtime);
    const report = await restoreEntity(env.context, v2, 'people-v1', { targetSet: 'lenient', schemaPolicy: 'lenient' });
    expect(report.entities[0]).toMatchObject({ status: 'Restored', inserted: 50, droppedFields: ['legacy'] });
    expect(report.drift).toHaveLength(1);
    expect(report.drift[0]).toMatchObject({
      entity: 'DrPerson',
      added: ['nick'],
      removed: ['legacy'],
      changed: [{ field: 'age', from: 'integer', to: 'string' }],
    });
    const rows = await v2.set('lenient').all();
    expect(rows[1]).toEqual({ id: 2, fullName: 'Person 2', age: '21' });
  });

  it('lenient: an incompatible type fails only that entity; the other entities are restored', async () => {
    const other = entity('DrTag', 'id', { id: t.string(), label: t.string() });
    await other.withRuntime(env.context.runtime).upsertMany([
      { id: 'a', label: 'A' },
      { id: 'b', label: 'B' },
    ]);
    const rt = env.context.runtime;
    await runBackup(env.context, 'two-entities', [
      { entity: v1.withRuntime(rt), set: 'root', source: 'dr_mem', provider: 'memory' },
      { entity: other.withRuntime(rt), set: 'root', source: 'dr_mem', provider: 'memory' },
    ]);
    await other.withRuntime(rt).removeAll();
    // the application now defines DrPerson.age as a boolean: no conversion from integer
    const Person = defineEntity({
      name: 'DrPerson',
      key: 'id',
      source: 'dr_mem',
      fields: { id: t.integer(), fullName: t.string(), age: t.boolean() },
    });
    defineEntity({ name: 'DrTag', key: 'id', source: 'dr_mem', fields: { id: t.string(), label: t.string() } });
    try {
      const strict = (await restoreAllEntities(env.context, 'two-entities', { targetSet: 'two' }).catch(
        (e) => e,
      )) as BackupError;
      expect(strict.code).toBe('SCHEMA_INCOMPATIBLE');
      expect(await other.withRuntime(rt).set('two').count()).toBe(0);
      const report = await restoreAllEntities(env.context, 'two-entities', {
        targetSet: 'two',
        schemaPolicy: 'lenient',
      });
      const person = report.entities.find((e) => e.entityType === 'DrPerson')!;
      expect(person).toMatchObject({ status: 'Failed', inserted: 0, failed: 50 });
      expect(person.error).toMatch(/age integer → boolean \(incompatible\)/);
      expect(report.entities.find((e) => e.entityType === 'DrTag')).toMatchObject({ status: 'Restored', inserted: 2 });
      expect(await Person.withRuntime(rt).set('two').count()).toBe(0);
      expect(await other.withRuntime(rt).set('two').count()).toBe(2);
    } finally {
      unregisterEntity('DrPerson');
      unregisterEntity('DrTag');
    }
  });

  it('lenient: a key change or a new required field cannot be bridged without a transform', async () => {
    const v2 = entity('DrPerson', 'id', {
      id: t.integer(),
      fullName: t.string(),
      age: t.integer(),
      email: t.string(),
    }).withRuntime(env.context.runtime);
    const report = await restoreEntity(env.context, v2, 'people-v1', {
      targetSet: 'required',
      schemaPolicy: 'lenient',
    });
    expect(report.entities[0]).toMatchObject({ status: 'Failed', inserted: 0 });
    expect(report.entities[0]!.error).toMatch(/added email/);
    expect(await v2.set('required').count()).toBe(0);
  });

  it('a per-entity transform upcasts old records (rename and split a field) under the strict policy', async () => {
    const v2 = entity('DrPerson', 'id', {
      id: t.integer(),
      first: t.string(),
      last: t.string(),
      age: t.integer(),
    }).withRuntime(env.context.runtime);
    const report = await restoreEntity(env.context, v2, 'people-v1', {
      targetSet: 'upcast',
      transforms: {
        DrPerson: (r, ctx) => {
          expect(ctx.archivedSchema.fields.fullName).toBeDefined();
          const [first, last] = String(r.fullName).split(' ');
          return { id: r.id, first, last, age: r.age };
        },
      },
    });
    expect(report.entities[0]).toMatchObject({ status: 'Restored', inserted: 50, droppedFields: [] });
    expect(await v2.set('upcast').get(7)).toEqual({ id: 7, first: 'Person', last: '7', age: 26 });
  });

  it('a transform returning undefined skips the record (counted as skipped); a result that does not fit fails the entity', async () => {
    const P = v1.withRuntime(env.context.runtime);
    const report = await restoreEntity(env.context, P, 'people-v1', {
      targetSet: 'evens',
      transforms: { DrPerson: (r) => ((r.id as number) % 2 ? undefined : r) },
    });
    expect(report.entities[0]).toMatchObject({ inserted: 25, skipped: 25 });
    expect(await P.set('evens').count()).toBe(25);
    const err = (await restoreEntity(env.context, P, 'people-v1', {
      targetSet: 'bad',
      transforms: { DrPerson: (r) => ({ ...r, age: 'old' }) },
    }).catch((e) => e)) as BackupError;
    expect(err.code).toBe('RESTORE_FAILED');
    expect(err.message).toMatch(/DrPerson\.age: expected integer/);
    expect(await P.set('bad').count()).toBe(0);
  });

  it('a dry run reports drift and dropped fields without writing', async () => {
    const v2 = entity('DrPerson', 'id', { id: t.integer(), fullName: t.string(), age: t.integer() }).withRuntime(
      env.context.runtime,
    );
    const report = await restoreEntity(env.context, v2, 'people-v1', {
      targetSet: 'dry',
      schemaPolicy: 'lenient',
      dryRun: true,
    });
    expect(report.entities[0]).toMatchObject({ status: 'DryRun', inserted: 50, droppedFields: ['legacy'] });
    expect(report.drift[0]!.removed).toEqual(['legacy']);
    expect(await v2.set('dry').count()).toBe(0);
  });
});

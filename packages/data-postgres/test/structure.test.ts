/**
 * The PostgreSQL StructureFacet on its own: what capture records (and names as not recreated), that replay happens
 * inside the restore's transaction (a failure leaves nothing), that it never carries Koan's own notes, and that finish
 * advances the sequences of every restored table, with or without a captured structure.
 */
import type { EntitySchema } from '@koan/data';
import { ROOT_SET, type StructureTarget } from '@koan/data/adapter-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresAdapter } from '../src/index.js';
import { createScratch, probe, type Scratch } from './scratch.js';

const unavailable = await probe();

describe('PostgreSQL structure capture and replay', () => {
  let src: Scratch;
  let tgt: Scratch;
  let source: PostgresAdapter;
  let target: PostgresAdapter;
  let targets: StructureTarget[];

  beforeAll(async () => {
    if (unavailable) return;
    src = await createScratch('struct_src');
    tgt = await createScratch('struct_tgt');
    await src.sql(`
      CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
      CREATE TABLE thing (id serial PRIMARY KEY, name text NOT NULL DEFAULT 'x');
      CREATE TRIGGER thing_touch BEFORE UPDATE ON thing FOR EACH ROW EXECUTE FUNCTION touch();
      CREATE POLICY mine ON thing USING (true);
      GRANT SELECT ON thing TO PUBLIC;
      COMMENT ON TABLE thing IS 'koan:Thing';
      COMMENT ON COLUMN thing.name IS 'a real comment';
      INSERT INTO thing (name) VALUES ('a'), ('b');
      CREATE VIEW thing_names AS SELECT name FROM thing;
      CREATE TABLE other (id int PRIMARY KEY);
      CREATE VIEW mixed AS SELECT t.id FROM thing t JOIN other o ON o.id = t.id;`);
    source = await src.adapter();
    target = await tgt.adapter();
    const { entities } = await source.introspect();
    targets = entities.filter((e) => e.table === 'thing').map((entity) => ({ entity, set: ROOT_SET }));
  }, 60_000);

  afterAll(async () => {
    await src?.drop();
    await tgt?.drop();
  });

  it('captures ordered DDL without Koan notes and names what it does not recreate', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const structure = await source.structure.capture(targets);
    expect(structure.provider).toBe('postgres');
    expect(structure.serverVersion).toMatch(/^PostgreSQL \d+/);
    const kinds = structure.objects.map((o) => `${o.kind}:${o.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'sequence:public.thing_id_seq',
        'table:public.thing',
        'comment:public.thing.name',
        'view:public.thing_names',
      ]),
    );
    expect(kinds.indexOf('sequence:public.thing_id_seq')).toBeLessThan(kinds.indexOf('table:public.thing'));
    const sql = structure.objects.flatMap((o) => o.sql).join('\n');
    expect(sql).not.toMatch(/koan:/);
    expect(sql).toMatch(/COMMENT ON COLUMN "thing"\."name" IS 'a real comment'/);
    const missing = Object.fromEntries(structure.notCaptured.map((n) => [`${n.kind}:${n.name}`, n.reason]));
    expect(Object.keys(missing)).toEqual(
      expect.arrayContaining([
        'function:public.touch()',
        'trigger:thing.thing_touch',
        'policy:thing.mine',
        'grant:thing',
        'view:public.mixed',
      ]),
    );
    expect(missing['view:public.mixed']).toMatch(/other/);
  });

  it('replays inside the restore transaction: a failure after createMissing leaves no table behind', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const structure = await source.structure.capture(targets);
    const t = retarget(targets);
    await expect(
      target.transaction(async (tx) => {
        expect(await target.structure.createMissing(tx, structure, t)).toEqual(['public.thing']);
        throw new Error('restore failed');
      }),
    ).rejects.toThrow('restore failed');
    expect(await tgt.sql(`SELECT to_regclass('public.thing') IS NULL AS gone`)).toEqual([{ gone: true }]);
  });

  it('creates the missing table, then finish adds its post-data objects and sets its sequence; existing tables are left as they are', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const structure = await source.structure.capture(targets);
    const t = retarget(targets);
    await target.transaction(async (tx) => {
      const created = await target.structure.createMissing(tx, structure, t);
      expect(created).toEqual(['public.thing']);
      await tx.importBatch(
        t[0]!.entity,
        ROOT_SET,
        [
          { id: 1, name: 'a' },
          { id: 2, name: 'b' },
        ],
        { mode: 'insert' },
      );
      await target.structure.finish(tx, structure, t, created);
    });
    expect(
      await tgt.sql(`SELECT obj_description('thing'::regclass) AS c, col_description('thing'::regclass, 2) AS n`),
    ).toEqual([{ c: null, n: 'a real comment' }]);
    expect(await tgt.sql(`INSERT INTO thing DEFAULT VALUES RETURNING id`)).toEqual([{ id: 3 }]);
    expect(await tgt.sql(`SELECT count(*)::int AS n FROM thing_names`)).toEqual([{ n: 3 }]);
    await target.transaction(async (tx) => {
      expect(await target.structure.createMissing(tx, structure, t)).toEqual([]);
      await target.structure.finish(tx, structure, t, []);
    });
  });

  it("replays into the target's own schema: names of the source's default schema follow the target's", async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const structure = await source.structure.capture(targets);
    const elsewhere = await tgt.adapter('copy_here');
    const t = retarget(targets);
    await elsewhere.transaction(async (tx) => {
      const created = await elsewhere.structure.createMissing(tx, structure, t);
      expect(created).toEqual(['copy_here.thing']);
      await tx.importBatch(t[0]!.entity, ROOT_SET, [{ id: 5, name: 'e' }], { mode: 'insert' });
      await elsewhere.structure.finish(tx, structure, t, created);
    });
    expect(await tgt.sql(`INSERT INTO copy_here.thing DEFAULT VALUES RETURNING id, name`)).toEqual([
      { id: 6, name: 'x' },
    ]);
    expect(await tgt.sql(`SELECT pg_get_serial_sequence('copy_here.thing', 'id') AS s`)).toEqual([
      { s: 'copy_here.thing_id_seq' },
    ]);
  });

  it('deferConstraints lets rows of existing tables load in a cycle of foreign keys declared without DEFERRABLE, names a violation, and puts the keys back', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    await tgt.sql(`
      CREATE TABLE hen (id int PRIMARY KEY, egg_id int);
      CREATE TABLE egg (id int PRIMARY KEY, hen_id int REFERENCES hen (id), parent_egg int REFERENCES egg (id));
      ALTER TABLE hen ADD CONSTRAINT hen_egg FOREIGN KEY (egg_id) REFERENCES egg (id);`);
    const found = (await target.introspect()).entities;
    const hen = found.find((e) => e.table === 'hen')!;
    const egg = found.find((e) => e.table === 'egg')!;
    await target.transaction(async (tx) => {
      await tx.deferConstraints!();
      await tx.importBatch(
        egg,
        ROOT_SET,
        [
          { id: 1, hen_id: 1, parent_egg: 2 },
          { id: 2, hen_id: 1, parent_egg: null },
        ],
        {
          mode: 'insert',
          bulk: true,
        },
      );
      await tx.importBatch(hen, ROOT_SET, [{ id: 1, egg_id: 1 }], { mode: 'insert' });
    });
    expect(await tgt.sql(`SELECT count(*)::int AS n FROM egg`)).toEqual([{ n: 2 }]);
    const err = await target
      .transaction(async (tx) => {
        await tx.deferConstraints!();
        await tx.importBatch(egg, ROOT_SET, [{ id: 3, hen_id: 9, parent_egg: null }], { mode: 'insert' });
      })
      .catch((e) => e);
    expect(err).toMatchObject({ code: 'FOREIGN_KEY_VIOLATION', details: { entity: egg.name, key: '3' } });
    expect(
      await tgt.sql(
        `SELECT conname, condeferrable FROM pg_constraint WHERE contype = 'f' AND conrelid IN ('hen'::regclass, 'egg'::regclass) ORDER BY 1`,
      ),
    ).toEqual([
      { conname: 'egg_hen_id_fkey', condeferrable: false },
      { conname: 'egg_parent_egg_fkey', condeferrable: false },
      { conname: 'hen_egg', condeferrable: false },
    ]);
  });

  it('finish without a structure (a restore from another provider into existing tables) advances serial and identity sequences past the rows', async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    await tgt.sql(`
      CREATE TABLE app (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n bigserial, other_id int DEFAULT nextval('thing_id_seq'));`);
    const app = (await target.introspect()).entities.find((e) => e.table === 'app')!;
    await target.transaction(async (tx) => {
      await tx.importBatch(app, ROOT_SET, [{ id: 500, n: 70n, other_id: 40 }], { mode: 'insert' });
      await target.structure.finish(tx, undefined, [{ entity: app, set: ROOT_SET }], []);
    });
    expect(await tgt.sql(`INSERT INTO app DEFAULT VALUES RETURNING id, n::int, other_id`)).toEqual([
      { id: 501, n: 71, other_id: 41 },
    ]);
  });
});

/** The same tables, in the target source. */
function retarget(targets: readonly StructureTarget[]): StructureTarget[] {
  return targets.map((t) => ({ ...t, entity: { ...t.entity, source: 'target' } as EntitySchema }));
}

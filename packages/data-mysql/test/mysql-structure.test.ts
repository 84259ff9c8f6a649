/**
 * The MariaDB structure facet on its own: what `capture` records, `createMissing` making only the missing tables on a
 * connection of its own (foreign keys to tables made after them included) and undoing itself when one fails,
 * `discardCreated`, and `finish` checking AUTO_INCREMENT counters.
 */
import { type EntitySchema, type KoanError, t } from '@koan/data';
import { buildSchema, type NativeStructure } from '@koan/data/adapter-kit';
import { probeService, serviceUrls } from '@koan/data/testing';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMysqlAdapter, type MysqlAdapter } from '../src/index.js';
import { admin, baseTables, mysqlScript, scratchDatabase, showCreate } from './native.js';

const skipReason = await probeService('mysql', async () => {
  const conn = await createConnection({ uri: serviceUrls.mysql, connectTimeout: 3000 });
  await conn.end();
});

const SCHEMA = `
SET foreign_key_checks = 0;
CREATE TABLE child (id INT NOT NULL AUTO_INCREMENT, parent_id INT NOT NULL, PRIMARY KEY (id),
  KEY fk_child_parent (parent_id), CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))
  ENGINE=InnoDB AUTO_INCREMENT=77 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
CREATE TABLE parent (id INT NOT NULL AUTO_INCREMENT, name VARCHAR(20) NOT NULL, PRIMARY KEY (id), UNIQUE KEY uk_name (name))
  ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
CREATE TABLE other (id INT PRIMARY KEY) ENGINE=InnoDB;
INSERT INTO parent VALUES (1, 'one'), (4, 'four');
INSERT INTO child VALUES (76, 4);
CREATE VIEW v_pairs AS SELECT c.id, p.name FROM child c JOIN parent p ON p.id = c.parent_id;
CREATE VIEW v_other AS SELECT id FROM other;
CREATE VIEW v_nested AS SELECT name FROM v_pairs;
CREATE TRIGGER trg_parent BEFORE INSERT ON parent FOR EACH ROW SET NEW.name = NEW.name;
CREATE PROCEDURE proc_noop() SELECT 1;
CREATE FUNCTION fn_one() RETURNS INT DETERMINISTIC RETURN 1;
SET foreign_key_checks = 1;
`;

function entity(table: string, fields = { id: t.integer() }): EntitySchema {
  return buildSchema({ name: table, key: 'id', table, fields }, 'introspected');
}

describe.skipIf(skipReason !== undefined)('MariaDB structure facet', () => {
  const drops: (() => Promise<void>)[] = [];
  let source: MysqlAdapter;
  let sourceDb: string;
  let structure: NativeStructure;
  const targets = [
    { entity: entity('parent', { id: t.integer(), name: t.string() } as never), set: 'root' },
    { entity: entity('child', { id: t.integer(), parent_id: t.integer() } as never), set: 'root' },
  ];

  beforeAll(async () => {
    const db = await scratchDatabase('struct_src');
    drops.push(db.drop);
    sourceDb = db.name;
    await mysqlScript(sourceDb, SCHEMA);
    source = createMysqlAdapter({ uri: serviceUrls.mysql, database: sourceDb, poolSize: 2 });
    await source.init();
    structure = await source.structure.capture(targets);
  });

  afterAll(async () => {
    await source?.close();
    for (const drop of drops) await drop().catch(() => undefined);
  });

  it('captures SHOW CREATE TABLE of each target, the views that read only them, and names the rest', async () => {
    const shapes = await showCreate(sourceDb);
    expect(structure.provider).toBe('mysql');
    expect(structure.serverVersion).toMatch(/MariaDB/);
    expect(structure.objects.map((o) => [o.kind, o.name, o.requires ?? []])).toEqual([
      ['table', 'parent', []],
      ['table', 'child', ['parent']],
      ['view', 'v_pairs', ['child', 'parent']],
      ['view', 'v_nested', ['v_pairs']],
    ]);
    expect(structure.objects[0]!.sql).toEqual([shapes.get('parent')]);
    expect(structure.objects[2]!.sql).toEqual([shapes.get('v_pairs')]);
    expect(structure.notCaptured).toEqual([
      { kind: 'view', name: 'v_other', reason: expect.stringMatching(/reads other/) },
      { kind: 'trigger', name: 'trg_parent', reason: expect.stringMatching(/on parent/) },
      { kind: 'function', name: 'fn_one', reason: expect.any(String) },
      { kind: 'procedure', name: 'proc_noop', reason: expect.any(String) },
    ]);
  });

  it('creates only the missing tables, on its own connection, children before parents; then the views', async () => {
    const db = await scratchDatabase('struct_tgt');
    drops.push(db.drop);
    const target = createMysqlAdapter({ uri: serviceUrls.mysql, database: db.name, poolSize: 2 });
    await target.init();
    try {
      await admin((c) => c.query('CREATE TABLE parent (id INT PRIMARY KEY, name TEXT)'), db.name);
      // Children first: the foreign key names a table that is made after it (checks are off for the DDL).
      const created = await target.transaction((tx) =>
        target.structure.createMissing(tx, structure, [...targets].reverse()),
      );
      expect(created).toEqual(['child', 'v_pairs', 'v_nested']);
      const shapes = await showCreate(db.name);
      const sourceShapes = await showCreate(sourceDb);
      expect(shapes.get('child')).toBe(sourceShapes.get('child'));
      expect(shapes.get('v_nested')).toBe(sourceShapes.get('v_nested'));
      expect(shapes.get('parent')).not.toBe(sourceShapes.get('parent')); // it existed: left as it was
      await target.structure.discardCreated!(created);
      expect(await baseTables(db.name)).toEqual(['parent']);
      expect([...(await showCreate(db.name)).keys()]).toEqual(['parent']);
    } finally {
      await target.close();
    }
  });

  it('drops what it made when a table cannot be created, and says which', async () => {
    const db = await scratchDatabase('struct_fail');
    drops.push(db.drop);
    const target = createMysqlAdapter({ uri: serviceUrls.mysql, database: db.name, poolSize: 2 });
    await target.init();
    try {
      const broken: NativeStructure = {
        ...structure,
        objects: structure.objects.map((o) =>
          o.name === 'child' ? { ...o, sql: ['CREATE TABLE child (id INT PRIMARY KEY, x NOT_A_TYPE)'] } : o,
        ),
      };
      const error = (await target
        .transaction((tx) => target.structure.createMissing(tx, broken, targets))
        .catch((e) => e)) as KoanError;
      expect(error).toMatchObject({ code: 'STRUCTURE_FAILED', details: { kind: 'table', name: 'child' } });
      expect(error.message).toMatch(/Could not create table child/);
      expect(await baseTables(db.name)).toEqual([]);
    } finally {
      await target.close();
    }
  });

  it('finish: counters past the restored ids pass; a created table whose counter is below the captured one fails by name', async () => {
    const db = await scratchDatabase('struct_finish');
    drops.push(db.drop);
    const target = createMysqlAdapter({ uri: serviceUrls.mysql, database: db.name, poolSize: 2 });
    await target.init();
    try {
      let created: string[] = [];
      await target.transaction(async (tx) => {
        created = await target.structure.createMissing(tx, structure, targets);
        await tx.deferConstraints?.();
        await tx.importBatch(
          targets[0]!.entity,
          'root',
          [
            { id: 1, name: 'one' },
            { id: 4, name: 'four' },
          ],
          {
            mode: 'insert',
          },
        );
        await target.structure.finish(tx, structure, targets, created);
        // Without a structure (another provider's backup), the counters are checked past the restored ids too.
        await target.structure.finish(tx, undefined, targets, []);
      });
      expect((await showCreate(db.name)).get('parent')).toMatch(/AUTO_INCREMENT=5 /);
      // A counter the restore left behind the captured value (here moved back by hand) is not silent.
      await admin((c) => c.query('ALTER TABLE child AUTO_INCREMENT = 1'), db.name);
      const error = (await target
        .transaction((tx) => target.structure.finish(tx, structure, targets, created))
        .catch((e) => e)) as KoanError;
      expect(error).toMatchObject({
        code: 'SEQUENCE_BEHIND',
        details: { table: 'child', counter: '1', expected: '77' },
      });
    } finally {
      await target.close();
    }
  });
});

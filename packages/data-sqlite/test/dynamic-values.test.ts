/**
 * SQLite columns are dynamically typed: a column declared without a type (or `ANY` in a STRICT table) holds INTEGERs,
 * REALs, TEXT and BLOBs side by side. A backup carries each value with its storage class (as the SQLite literal that
 * spells it), a restore into SQLite stores each one back as it was (compared with the sqlite3 CLI, independently of
 * the adapter), and a restore into any other store is refused naming the field.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, type KoanError, registeredEntities, type SourceConfig, unregisterEntity } from '@koan/data';
import { BackupContext, backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createSqliteAdapter } from '../src/index.js';

const root = mkdtempSync(join(tmpdir(), 'koan-sqlite-dynamic-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const file = (name: string) => join(root, `${name}-${++n}.db`);

function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}
afterEach(forgetIntrospected);

/** The sqlite3 command-line shell, independent of this project. */
function cli(path: string, sql: string): string {
  return execFileSync('sqlite3', [path, sql], { encoding: 'utf8' });
}

/** Every value of `table.column` with its storage class, REALs to 17 significant digits (quote() shows 15). */
function stored(path: string, table: string, column: string): string {
  return cli(
    path,
    `SELECT id, typeof(${column}), CASE typeof(${column}) WHEN 'real' THEN printf('%!.17g', ${column}) ELSE quote(${column}) END FROM ${table} ORDER BY id`,
  );
}

const SOURCE = `
CREATE TABLE loose (id INTEGER PRIMARY KEY, c, label TEXT);
INSERT INTO loose VALUES
  (1, 1.5, 'real'), (2, 5, 'integer'), (3, 'text', 'text'), (4, x'0102', 'blob'), (5, NULL, 'null'),
  (6, 1.0, 'whole real'), (7, 9223372036854775807, 'int64 max'), (8, -9223372036854775808, 'int64 min'),
  (9, '5', 'digits as text'), (10, 1e999, 'infinity'), (11, -1e999, '-infinity'), (12, 'it''s', 'quote'),
  (13, '', 'empty text'), (14, x'', 'empty blob'), (15, 0.1, 'tenth'), (16, 1e300, 'huge'),
  (17, 0.30000000000000004, 'sum'), (18, 'x' || char(10) || 'y', 'newline'), (19, '1.0', 'real as text'),
  (20, -2.5e-300, 'tiny'), (21, -0.0, 'negative zero');
CREATE TABLE strict_any (id INTEGER PRIMARY KEY, v ANY) STRICT;
INSERT INTO strict_any VALUES (1, 1.5), (2, 7), (3, 'seven'), (4, x'ff'), (5, '07'), (6, NULL);
`;

async function contextFor(sources: Record<string, SourceConfig>, backups: string) {
  const runtime = new DataRuntime({ cwd: root, sources });
  const storage = await StorageProfiles.load(
    { defaultProfile: 'local', profiles: { local: { provider: 'local', settings: { root: backups } } } },
    { cwd: root },
  );
  return new BackupContext({ runtime, storage });
}

const sqlite = (path: string) => ({ provider: 'sqlite', settings: { path } });

async function backupSource(): Promise<{ source: string; backups: string }> {
  const source = file('source');
  cli(source, SOURCE);
  const backups = join(root, `backups-${++n}`);
  const ctx = await contextFor({ src: sqlite(source) }, backups);
  try {
    const backup = await backupAllEntities(ctx, 'loose', { introspect: true });
    expect(backup.entities.map((e) => [e.entityType, e.status, e.itemCount])).toEqual([
      ['loose', 'Completed', 21],
      ['strict_any', 'Completed', 6],
    ]);
  } finally {
    await ctx.close();
    forgetIntrospected();
  }
  return { source, backups };
}

describe('SQLite columns without a declared type', () => {
  it('are introspected as dynamic fields, each value read as the SQLite literal of its storage class', async () => {
    const source = file('source');
    cli(source, SOURCE);
    const adapter = createSqliteAdapter({ path: source });
    await adapter.init();
    try {
      const { entities } = await adapter.introspect();
      const loose = entities.find((e) => e.name === 'loose')!;
      expect(loose.fields.c).toMatchObject({ type: 'string', dynamic: true, nullable: true });
      expect(loose.fields.label!.dynamic).toBeUndefined();
      expect(entities.find((e) => e.name === 'strict_any')!.fields.v).toMatchObject({ dynamic: true });
      const values: Record<number, unknown> = {};
      for await (const batch of adapter.exportEntity(loose, 'root'))
        for (const r of batch) values[r.id as number] = r.c;
      expect(values).toEqual({
        1: '1.5',
        2: '5',
        3: "'text'",
        4: "X'0102'",
        5: null,
        6: '1.0',
        7: '9223372036854775807',
        8: '-9223372036854775808',
        9: "'5'",
        10: '9.0e+999',
        11: '-9.0e+999',
        12: "'it''s'",
        13: "''",
        14: "X''",
        15: '0.1',
        16: '1.0e+300',
        17: '0.30000000000000004',
        18: "'x\ny'",
        19: "'1.0'",
        20: '-2.5e-300',
        21: '-0.0',
      });
    } finally {
      await adapter.close();
    }
  });

  it('back up and restore SQLite to SQLite identically: every value with its storage class', async () => {
    const { source, backups } = await backupSource();
    // From the archived structure (the untyped column recreated), and from the field types (structure: false).
    for (const structure of [true, false]) {
      const target = file('target');
      const ctx = await contextFor({ tgt: sqlite(target) }, backups);
      try {
        const report = await restoreAllEntities(ctx, 'loose', { targetSource: 'tgt', structure });
        expect(report.entities.map((e) => [e.entityType, e.status, e.inserted])).toEqual([
          ['loose', 'Restored', 21],
          ['strict_any', 'Restored', 6],
        ]);
      } finally {
        await ctx.close();
      }
      expect(stored(target, 'loose', 'c'), `structure: ${structure}`).toBe(stored(source, 'loose', 'c'));
      expect(stored(target, 'strict_any', 'v'), `structure: ${structure}`).toBe(stored(source, 'strict_any', 'v'));
      // -0.0 (which the shell prints as 0.0) stays negative.
      const db = new Database(target, { readonly: true });
      try {
        expect(Object.is(db.prepare('SELECT c FROM loose WHERE id = 21').pluck(true).get(), -0)).toBe(true);
      } finally {
        db.close();
      }
    }
  });

  it('into a typed column that would convert a value: refused naming the field, nothing written', async () => {
    const { backups } = await backupSource();
    const target = file('typed');
    cli(target, 'CREATE TABLE loose (id INTEGER PRIMARY KEY, c TEXT, label TEXT);');
    const ctx = await contextFor({ tgt: sqlite(target) }, backups);
    try {
      const err = (await restoreAllEntities(ctx, 'loose', { targetSource: 'tgt', includeEntityTypes: ['loose'] }).then(
        () => undefined,
        (e: unknown) => e,
      )) as KoanError;
      expect(err.code).toBe('UNSUPPORTED_VALUE');
      expect(err.message).toMatch(/loose\.c of record 1: the TEXT column would store the REAL 1\.5 as TEXT/);
    } finally {
      await ctx.close();
    }
    expect(cli(target, 'SELECT count(*) FROM loose')).toBe('0\n');
  });

  it('into another kind of store: refused before anything is written, naming the field', async () => {
    const { backups } = await backupSource();
    const ctx = await contextFor({ mem: { provider: 'memory' } }, backups);
    try {
      const err = (await restoreAllEntities(ctx, 'loose', { targetSource: 'mem' }).then(
        () => undefined,
        (e: unknown) => e,
      )) as KoanError;
      expect(err.code).toBe('UNSUPPORTED_VALUE');
      expect(err.message).toMatch(/loose\.c holds SQLite values of any type/);
      expect(err.message).toMatch(/strict_any\.v/);
    } finally {
      await ctx.close();
    }
  });
});

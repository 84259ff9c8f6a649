/**
 * A restore refused into a new SQLite file leaves nothing behind: the file (and the folders made for it) exist only
 * once something was written into it. Refused before the store is touched (a plan check), or rolled back at the
 * commit (a foreign key the rows break): no empty database file remains.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

let dir: string;
const run = (argv: string[]) => runIn(dir, argv);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-new-file-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Storage: {
          DefaultProfile: 'local',
          Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } },
        },
      },
    }),
  );
  // With foreign keys off, the source holds a child row whose parent does not exist.
  const db = new Database(join(dir, 'family.sqlite'));
  db.pragma('foreign_keys = OFF');
  db.exec(`CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id));
    INSERT INTO parent VALUES (1, 'a');
    INSERT INTO child VALUES (1, 1), (2, 99);`);
  db.close();
  const backup = await run(['backup', 'family', '--source', `sqlite:${join(dir, 'family.sqlite')}`]);
  expect(backup.code, backup.stderr).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('koan-backup restore into a new SQLite file', () => {
  it('refused by a plan check: no file, no folder', async () => {
    const target = join(dir, 'planned', 'new.db');
    // The child's archived structure needs its parent, which this restore does not write.
    const r = await run(['restore', 'family', '--entity', 'child', '--target-source', `sqlite:${target}`]);
    expect(r.code, r.stdout).toBe(3);
    expect(r.stderr).toMatch(/child@root: its archived structure has foreign keys to parent/);
    expect(existsSync(join(dir, 'planned'))).toBe(false);
  });

  it('rolled back at the commit: the database file it created is removed, with the folder made for it', async () => {
    const target = join(dir, 'rolled', 'back', 'new.db');
    const r = await run(['restore', 'family', '--target-source', `sqlite:${target}`]);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(/child record "2" references parent \(id\) = \(99\), which does not exist/);
    expect(existsSync(join(dir, 'rolled'))).toBe(false);
    // In a folder that was already there: the file goes, the folder and what it holds stay.
    writeFileSync(join(dir, 'placeholder'), '');
    const here = await run(['restore', 'family', '--target-source', `sqlite:${join(dir, 'new.db')}`]);
    expect(here.code).toBe(1);
    expect(readdirSync(dir).filter((f) => f.startsWith('new.db'))).toEqual([]);
    expect(existsSync(join(dir, 'placeholder'))).toBe(true);
  });

  it('a restore that succeeds keeps its file; an existing file that a restore fails into stays', async () => {
    const target = join(dir, 'ok', 'new.db');
    const r = await run(['restore', 'family', '--entity', 'parent', '--target-source', `sqlite:${target}`]);
    expect(r.code, r.stderr).toBe(0);
    const db = new Database(target, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM parent').pluck().get()).toBe(1);
    db.close();
    // An empty file that exists is not this restore's to remove.
    const empty = join(dir, 'empty.db');
    writeFileSync(empty, '');
    const failed = await run(['restore', 'family', '--target-source', `sqlite:${empty}`]);
    expect(failed.code).toBe(1);
    expect(existsSync(empty)).toBe(true);
  });
});

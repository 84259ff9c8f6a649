/**
 * Operations that do not need the catalog: `backup --output FILE|-` (like pg_dump -f), `restore`/`validate`/`inspect`
 * of a .zip file, `adopt`; and disaster recovery by name while a storage profile is unreachable.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { closedLoopbackPort, unreachableS3Settings } from '@koan/storage/testing';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIn } from './run-cli.js';

let dir: string;
let dead: number;
const run = (argv: string[], io = {}) => runIn(dir, argv, io);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-archives-'));
  dead = await closedLoopbackPort();
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Storage: {
          DefaultProfile: 'local',
          Profiles: {
            local: { Provider: 'local', Settings: { Root: './backups' } },
            offsite: { Provider: 's3', Settings: unreachableS3Settings(dead) },
          },
        },
      },
    }),
  );
  const db = new Database(join(dir, 'shop.sqlite'));
  db.exec(`CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price NUMERIC);
           INSERT INTO item VALUES (1, 'tea', 3.5), (2, 'cup', 12), (3, 'pot', 40.25);`);
  db.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rowsOf = (file: string) => {
  const db = new Database(join(dir, file), { readonly: true });
  try {
    return db.prepare('SELECT id, name, price FROM item ORDER BY id').all();
  } finally {
    db.close();
  }
};

describe('archives outside the catalog', () => {
  it('backup --output FILE writes an archive and nothing else; restore, validate and inspect read the file', async () => {
    const made = await run(['backup', 'shop', '--source', './shop.sqlite', '--output', './shop.zip', '--json']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.json()).toMatchObject({ storageProfile: `file:${join(dir, 'shop.zip')}` });
    expect(readdirSync(dir).sort()).toEqual(['koan.config.json', 'shop.sqlite', 'shop.zip']); // no temp file left
    expect((await run(['list', '--profile', 'local', '--json'])).json<{ backups: unknown[] }>().backups).toEqual([]);
    const valid = await run(['validate', './shop.zip']);
    expect(valid.code, valid.stderr).toBe(0);
    expect(valid.stdout).toMatch(/^Valid: shop/);
    const inspect = await run(['inspect', './shop.zip', '--json']);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.json<{ backup: { name: string } }>().backup.name).toBe('shop');
    const restored = await run(['restore', './shop.zip', '--target-source', 'sqlite:./copy.sqlite']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(rowsOf('copy.sqlite')).toEqual(rowsOf('shop.sqlite'));
  });

  it('backup --output - streams the archive to standard output with the summary on stderr; it is a usage error on a terminal', async () => {
    const chunks: Buffer[] = [];
    const binaryOut = new Writable({
      write(chunk, _encoding, done) {
        chunks.push(chunk as Buffer);
        done();
      },
    });
    const streamed = await run(['backup', 'shop', '--source', './shop.sqlite', '--output', '-'], { binaryOut });
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.stdout).toBe('');
    expect(JSON.parse(streamed.stderr)).toMatchObject({ name: 'shop', storageProfile: 'stdout', status: 'Completed' });
    writeFileSync(join(dir, 'piped.zip'), Buffer.concat(chunks));
    expect((await run(['validate', './piped.zip'])).code).toBe(0);
    const terminal = Object.assign(new Writable({ write: (_c, _e, done) => done() }), { isTTY: true });
    const refused = await run(['backup', 'shop', '--source', './shop.sqlite', '--output', '-'], {
      binaryOut: terminal,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/onto the terminal[\s\S]*> nightly\.zip/);
  });

  it('adopt brings a file into the catalog (copied into the profile), then it restores by name', async () => {
    const adopted = await run(['adopt', './shop.zip', '--json']);
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(adopted.json()).toMatchObject({ name: 'shop', profile: 'local', copied: true });
    const again = await run(['adopt', './shop.zip']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already in the catalog/);
    expect((await run(['validate', 'shop', '--profile', 'local'])).code).toBe(0);
  });

  it('a path that is no file is not found (exit 4), for adopt, restore, validate and inspect; not an invalid key', async () => {
    for (const command of [['adopt'], ['restore', '--dry-run'], ['validate'], ['inspect']])
      for (const ref of ['./missing.zip', join(dir, 'missing.zip'), '../missing.zip']) {
        const r = await run([command[0]!, ref, ...command.slice(1), '--json']);
        expect(r.code, `${command[0]} ${ref}: ${r.stdout}`).toBe(4);
        expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'NOT_FOUND' });
        expect(r.json<{ error: { message: string } }>().error.message).toContain('No archive file at');
      }
    const human = await run(['adopt', './missing.zip']);
    expect(human.stderr).toMatch(/^Hint: Check the path/m);
  });

  it('restore by name with a profile down stops, names the newest reachable backup and the flag; the flag restores it', async () => {
    const stopped = await run(['restore', 'shop', '--target-source', 'sqlite:./dr.sqlite', '--dry-run']);
    expect(stopped.code).not.toBe(0);
    expect(stopped.stderr).toContain('PROFILE_UNAVAILABLE');
    expect(stopped.stderr).toMatch(/newest reachable backup "shop" is [0-9a-f-]+ in profile local/);
    expect(stopped.stderr).toContain('--allow-unreachable-profiles');
    const allowed = await run([
      'restore',
      'shop',
      '--target-source',
      'sqlite:./dr.sqlite',
      '--allow-unreachable-profiles',
    ]);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stderr).toMatch(/profile offsite could not be listed \(TRANSIENT\); it may hold a newer shop/);
    expect(rowsOf('dr.sqlite')).toEqual(rowsOf('shop.sqlite'));
    const validated = await run(['validate', 'shop', '--allow-unreachable-profiles', '--json']);
    expect(validated.code, validated.stderr).toBe(0);
  });
});

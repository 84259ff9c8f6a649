/**
 * The CLI's exit codes come from the library's `errorKind` (the table the HTTP API takes its statuses from): every
 * kind has its exit code, the CLI's own codes keep theirs, and an invalid storage key is a usage error (exit 2). A
 * query's rules across flags are the library's (`checkBackupQuery`), said with the flags' names before any config is
 * read.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KoanError } from '@koan/data';
import { type ErrorKind, errorKind } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIError, ExitCode, exitCodeForCode, exitCodeOf } from '../src/_errors.js';
import { runIn } from './run-cli.js';

let dir: string;
let bare: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'koan-cli-kinds-'));
  bare = mkdtempSync(join(tmpdir(), 'koan-cli-kinds-bare-'));
  writeFileSync(
    join(dir, 'koan.config.json'),
    JSON.stringify({
      Koan: {
        Data: { Sources: { kindsMem: { Provider: 'memory' } } },
        Storage: {
          DefaultProfile: 'local',
          Profiles: { local: { Provider: 'local', Settings: { Root: './backups' } } },
        },
      },
    }),
  );
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(bare, { recursive: true, force: true });
});

describe('exit codes by error kind', () => {
  const byKind: Record<ErrorKind, number> = {
    invalid: ExitCode.USAGE,
    configuration: ExitCode.USAGE,
    'not-found': ExitCode.NOT_FOUND,
    conflict: ExitCode.FAILURE,
    integrity: ExitCode.VALIDATION_FAILED,
    unavailable: ExitCode.FAILURE,
    cancelled: ExitCode.CANCELLED,
    failure: ExitCode.FAILURE,
  };

  it("a library error exits with its kind's code", () => {
    for (const code of [
      'INVALID_OPTION',
      'INVALID_KEY',
      'CONFIG_NOT_FOUND',
      'MISSING_SETTING',
      'BACKUP_NOT_FOUND',
      'ALREADY_EXISTS',
      'BACKUP_NOT_RESTORABLE',
      'ARCHIVE_CORRUPT',
      'PROFILE_UNAVAILABLE',
      'ABORTED',
      'DUPLICATE_KEY',
    ]) {
      const kind = errorKind(code);
      expect(kind, code).toBeDefined();
      expect(exitCodeOf(new KoanError(code, 'x')), code).toBe(byKind[kind!]);
    }
  });

  it("the CLI's own codes keep theirs; an unclassified code, or no code, is a failure", () => {
    expect(['USAGE', 'EARG', 'E_UNKNOWN_COMMAND', 'E_NO_COMMAND', 'SOURCE_NOT_FOUND'].map(exitCodeForCode)).toEqual([
      2, 2, 2, 2, 4,
    ]);
    expect(exitCodeForCode('WHATEVER')).toBe(ExitCode.FAILURE);
    expect(exitCodeOf(new Error('plain'))).toBe(ExitCode.FAILURE);
    expect(exitCodeOf(new CLIError('m', 'X', { exitCode: 7 }))).toBe(7);
  });

  it('an invalid storage key is a usage error (exit 2), as the HTTP API answers it 400', async () => {
    const r = await runIn(dir, ['inspect', 'nightly//x.zip', '--json']);
    expect(r.code, r.stdout + r.stderr).toBe(ExitCode.USAGE);
    expect(r.json()).toMatchObject({ error: { code: 'INVALID_KEY', exitCode: 2 } });
  });
});

describe('query rules across flags', () => {
  it('are checked before any config is read, and said with the flags', async () => {
    const sizes = await runIn(bare, ['query', '--min-size', '2KiB', '--max-size', '1KiB']);
    expect(sizes.code).toBe(ExitCode.USAGE);
    expect(sizes.stderr).toContain('--min-size (2048 bytes) is larger than --max-size (1024 bytes).');
    const dates = await runIn(bare, ['query', '--from', '2024-12-18', '--to', '2024-12-17']);
    expect(dates.code).toBe(ExitCode.USAGE);
    expect(dates.stderr).toContain('--from (2024-12-18T00:00:00.000Z) is after --to (2024-12-17T23:59:59.999Z)');
    expect(dates.stderr).not.toMatch(/CONFIG/);
  });
});

import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { CLIError, ExitCode, usageError } from './_errors.js';

/** The flag of every command that finds a backup by name across profiles. */
export const lookupArgs = {
  'allow-unreachable-profiles': {
    type: 'boolean',
    description:
      'By name: when a storage profile cannot be reached, use the newest backup of the reachable ones (otherwise the command stops and names that backup, since the unreachable profile may hold a newer one)',
  },
} as const;

/** The backup a command works on, as typed: none is a usage error showing the command's form. */
export function requiredRef(
  ref: string | undefined,
  command: string,
  form = `koan-backup ${command} <name|id>`,
): string {
  if (!ref) throw usageError(`Name the backup to ${command}: ${form}.`, 'See the backups with `koan-backup list`.');
  return ref;
}

/**
 * `ref` as an archive file when it is one. A ref shaped like a path (`./x.zip`, `/srv/x.zip`, `..\\x.zip`) that is no
 * file is not found (exit 4), rather than looked up as a storage key it can never be.
 */
export function archiveFileOf(ref: string, cwd: string): string | undefined {
  const path = resolve(cwd, ref);
  if (ref.endsWith('.zip') && existsSync(path) && statSync(path).isFile()) return path;
  if (isAbsolute(ref) || /^\.\.?[\\/]/.test(ref) || ref.includes('\\'))
    throw new CLIError(`No archive file at ${path}.`, 'NOT_FOUND', {
      exitCode: ExitCode.NOT_FOUND,
      hint: existsSync(path)
        ? 'Name a .zip file (relative paths resolve against --cwd).'
        : 'Check the path (relative paths resolve against --cwd), or name a backup, an id or a storage key (koan-backup list).',
    });
  return undefined;
}

/**
 * How a command finds the backup `ref` names: a `.zip` file that exists (relative to `cwd`) is read as an archive on its
 * own, anything else is a backup name, an id or a storage key (a `.zip` key in a profile), looked up by the library.
 */
export function lookupOptions(
  ref: string,
  args: { profile?: string | undefined; 'allow-unreachable-profiles'?: boolean | undefined },
  cwd: string,
): { archivePath?: string; storageProfile?: string; allowUnreachableProfiles?: boolean } {
  const file = archiveFileOf(ref, cwd);
  return {
    ...(file ? { archivePath: file } : {}),
    ...(args.profile && !file ? { storageProfile: args.profile } : {}),
    ...(args['allow-unreachable-profiles'] ? { allowUnreachableProfiles: true } : {}),
  };
}

import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';

/** The flag of every command that finds a backup by name across profiles. */
export const lookupArgs = {
  'allow-unreachable-profiles': {
    type: 'boolean',
    description:
      'By name: when a storage profile cannot be reached, use the newest backup of the reachable ones (otherwise the command stops and names that backup, since the unreachable profile may hold a newer one)',
  },
} as const;

/**
 * How a command finds the backup `ref` names: a `.zip` file that exists (relative to `cwd`) is read as an archive on its
 * own, anything else is a backup name, an id or a storage key (a `.zip` key in a profile), looked up by the library.
 */
export function lookupOptions(
  ref: string,
  args: { profile?: string | undefined; 'allow-unreachable-profiles'?: boolean | undefined },
  cwd: string,
): { archivePath?: string; storageProfile?: string; allowUnreachableProfiles?: boolean } {
  const path = resolve(cwd, ref);
  const isFile = ref.endsWith('.zip') && existsSync(path) && statSync(path).isFile();
  return {
    ...(isFile ? { archivePath: path } : {}),
    ...(args.profile && !isFile ? { storageProfile: args.profile } : {}),
    ...(args['allow-unreachable-profiles'] ? { allowUnreachableProfiles: true } : {}),
  };
}

import { KoanError } from '@koan/data';
import { CLIError, ExitCode } from './_errors.js';

/** The flag of each selection option of the library: what the user typed, for messages. */
const FLAGS: Readonly<Record<string, string>> = {
  includeEntityTypes: '--entity',
  excludeEntityTypes: '--exclude-entity',
  includeProviders: '--include-provider',
  excludeProviders: '--exclude-provider',
};

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

/**
 * The library's refusal of a selection (a backup's `INVALID_OPTION` for a value that matches nothing, a restore's
 * `ENTITY_NOT_FOUND` for a name the backup does not hold) in the flags the user typed; any other error as it is.
 */
export function withFlagNames(error: unknown, listCommand = 'koan-backup entities'): unknown {
  if (!(error instanceof KoanError)) return error;
  const d = error.details;
  const flag = typeof d.option === 'string' ? FLAGS[d.option] : undefined;
  if (!flag) return error;
  if (error.code === 'INVALID_OPTION' && Array.isArray(d.unknown)) {
    const unknown = strings(d.unknown);
    const what = d.option === 'includeProviders' || d.option === 'excludeProviders' ? 'provider' : 'entity or table';
    return new CLIError(
      `${flag} ${unknown.join(', ')}: no discovered ${what} has ${unknown.length === 1 ? 'that name' : 'those names'}; nothing was backed up. Known: ${strings(d.known).join(', ') || '(none)'}.`,
      'INVALID_OPTION',
      {
        exitCode: ExitCode.USAGE,
        hint: `\`${listCommand}\` lists them with their tables and sources.`,
        details: d,
        cause: error,
      },
    );
  }
  if (error.code === 'ENTITY_NOT_FOUND' && typeof d.backupId === 'string') {
    const missing = strings(d.missing);
    const missingExcluded = strings(d.missingExcluded);
    const parts = [
      ...(missing.length ? [`${missing.join(', ')} (--entity)`] : []),
      ...(missingExcluded.length ? [`${missingExcluded.join(', ')} (--exclude-entity)`] : []),
    ];
    return new CLIError(
      `Backup ${String(d.backup ?? d.backupId)} (${d.backupId}) holds no entity named ${parts.join(' or ')}; nothing was restored. It holds: ${strings(d.archived).join(', ') || '(no entities)'}.`,
      'ENTITY_NOT_FOUND',
      {
        exitCode: ExitCode.NOT_FOUND,
        hint: `See \`koan-backup inspect ${d.backupId}\`.`,
        details: d,
        cause: error,
      },
    );
  }
  return error;
}

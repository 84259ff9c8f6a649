import { existsSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { SourceConfig } from '@koan/data';
import { CLIError, ExitCode, usageError } from './_errors.js';

const FORMS =
  'postgres://user:pass@host:5432/db, mysql://user:pass@host:3306/db, mariadb://..., redis://host:6379/0, sqlite:<path>, a .sqlite/.sqlite3/.db file, or json:<directory>';

/** Whether `value` is a connection URL or file path (rather than the name of a configured source). */
export function looksLikeSourceUrl(value: string): boolean {
  return (
    /^[a-z][a-z0-9+.-]*:/i.test(value) || /\.(sqlite3?|db)$/i.test(value) || value.includes('/') || value.includes('\\')
  );
}

/**
 * A data source from a connection URL or file path, so a database can be backed up or restored with
 * no code and no config. Relative file paths resolve against `cwd`.
 */
export function parseSourceUrl(value: string, cwd: string, options: { mustExist?: boolean } = {}): SourceConfig {
  const file = (path: string, kind: 'file' | 'directory'): string => {
    if (!path) throw usageError(`The source ${JSON.stringify(value)} names no ${kind}.`, `Use one of: ${FORMS}.`);
    const full = isAbsolute(path) ? path : resolve(cwd, path);
    if (
      options.mustExist &&
      !(existsSync(full) && (kind === 'file' ? statSync(full).isFile() : statSync(full).isDirectory()))
    )
      throw new CLIError(`No ${kind} at ${full} (from --source ${value}).`, 'SOURCE_NOT_FOUND', {
        exitCode: ExitCode.NOT_FOUND,
        hint: 'Check the path; relative paths resolve against --cwd.',
      });
    return full;
  };
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1]?.toLowerCase();
  // A Windows drive letter (C:\...) is a path, not a scheme.
  if (!scheme || (scheme.length === 1 && /^[a-z]:[\\/]/i.test(value))) {
    if (/\.(sqlite3?|db)$/i.test(value)) return { provider: 'sqlite', settings: { path: file(value, 'file') } };
    throw usageError(`Cannot tell which database ${JSON.stringify(value)} is.`, `Use one of: ${FORMS}.`);
  }
  switch (scheme) {
    case 'postgres':
    case 'postgresql':
      return { provider: 'postgres', settings: { connectionString: value } };
    case 'mysql':
      return { provider: 'mysql', settings: { uri: value } };
    case 'mariadb':
      return { provider: 'mariadb', settings: { uri: value.replace(/^mariadb:/i, 'mysql:') } };
    case 'redis':
    case 'rediss':
      return { provider: 'redis', settings: { url: value } };
    case 'sqlite':
    case 'file':
      return { provider: 'sqlite', settings: { path: file(stripScheme(value), 'file') } };
    case 'json':
      return { provider: 'json', settings: { directory: file(stripScheme(value), 'directory') } };
    default:
      throw usageError(`Unsupported source scheme "${scheme}:" in ${JSON.stringify(value)}.`, `Use one of: ${FORMS}.`);
  }
}

function stripScheme(value: string): string {
  return decodeURIComponent(value.replace(/^[a-z]+:(\/\/)?/i, ''));
}

/** The URL with its password replaced, for output. */
export function redactUrl(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*:)[^@]*@/i, '$1***@');
}

import { KoanError } from '@koan/data';
import { type ErrorKind, errorKind } from '@koan/data-backup';
import { stripAnsi } from './_format.js';

/**
 * Process exit codes. Stable: scripts branch on them.
 * 0 success · 1 failure, including a backup or restore that finished with entity sets failed (a backup
 * `PartiallyCompleted`; a restore `PartiallyCompleted` or `Failed`, e.g. with --lenient, or from a `PartiallyCompleted`
 * backup whose archive lacks selected sets; a dry run that found sets that would fail): its report is still printed,
 * `--json` with its `status`; `monitor` finding the backups unhealthy: its
 * problems are printed, `--json` with `"healthy": false` · 2 usage (bad flags, arguments or configuration; a selection flag that matches nothing)
 * · 3 validation failed (damaged archive, failed pre-restore checks, schema incompatible, two archived sets that would
 * share one target table, tables that cannot be backed up and are not excluded) · 4 not found · 130 cancelled.
 */
export const ExitCode = Object.freeze({
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  VALIDATION_FAILED: 3,
  NOT_FOUND: 4,
  CANCELLED: 130,
});

/** A command-line failure with a stable `code`, the exit code it maps to, and an optional hint naming the fix. */
export class CLIError extends Error {
  readonly code: string;
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** Machine-readable facts for `--json` (`error.details`), like a KoanError's. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    message: string,
    code = 'USAGE',
    options: { exitCode?: number; hint?: string; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CLIError';
    this.code = code;
    this.exitCode = options.exitCode ?? (code === 'USAGE' ? ExitCode.USAGE : ExitCode.FAILURE);
    this.hint = options.hint;
    this.details = options.details;
  }
}

export function usageError(message: string, hint?: string): CLIError {
  return new CLIError(message, 'USAGE', { exitCode: ExitCode.USAGE, ...(hint ? { hint } : {}) });
}

/** What each kind of library failure (`errorKind`) exits with. */
const EXIT_BY_KIND: Readonly<Record<ErrorKind, number>> = {
  invalid: ExitCode.USAGE,
  configuration: ExitCode.USAGE,
  'not-found': ExitCode.NOT_FOUND,
  conflict: ExitCode.FAILURE,
  integrity: ExitCode.VALIDATION_FAILED,
  unavailable: ExitCode.FAILURE,
  cancelled: ExitCode.CANCELLED,
  failure: ExitCode.FAILURE,
};

/** The CLI's own codes (the library's are classified by `errorKind`). */
const CLI_EXIT: Readonly<Record<string, number>> = {
  USAGE: ExitCode.USAGE,
  EARG: ExitCode.USAGE,
  E_UNKNOWN_COMMAND: ExitCode.USAGE,
  E_NO_COMMAND: ExitCode.USAGE,
  SOURCE_NOT_FOUND: ExitCode.NOT_FOUND,
};

/** The exit code of an error code: the CLI's own, else its kind's, else 1. */
export function exitCodeForCode(code: string): number {
  return CLI_EXIT[code] ?? EXIT_BY_KIND[errorKind(code) ?? 'failure'];
}

/**
 * citty's own argument errors (`EARG`: an `enum` option given a value it does not list...) as the CLI's usage
 * errors: code `USAGE`, plain text (citty colours the values) and a hint naming the command's help.
 */
export function fromCittyError(error: unknown, command: string): unknown {
  if (error instanceof CLIError || !(error instanceof Error) || error.name !== 'CLIError') return error;
  return new CLIError(stripAnsi(error.message), 'USAGE', {
    exitCode: ExitCode.USAGE,
    hint: `See \`koan-backup ${command || '<command>'} --help\` for the accepted values.`,
    cause: error,
  });
}

/** The stable code of any error: a CLIError's or KoanError's own, `ERROR` otherwise. */
export function codeOf(error: unknown): string {
  if (error instanceof CLIError || error instanceof KoanError) return error.code;
  if (error instanceof Error && error.name === 'CLIError' && typeof (error as { code?: unknown }).code === 'string')
    return (error as unknown as { code: string }).code; // citty's own argument errors
  return 'ERROR';
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof CLIError) return error.exitCode;
  return exitCodeForCode(codeOf(error));
}

/** What to do next, for error codes whose message alone does not say it. */
export function hintOf(error: unknown, command: string): string | undefined {
  if (error instanceof CLIError)
    return error.hint ?? (error.exitCode === ExitCode.USAGE ? `See \`koan-backup ${command} --help\`.` : undefined);
  switch (codeOf(error)) {
    case 'EARG':
    case 'INVALID_OPTION':
      return `See \`koan-backup ${command} --help\`.`;
    case 'BACKUP_NOT_FOUND':
      return 'Run `koan-backup list` to see the backups (name or id), or pass --profile to look in another storage profile.';
    case 'ARCHIVE_CORRUPT':
    case 'VALIDATION_FAILED':
      return 'Run `koan-backup validate <name|id>` for every issue; restore from another backup (`koan-backup list`).';
    case 'SCHEMA_INCOMPATIBLE': {
      const details = (error as { details?: Record<string, unknown> }).details;
      const some = (key: string) => Array.isArray(details?.[key]) && (details[key] as unknown[]).length > 0;
      const undeclared = details?.undeclared;
      // A merge into a table without a primary key: no schema policy helps, a mode or an empty target does.
      if (some('keylessMerge'))
        return 'Add --replace (with --yes) to empty those tables first, or --mode insert to append every archived row to the rows they hold; or restore into an empty set (--target-set) or another database (--target-source).';
      if (some('missingColumns'))
        return 'Add the missing columns to those tables, or pass --lenient to restore without those fields (named in the report), or --exclude-entity to skip an entity.';
      if (Array.isArray(undeclared) && undeclared.length)
        return `This application declares no ${undeclared.join(', ')}: restore into a database with the archived schema (--target-source sqlite:./restored.sqlite, or a postgres://... / mysql://... URL), declare the entities (--import ./entities.mjs), or skip them (--exclude-entity).`;
      return 'Pass --lenient to drop removed fields and convert widened types, or --exclude-entity to skip an entity.';
    }
    case 'TARGET_COLLISION':
      return 'Restore the entities that share a table separately: one at a time (--entity), each into its own set (--entity X --target-set Y) or into another database (--target-source).';
    case 'SOURCE_UNAVAILABLE':
      return 'Check the data source settings (Koan.Data.Sources in koan.config.json, or the --source URL) and that the database is reachable.';
    default:
      return undefined;
  }
}

/** A JSON-safe description of an error for `--json` output. */
export function errorDocument(error: unknown, exitCode: number): Record<string, unknown> {
  // Plain text: a JSON document never carries terminal colours.
  const message = stripAnsi(error instanceof Error ? error.message : String(error));
  const details = error instanceof KoanError || error instanceof CLIError ? error.details : undefined;
  return {
    error: {
      code: codeOf(error),
      message,
      exitCode,
      ...(details && Object.keys(details).length ? { details: stripLarge(details) } : {}),
    },
  };
}

function stripLarge(details: Readonly<Record<string, unknown>>): Record<string, unknown> {
  // A failed backup's details carry its whole manifest; keep the document short and serialisable.
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) if (k !== 'manifest' && k !== 'report') out[k] = v;
  return out;
}

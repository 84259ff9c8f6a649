import { KoanError } from '@koan/data';

/**
 * Backup and restore failures. Stable codes: `BACKUP_NOT_FOUND`, `BACKUP_NOT_RESTORABLE`, `BACKUP_FAILED`,
 * `VALIDATION_FAILED`, `SCHEMA_INCOMPATIBLE`, `ALREADY_EXISTS`, `ENTITY_NOT_FOUND`, `RESTORE_FAILED`, `INVALID_OPTION`,
 * `INVALID_NAME` (a backup name breaking the naming rule), `ABORTED`, `ARCHIVE_CORRUPT`, `PROFILE_UNAVAILABLE`.
 */
export class BackupError extends KoanError {}

export function invalidOption(name: string, value: unknown, expected: string): BackupError {
  return new BackupError('INVALID_OPTION', `Invalid option ${name}: ${JSON.stringify(value)}. Expected ${expected}.`, {
    details: { option: name },
  });
}

/**
 * What a failure means to whoever asked, whatever the frontend: the CLI maps a kind to an exit code, the HTTP API to a
 * status. `invalid`: the request itself (an option, a name, a key); `configuration`: the settings it runs with;
 * `not-found`: the backup or entity it names; `conflict`: the state of what it names (a backup that cannot be restored,
 * a copy already there); `integrity`: a damaged archive or a failed check; `unavailable`: a store that cannot be reached
 * now (worth retrying); `cancelled`; `failure`: the operation itself failed.
 */
export type ErrorKind =
  | 'invalid'
  | 'configuration'
  | 'not-found'
  | 'conflict'
  | 'integrity'
  | 'unavailable'
  | 'cancelled'
  | 'failure';

const KINDS: Readonly<Record<Exclude<ErrorKind, 'failure'>, readonly string[]>> = {
  invalid: ['INVALID_OPTION', 'INVALID_NAME', 'INVALID_KEY', 'NOTHING_TO_BACK_UP'],
  configuration: [
    'CONFIG',
    'CONFIG_INVALID',
    'CONFIG_INVALID_JSON',
    'CONFIG_NOT_FOUND',
    'UNKNOWN_SOURCE',
    'PROVIDER_NOT_INSTALLED',
    'PROVIDER_INVALID',
    'INVALID_SETTING',
    'INVALID_SETTINGS',
    'MISSING_SETTING',
  ],
  'not-found': ['BACKUP_NOT_FOUND', 'ENTITY_NOT_FOUND', 'NOT_FOUND'],
  conflict: ['BACKUP_NOT_RESTORABLE', 'ALREADY_EXISTS'],
  integrity: [
    'VALIDATION_FAILED',
    'ARCHIVE_CORRUPT',
    'LINE_TOO_LONG',
    'SCHEMA_INCOMPATIBLE',
    'TARGET_COLLISION',
    'TABLES_NOT_BACKED_UP',
  ],
  unavailable: ['TRANSIENT', 'SOURCE_UNAVAILABLE', 'PROFILE_UNAVAILABLE'],
  cancelled: ['ABORTED'],
};

/** Every other code the Koan packages raise: a failure of the operation itself. */
const FAILURES = [
  // storage
  'ACCESS_DENIED',
  'BUCKET_NOT_FOUND',
  'INVALID_RANGE',
  'IO',
  // archives
  'ARCHIVE_DUPLICATE_ENTRY',
  'ARCHIVE_ENTRY_MISSING',
  'ARCHIVE_ENTRY_TOO_LARGE',
  'ARCHIVE_INVALID_NAME',
  'ARCHIVE_UNSUPPORTED',
  'ARCHIVE_WRITER_CLOSED',
  // backups and restores (a shortfall's codes too: BACKUP_PARTIAL...)
  'BACKUP_FAILED',
  'BACKUP_PARTIAL',
  'RESTORE_FAILED',
  'RESTORE_PARTIAL',
  'RESTORE_WOULD_FAIL',
  'LEASE_LOST',
  // data sources, entities and adapters
  'CLOSE_FAILED',
  'CONNECTION_FAILED',
  'CONSTRAINT_VIOLATION',
  'CORRUPT_FILE',
  'DUPLICATE_ENTITY',
  'DUPLICATE_KEY',
  'FOREIGN_KEY_VIOLATION',
  'INCOMPATIBLE_COPIES',
  'INVALID_ENTITY',
  'INVALID_RECORD',
  'INVALID_VALUE',
  'MISSING_FIELD',
  'NOT_INITIALIZED',
  'NOT_IN_TRANSACTION',
  'READ_FAILED',
  'RUNTIME_CLOSED',
  'SCHEMA_MISMATCH',
  'SEQUENCE_BEHIND',
  'STRUCTURE_FAILED',
  'TABLE_MISSING',
  'UNKNOWN_FIELD',
  'UNSUPPORTED',
  'UNSUPPORTED_KEY',
  'UNSUPPORTED_OPERATION',
  'UNSUPPORTED_VALUE',
  'WRITE_FAILED',
] as const;

const KIND_BY_CODE: ReadonlyMap<string, ErrorKind> = new Map<string, ErrorKind>([
  ...Object.entries(KINDS).flatMap(([kind, codes]) => codes.map((code) => [code, kind as ErrorKind] as const)),
  ...FAILURES.map((code) => [code, 'failure'] as const),
]);

/**
 * The kind of a Koan error code (see {@link ErrorKind}); `undefined` for a code no Koan package raises (a frontend's
 * own, say). One table for every frontend, so the CLI's exit codes and the HTTP API's statuses cannot drift apart.
 */
export function errorKind(code: string): ErrorKind | undefined {
  return KIND_BY_CODE.get(code);
}

/**
 * The failure a `BACKUP_FAILED` error wraps (a source that went away, a cancellation...): it says what happened better
 * than the wrapper, so frontends report its code. Any other error is its own.
 */
export function underlyingError(e: KoanError): KoanError {
  return e.code === 'BACKUP_FAILED' && e.cause instanceof KoanError && e.cause.code !== 'BACKUP_FAILED' ? e.cause : e;
}

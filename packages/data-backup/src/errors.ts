import { KoanError } from '@koan/data';

/**
 * Backup and restore failures. Stable codes: `BACKUP_NOT_FOUND`, `BACKUP_NOT_RESTORABLE`, `BACKUP_FAILED`,
 * `VALIDATION_FAILED`, `SCHEMA_INCOMPATIBLE`, `ALREADY_EXISTS`, `ENTITY_NOT_FOUND`, `RESTORE_FAILED`, `INVALID_OPTION`,
 * `INVALID_NAME` (a backup name breaking the naming rule), `ABORTED`, `ARCHIVE_CORRUPT`.
 */
export class BackupError extends KoanError {}

export function invalidOption(name: string, value: unknown, expected: string): BackupError {
  return new BackupError('INVALID_OPTION', `Invalid option ${name}: ${JSON.stringify(value)}. Expected ${expected}.`, {
    details: { option: name },
  });
}

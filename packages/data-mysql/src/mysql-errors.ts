/** The MySQL/MariaDB errors the adapter recognizes, and the `DataError`s it names them with. */
import { DataError, type EntitySchema } from '@koan/data';
import { ROOT_SET } from '@koan/data/adapter-kit';

export const ER_NO_SUCH_TABLE = 1146;
export const ER_DUP_ENTRY = 1062;

export const ER_NO_REFERENCED_ROW = 1452;

export interface ForeignKeyRow {
  readonly constraint: string;
  readonly table: string;
  readonly columns: string[];
  readonly parent: string;
  readonly parentColumns: string[];
}

export function foreignKeyViolation(
  entity: string,
  set: string,
  key: string | undefined,
  fk: Pick<ForeignKeyRow, 'constraint' | 'parent' | 'columns'>,
  values: string,
  cause?: unknown,
): DataError {
  return new DataError(
    'FOREIGN_KEY_VIOLATION',
    `[mysql] ${entity} record ${key === undefined ? '(unknown key)' : JSON.stringify(key)} references ${fk.parent} with ${fk.columns.join(', ')} = ${values}, which does not exist (constraint ${fk.constraint}).`,
    { ...(cause ? { cause } : {}), details: { entity, set, key, constraint: fk.constraint, references: fk.parent } },
  );
}

/** `get`, `getMany` and `remove` address rows by key: a table without a primary key has none. */
export function assertKeyed(entity: EntitySchema): void {
  if (entity.keyless)
    throw new DataError(
      'UNSUPPORTED_KEY',
      `[mysql] ${entity.name} has no primary key: its rows cannot be read or removed by key (export, count and clear work).`,
      { details: { entity: entity.name } },
    );
}

export function isNoSuchTable(e: unknown): boolean {
  return (e as { errno?: number }).errno === ER_NO_SUCH_TABLE;
}

export function duplicateKeyError(schema: EntitySchema, set: string, message: string, cause?: unknown): DataError {
  const key = /Duplicate entry '(.*)' for key/s.exec(message)?.[1];
  return new DataError(
    'DUPLICATE_KEY',
    `${schema.name}${set === ROOT_SET ? '' : `#${set}`}: a record with key ${JSON.stringify(key ?? '?')} already exists (insert mode). Use mode 'upsert' to replace it.`,
    { cause, details: { entity: schema.name, set, key } },
  );
}

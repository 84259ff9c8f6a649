/**
 * `@koan/data-sqlite`: the SQLite data adapter, on better-sqlite3.
 *
 * @example
 * import { createSqliteAdapter } from '@koan/data-sqlite';
 * const adapter = createSqliteAdapter({ path: 'app.db' });
 * await adapter.init();
 * for await (const batch of adapter.exportEntity(User.schema, 'root')) console.log(batch.length);
 * await adapter.close();
 */
import type { DataProvider } from '@koan/data/adapter-kit';
import { SqliteAdapter, type SqliteSettings } from './sqlite-adapter.js';

export { PROVIDER_NAME, SqliteAdapter, type SqliteSettings } from './sqlite-adapter.js';
export { entityNameOf, introspectDatabase, KOAN_META_TABLE } from './sqlite-introspector.js';
export { ABSENT_COLUMN, COLUMN_TYPE, fieldTypeOfColumn, quoteIdent, type RowCodec, rowCodec } from './sqlite-types.js';

/** A SQLite adapter; `path` resolves against `context.cwd` (default `process.cwd()`). */
export function createSqliteAdapter(
  settings: SqliteSettings,
  context: { readonly cwd?: string; readonly source?: string } = {},
): SqliteAdapter {
  return new SqliteAdapter(settings, context);
}

export const provider: DataProvider<SqliteSettings> = {
  name: 'sqlite',
  settings: { path: 'text', walMode: 'boolean', busyTimeoutMs: 'number', foreignKeys: 'boolean' },
  create: (settings, context) => new SqliteAdapter(settings, context),
};

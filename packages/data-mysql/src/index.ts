/**
 * `@koan/data-mysql`: the MySQL/MariaDB data adapter (mysql2). Registered for the providers `mysql` and `mariadb`.
 *
 * @example
 * const adapter = createMysqlAdapter({ uri: 'mysql://root@127.0.0.1:3306/app', poolSize: 4 });
 * await adapter.init();
 */
import type { DataProvider } from '@koan/data/adapter-kit';
import { MysqlAdapter, type MysqlSettings } from './mysql-adapter.js';

export { MysqlAdapter, type MysqlSettings } from './mysql-adapter.js';
export { ENTITY_COMMENT_PREFIX } from './mysql-introspector.js';
export { columnType, MAX_STRING_KEY_LENGTH, MYSQL_TYPE_MAPPING } from './mysql-types.js';

/** Creates an adapter; call `init()` before use (the data runtime does). */
export function createMysqlAdapter(settings: MysqlSettings, context: { readonly source?: string } = {}): MysqlAdapter {
  return new MysqlAdapter(settings, context);
}

export const provider: DataProvider<MysqlSettings> = Object.freeze({
  name: 'mysql',
  settings: {
    uri: 'text',
    host: 'text',
    port: 'number',
    user: 'text',
    password: 'text',
    database: 'text',
    poolSize: 'number',
  } as const,
  create: (settings: MysqlSettings, context: { readonly source: string; readonly cwd: string }) =>
    new MysqlAdapter(settings, context),
});

/**
 * Fidelity of a MariaDB application database (sql/mariadb.sql: 24 tables) backed up and restored through the CLI
 * only, judged with native SQL only: into a fresh MariaDB database and into a schema made by `mysqldump --no-data`
 * (identical values and `SHOW CREATE TABLE`, a default-id insert works), and into PostgreSQL and SQLite (every value
 * exact or refused by name before anything is written). Writes a report (path printed at the end).
 */
import { readFileSync } from 'node:fs';
import { describe } from 'vitest';
import { describeBackup, describeDirection } from './lib/describe.js';
import { SourceFixture } from './lib/fixture.js';
import { probe } from './lib/scratch.js';
import { describeUnreadableTable } from './lib/unreadable.js';
import { MARIADB_NOT_DATA, MARIADB_TABLES } from './tables.js';

const mariadbDown = await probe('mysql');
const postgresDown = await probe('postgres');

const fixture = new SourceFixture({
  key: 'mariadb',
  provider: 'mysql',
  load: (db) => db.script(readFileSync(new URL('./sql/mariadb.sql', import.meta.url), 'utf8')).then(() => undefined),
  expectations: MARIADB_TABLES,
  notData: MARIADB_NOT_DATA,
});

describe.skipIf(Boolean(mariadbDown))('fidelity: a MariaDB application database, through the CLI', () => {
  describeBackup(fixture);
  describeUnreadableTable(fixture, 'enum_set_values');
  describeDirection(fixture, { to: 'mysql' });
  describeDirection(fixture, { to: 'mysql', existingSchema: true });
  describeDirection(fixture, { to: 'postgres' }, postgresDown);
  describeDirection(fixture, { to: 'sqlite' });
});

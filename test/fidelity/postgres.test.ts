/**
 * Fidelity of a PostgreSQL application database (sql/postgres.sql: 29 tables, one of 100,000 rows) backed up and
 * restored through the CLI only, judged with native SQL only: into a fresh PostgreSQL database and into a schema made by
 * `pg_dump --schema-only` (identical values and structure, a default-id insert works), and into MariaDB and SQLite
 * (every value exact or refused by name before anything is written). Writes a report (path printed at the end).
 */
import { readFileSync } from 'node:fs';
import { describe } from 'vitest';
import { describeBackup, describeDirection } from './lib/describe.js';
import { SourceFixture } from './lib/fixture.js';
import { probe } from './lib/scratch.js';
import { describeUnreadableTable } from './lib/unreadable.js';
import { POSTGRES_NOT_DATA, POSTGRES_TABLES } from './tables.js';

const postgresDown = await probe('postgres');
const mariadbDown = await probe('mysql');

const fixture = new SourceFixture({
  key: 'postgres',
  provider: 'postgres',
  load: (db) => db.script(readFileSync(new URL('./sql/postgres.sql', import.meta.url), 'utf8')).then(() => undefined),
  expectations: POSTGRES_TABLES,
  notData: POSTGRES_NOT_DATA,
});

describe.skipIf(Boolean(postgresDown))('fidelity: a PostgreSQL application database, through the CLI', () => {
  describeBackup(fixture);
  describeUnreadableTable(fixture, 'tags', ['events']);
  describeDirection(fixture, { to: 'postgres' });
  describeDirection(fixture, { to: 'postgres', existingSchema: true });
  describeDirection(fixture, { to: 'mysql' }, mariadbDown);
  describeDirection(fixture, { to: 'sqlite' });
});

/**
 * Chinook (real data written by others, in ../shared/datasets) in all 9 directions between SQLite, PostgreSQL and
 * MariaDB, through the CLI only, PlaylistTrack's composite key included: every table must come back with every value
 * identical (cross-provider: by the documented mapping; same provider: md5 of the row texts, and the same structure).
 * Without ../shared the suite is skipped with a message; with CI=true its absence fails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedDatasetsDir } from '@koan/data/testing';
import { describe } from 'vitest';
import { describeBackup, describeDirection } from './lib/describe.js';
import { SourceFixture } from './lib/fixture.js';
import { PROVIDER_LABEL, type Provider, probe, type Scratch } from './lib/scratch.js';
import type { TableExpectation } from './tables.js';

const datasets = sharedDatasetsDir();
const PROVIDERS: readonly Provider[] = ['sqlite', 'postgres', 'mysql'];
const down: Record<Provider, string | undefined> = {
  sqlite: undefined,
  postgres: await probe('postgres'),
  mysql: await probe('mysql'),
};

const SCRIPTS: Readonly<Record<Provider, string>> = {
  sqlite: 'Chinook_Sqlite.sql',
  postgres: 'Chinook_PostgreSql.sql',
  mysql: 'Chinook_MySql.sql',
};

const CAMEL = ['Album', 'Artist', 'Customer', 'Employee', 'Genre', 'Invoice', 'InvoiceLine', 'MediaType', 'Playlist'];
const TABLES: Readonly<Record<Provider, readonly string[]>> = {
  sqlite: [...CAMEL, 'PlaylistTrack', 'Track'],
  mysql: [...CAMEL, 'PlaylistTrack', 'Track'],
  postgres: [
    ...['album', 'artist', 'customer', 'employee', 'genre', 'invoice', 'invoice_line', 'media_type', 'playlist'],
    ...['playlist_track', 'track'],
  ],
};

/** The dialect's script without its own database switching (it loads into the scratch database). */
function load(provider: Provider) {
  return async (db: Scratch) => {
    const script = readFileSync(join(datasets!, 'chinook', SCRIPTS[provider]), 'utf8')
      .replace(/^\uFEFF/, '')
      .replace(/\r\n?/g, '\n')
      .split('\n')
      .filter((line) => !/^\s*(DROP DATABASE|CREATE DATABASE|USE\s|\\c\s)/i.test(line))
      .join('\n');
    await db.script(script);
  };
}

for (const from of PROVIDERS) {
  const exact: TableExpectation = { exact: PROVIDERS };
  const fixture = new SourceFixture({
    key: `chinook-${from}`,
    provider: from,
    load: load(from),
    expectations: Object.fromEntries(TABLES[from].map((t) => [t, exact])),
    notData: [],
  });
  const skip = !datasets ? '../shared/datasets is absent' : down[from];
  describe.skipIf(Boolean(skip))(`fidelity: Chinook from ${PROVIDER_LABEL[from]}, through the CLI`, () => {
    describeBackup(fixture);
    for (const to of PROVIDERS) describeDirection(fixture, { to }, down[to]);
  });
}

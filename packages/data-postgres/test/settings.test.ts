import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { withPassword } from '../src/postgres-adapter.js';

// node-postgres lets an absent password in a connection string override a separate `password`; these check what the
// pool is actually given, with node-postgres's own parser.
const parsed = (connectionString: string, password?: string) =>
  // biome-ignore lint/suspicious/noExplicitAny: ConnectionParameters is not in pg's public types
  new (pg as any).Client({ connectionString: withPassword(connectionString, password) }).connectionParameters;

describe('PostgreSQL settings', () => {
  it('a separate password fills a connection string that names none', () => {
    const c = parsed('postgres://app@db.example:5432/shop', 'p@ss:w/rd%');
    expect([c.user, c.password, c.host, c.port, c.database]).toEqual(['app', 'p@ss:w/rd%', 'db.example', 5432, 'shop']);
    expect(parsed('postgresql://db.example/shop', 'x').password).toBe('x');
  });

  it('a password in the connection string wins; key=value and socket strings are left alone', () => {
    expect(parsed('postgres://app:inurl@h/db', 'separate').password).toBe('inurl');
    expect(withPassword('host=/var/run/postgresql dbname=x', 'pw')).toBe('host=/var/run/postgresql dbname=x');
    expect(withPassword('postgres://app@h/db', undefined)).toBe('postgres://app@h/db');
  });
});

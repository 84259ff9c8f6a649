/**
 * An SQLite database nobody on this project wrote, backed up with no code at hand (`introspect: true`) and restored
 * into a new file and into a schema made by `sqlite3 .schema`: compared with the sqlite3 CLI, independently of the
 * adapter (`.schema`, every value with its storage class, sqlite_sequence, user_version), and used by an application
 * afterwards (an insert with a default id, a trigger firing).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, type KoanError, registeredEntities, unregisterEntity } from '@koan/data';
import { BackupContext, backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'koan-sqlite-exact-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const file = (name: string) => join(root, `${name}-${++n}.db`);

/** Introspection registers the source's tables process-wide: a restore must find them in the archive instead. */
function forgetIntrospected(): void {
  for (const e of registeredEntities()) if (e.schema.origin === 'introspected') unregisterEntity(e.schema.name);
}
afterEach(forgetIntrospected);

/** The sqlite3 command-line shell, independent of this project. */
function cli(path: string, ...args: string[]): string {
  return execFileSync('sqlite3', [path, ...args], { encoding: 'utf8' });
}

const SCHEMA = `
CREATE TABLE customers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name TEXT NOT NULL CHECK (length(name) > 0),
  created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  balance NUMERIC(12,2) NOT NULL DEFAULT 0,
  vip BOOLEAN NOT NULL DEFAULT 0,
  referrer INTEGER REFERENCES customers (id) ON DELETE SET NULL,
  profile JSON,
  name_upper TEXT GENERATED ALWAYS AS (upper(name)) VIRTUAL,
  domain TEXT GENERATED ALWAYS AS (substr(email, instr(email, '@') + 1)) STORED
);
CREATE INDEX customers_created ON customers (created DESC);
CREATE INDEX customers_vip ON customers (email) WHERE vip = 1;
CREATE INDEX customers_lower_name ON customers (lower(name));
CREATE TABLE products (sku TEXT PRIMARY KEY, title TEXT NOT NULL, price REAL NOT NULL, weight DECIMAL(8,3), photo BLOB) WITHOUT ROWID;
CREATE TABLE orders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_id INTEGER NOT NULL REFERENCES customers (id),
  placed_on DATE NOT NULL,
  total NUMERIC(10,2) NOT NULL,
  note TEXT
);
CREATE TABLE order_lines (
  order_id INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
  line INTEGER NOT NULL,
  sku TEXT NOT NULL REFERENCES products (sku),
  qty INTEGER NOT NULL CHECK (qty > 0),
  PRIMARY KEY (order_id, line)
);
CREATE TABLE event_log (at TEXT NOT NULL, kind TEXT, payload);
CREATE TABLE rates (day DATE PRIMARY KEY, rate DECIMAL(10,6));
CREATE TABLE big_ids (id BIGINT PRIMARY KEY, label TEXT) WITHOUT ROWID;
CREATE TABLE prices (amount NUMERIC PRIMARY KEY, label TEXT);
CREATE TABLE readings (at REAL PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE blobs (k BLOB PRIMARY KEY, v TEXT) WITHOUT ROWID;
CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT NOT NULL);
CREATE VIEW customer_totals AS
  SELECT c.id, c.name, sum(o.total) AS spent FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id;
CREATE TRIGGER orders_audit AFTER INSERT ON orders BEGIN INSERT INTO audit (what) VALUES ('order ' || NEW.id); END;
`;

const DATA = `
PRAGMA user_version = 7;
PRAGMA foreign_keys = ON;
INSERT INTO customers (id, email, name, created, balance, vip, referrer, profile) VALUES
  (1, 'ann@example.com', 'Ann', '2024-05-01 10:00:00', 12.5, 1, NULL, '{"big":12345678901234567890123,"a":1,"a":2}'),
  (2, 'bob@example.org', 'Bob', '2024-05-01T10:00:00.123Z', 100, 0, 1, 'null'),
  (3, 'cy@example.net', 'Cy', 1714557600, '0.10', 0, NULL, NULL),
  (7, 'dee@example.com', 'Dée ☃ 😀', '2024-02-29 23:59:59.999', 1e20, 1, 3, ' [1, 2.50 , {"x" : "a\\nb"}] ');
INSERT INTO customers (id, email, name) VALUES (11, 'gone@example.com', 'Gone');
DELETE FROM customers WHERE id = 11;
UPDATE customers SET referrer = 7 WHERE id = 1;
INSERT INTO products VALUES
  ('A-1', 'Thing', 0.30000000000000004, 1.234, x'00ff00'),
  ('B-2', 'Other', 1e300, NULL, NULL),
  ('C-3', 'Zero', 0, 0, x'');
INSERT INTO orders (customer_id, placed_on, total, note) VALUES
  (1, '2024-02-29', 19.99, 'line1
line2'),
  (2, '1999-12-31', 0, NULL),
  (7, '2024-03-01', 123456.78, 'tab	"quoted"');
INSERT INTO order_lines VALUES (1, 1, 'A-1', 2), (1, 2, 'B-2', 1), (2, 1, 'A-1', 5), (3, 1, 'C-3', 1);
INSERT INTO event_log VALUES ('2024-01-01', 'start', 'x'), ('2024-01-01', 'start', 'x'), ('2024-01-02', NULL, 'y');
INSERT INTO rates VALUES ('2024-01-01', 1.5), ('1999-12-31', 0.000001), ('2024-02-29', 12);
INSERT INTO big_ids VALUES (4611686018427387904, 'two^62'), (-9223372036854775808, 'min'), (9007199254740993, 'two^53+1');
INSERT INTO prices VALUES (1.5, 'one and a half'), (10, 'ten'), (2.25, 'two and a quarter');
INSERT INTO readings VALUES (0.1, 1), (-2.5e-300, 2), (1e300, 0.30000000000000004);
INSERT INTO blobs VALUES (x'00', 'zero'), (x'ff00', 'high'), (x'', 'empty');
`;

/** Each table's rows as text, every value with its storage class (REALs to 17 digits, BLOBs in hex), and an md5. */
function rowsDigest(path: string): Record<string, { rows: number; md5: string }> {
  const tables = cli(
    path,
    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_koan_%' ORDER BY name",
  )
    .split('\n')
    .filter(Boolean);
  const out: Record<string, { rows: number; md5: string }> = {};
  for (const t of tables) {
    const cols = cli(path, `SELECT name FROM pragma_table_xinfo('${t}')`).split('\n').filter(Boolean);
    const value = (c: string) =>
      `typeof("${c}") || ':' || CASE typeof("${c}") WHEN 'real' THEN printf('%!.17g', "${c}") WHEN 'blob' THEN hex("${c}") ELSE coalesce("${c}", '') END`;
    const text = cli(path, `SELECT ${cols.map(value).join(" || '|' || ")} AS r FROM "${t}" ORDER BY r`);
    out[t] = { rows: text.split('\n').filter(Boolean).length, md5: createHash('md5').update(text).digest('hex') };
  }
  return out;
}

async function contextFor(sources: Record<string, string>, backups: string): Promise<BackupContext> {
  const runtime = new DataRuntime({
    cwd: root,
    sources: Object.fromEntries(
      Object.entries(sources).map(([s, path]) => [s, { provider: 'sqlite', settings: { path } }]),
    ),
  });
  const storage = await StorageProfiles.load(
    { defaultProfile: 'local', profiles: { local: { provider: 'local', settings: { root: backups } } } },
    { cwd: root },
  );
  return new BackupContext({ runtime, storage });
}

function sourceDb(): string {
  const path = file('source');
  cli(path, SCHEMA + DATA);
  return path;
}

describe('SQLite to SQLite: an existing database restores exactly', () => {
  it('into a new file: identical .schema, rows, sqlite_sequence and user_version; new rows get the next ids', async () => {
    const source = sourceDb();
    const backups = join(root, `backups-${++n}`);
    const src = await contextFor({ src: source }, backups);
    const backup = await backupAllEntities(src, 'shop', { introspect: true });
    await src.close();
    forgetIntrospected();
    expect(backup.entities.map((e) => [e.entityType, e.status, e.itemCount]).sort()).toEqual([
      ['audit', 'Completed', 3],
      ['big_ids', 'Completed', 3],
      ['blobs', 'Completed', 3],
      ['customers', 'Completed', 4],
      ['event_log', 'Completed', 3],
      ['order_lines', 'Completed', 4],
      ['orders', 'Completed', 3],
      ['prices', 'Completed', 3],
      ['products', 'Completed', 3],
      ['rates', 'Completed', 3],
      ['readings', 'Completed', 3],
    ]);
    expect(Object.fromEntries(backup.entities.map((e) => [e.entityType, e.keyType]))).toEqual({
      audit: 'integer',
      big_ids: 'bigint',
      blobs: 'binary',
      customers: 'integer',
      event_log: 'none',
      order_lines: 'integer',
      orders: 'integer',
      prices: 'decimal',
      products: 'string',
      rates: 'date',
      readings: 'number',
    });

    const target = file('target');
    const tgt = await contextFor({ tgt: target }, backups);
    const report = await restoreAllEntities(tgt, 'shop', { targetSource: 'tgt' });
    await tgt.close();
    expect(report.status).toBe('Completed');
    expect(report.createdTables.flatMap((c) => c.tables).sort()).toEqual(
      [
        'audit',
        'big_ids',
        'blobs',
        'customers',
        'event_log',
        'order_lines',
        'orders',
        'prices',
        'products',
        'rates',
        'readings',
      ].sort(),
    );

    // .schema: identical, line for line (views, triggers, indexes, CHECK, generated columns, sqlite_sequence).
    expect(cli(target, '.schema')).toBe(cli(source, '.schema'));
    expect(rowsDigest(target)).toEqual(rowsDigest(source));
    expect(cli(target, 'SELECT name, seq FROM sqlite_sequence ORDER BY name')).toBe(
      cli(source, 'SELECT name, seq FROM sqlite_sequence ORDER BY name'),
    );
    expect(cli(target, 'PRAGMA user_version')).toBe('7\n');
    expect(cli(target, 'PRAGMA integrity_check; PRAGMA foreign_key_check')).toBe('ok\n');
    // The restore did not fire the trigger: audit holds exactly the archived rows (checked above). The application
    // goes on: default ids follow the source's counters (customers had reached 11), triggers fire.
    const insert =
      "PRAGMA foreign_keys = ON; INSERT INTO customers (email, name) VALUES ('new@example.com', 'New'); " +
      "INSERT INTO orders (customer_id, placed_on, total) VALUES (last_insert_rowid(), '2025-01-01', 1); " +
      'SELECT max(id) FROM customers; SELECT max(id) FROM orders; SELECT what FROM audit ORDER BY id DESC LIMIT 1;';
    expect(cli(target, insert)).toBe(cli(source, insert));
    expect(cli(target, 'SELECT max(id) FROM customers')).toBe('12\n');
  });

  it('into tables made by `sqlite3 .schema`: rows identical, generated columns computed, triggers not fired, counters past the restored ids', async () => {
    const source = sourceDb();
    const backups = join(root, `backups-${++n}`);
    const src = await contextFor({ src: source }, backups);
    await backupAllEntities(src, 'shop', { introspect: true });
    await src.close();
    forgetIntrospected();

    const target = file('made');
    cli(target, cli(source, '.schema').replace(/CREATE TABLE sqlite_sequence\(name,seq\);\n/, ''));
    // (.schema spells views with a column comment, which becomes part of the target's view: compared with itself.)
    const made = cli(target, '.schema');
    const tgt = await contextFor({ tgt: target }, backups);
    const report = await restoreAllEntities(tgt, 'shop', { targetSource: 'tgt' });
    await tgt.close();
    expect(report.status).toBe('Completed');
    expect(report.createdTables).toEqual([]);
    expect(rowsDigest(target)).toEqual(rowsDigest(source));
    // The existing schema is left as it was (its trigger was suspended for the restore and created again).
    expect(cli(target, '.schema')).toBe(made);
    // AUTOINCREMENT counters are past the restored ids (the source's own counter, 11, is not data of any row).
    expect(cli(target, 'SELECT name, seq FROM sqlite_sequence ORDER BY name')).toBe('customers|7\norders|3\n');
    expect(
      cli(
        target,
        "INSERT INTO orders (customer_id, placed_on, total) VALUES (1, '2025-01-01', 1); SELECT max(id) FROM orders; SELECT count(*) FROM audit",
      ),
    ).toBe('4\n4\n');
  });

  it('without the structure (structure: false), tables are made from the field types: generated values are written as ordinary columns', async () => {
    const source = sourceDb();
    const backups = join(root, `backups-${++n}`);
    const src = await contextFor({ src: source }, backups);
    await backupAllEntities(src, 'shop', { introspect: true });
    await src.close();
    forgetIntrospected();
    const target = file('plain');
    const tgt = await contextFor({ tgt: target }, backups);
    const report = await restoreAllEntities(tgt, 'shop', { targetSource: 'tgt', structure: false });
    await tgt.close();
    expect(report.status).toBe('Completed');
    expect(cli(target, 'SELECT id, name_upper, domain FROM customers ORDER BY id')).toBe(
      '1|ANN|example.com\n2|BOB|example.org\n3|CY|example.net\n7|DéE ☃ 😀|example.com\n',
    );
    expect(cli(target, 'SELECT count(*), group_concat(typeof(payload)) FROM event_log')).toBe('3|text,text,text\n');
    expect(cli(target, '.schema customers')).not.toMatch(/GENERATED/);
  });

  it('a value its column type cannot carry fails the backup naming table, column, key and value; nothing is changed silently', async () => {
    for (const [sql, pattern] of [
      [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO t VALUES (1, 2), (5, 'abc');",
        /Table t, column n, row with key 5: holds TEXT "abc", which the integer field t\.n cannot carry exactly/,
      ],
      [
        'CREATE TABLE t (id INTEGER PRIMARY KEY, flag BOOLEAN); INSERT INTO t VALUES (1, 1), (2, 5);',
        /Table t, column flag, row with key 2: holds INTEGER 5, which the boolean field t\.flag cannot carry exactly \(it takes the INTEGER 0 or 1\)/,
      ],
      [
        "CREATE TABLE t (id TEXT PRIMARY KEY, at DATE); INSERT INTO t VALUES ('k', '2024-1-1');",
        /Table t, column at, row with key "k": holds TEXT "2024-1-1", which the date field/,
      ],
      [
        // An untyped column holds any value (a dynamic field: see dynamic-values.test.ts), an untyped key TEXT only.
        "CREATE TABLE t (k PRIMARY KEY, b); INSERT INTO t VALUES ('x', 1), (2, 'y');",
        /Table t, column k, row with key 2: holds INTEGER 2, which the string field t\.k cannot carry exactly/,
      ],
      [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, doc JSON); INSERT INTO t VALUES (3, '{not json');",
        /Table t, column doc, row with key 3: holds TEXT "\{not json", which the json field/,
      ],
      [
        'CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO t VALUES (9, 9007199254740993);',
        /holds INTEGER 9007199254740993, which the integer field t\.n cannot carry exactly \(it takes an INTEGER within ±\(2\^53-1\)/,
      ],
    ] as const) {
      const path = file('misfit');
      cli(path, sql);
      const before = createHash('md5').update(cli(path, '.dump')).digest('hex');
      const ctx = await contextFor({ src: path }, join(root, `backups-${++n}`));
      const error = await backupAllEntities(ctx, 'misfit', { introspect: true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const result = error === undefined ? undefined : (error as Error);
      await ctx.close();
      expect(result, sql).toBeDefined();
      const text = `${result!.message} ${JSON.stringify((result as KoanError).details ?? {})}`;
      expect(text, sql).toMatch(pattern);
      expect(createHash('md5').update(cli(path, '.dump')).digest('hex'), 'the source is unchanged').toBe(before);
      forgetIntrospected();
    }
  });

  it('writes SQLite would change are refused by name, before anything is written', async () => {
    const path = file('refuse');
    const db = new Database(path);
    db.exec(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, label ZIPCODE, amount NUMERIC, big BIGINT, doc JSON); INSERT INTO t VALUES (1, 'x', 1, 1, '{}')",
    );
    db.close();
    const { createSqliteAdapter } = await import('@koan/data-sqlite');
    const a = createSqliteAdapter({ path });
    await a.init();
    const [t] = (await a.introspect()).entities;
    const ok = { id: 2, label: 'fine', amount: '2.5', big: 5n, doc: null };
    for (const [bad, message] of [
      [
        { ...ok, id: 3, label: '007' },
        /t\.label of record 3: the NUMERIC column would store the text "007" as the number 7/,
      ],
      [
        { ...ok, id: 4, amount: '123456789012345678901234567890.5' },
        /t\.amount of record 4: the NUMERIC column stores decimals as 64-bit integers or doubles: 123456789012345678901234567890\.5 would become 1\.2345678901234568e\+29/,
      ],
    ] as const) {
      const e = await a.importBatch(t!, 'root', [ok, bad], { mode: 'insert' }).then(
        () => undefined,
        (err: unknown) => err as KoanError,
      );
      expect(e?.code).toBe('UNSUPPORTED_VALUE');
      expect(e?.message).toMatch(message);
      expect(await a.count(t!, 'root')).toBe(1);
    }
    await a.close();
  });
});

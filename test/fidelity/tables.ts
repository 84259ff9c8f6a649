/**
 * What the suite expects of each table of its two schemas (sql/postgres.sql, sql/mariadb.sql): the insert that must
 * work after a restore (tables with serial, identity or AUTO_INCREMENT ids), the targets that must refuse a table (it
 * holds values the target cannot store: the contract names them), and the targets where every value must come back
 * exact (values every store can hold). Anything else may be exact or refused, never altered.
 */
import type { Provider } from './lib/scratch.js';

export interface Refusal {
  /** The fields a refusal may name (any one of them). */
  readonly fields: readonly string[];
  /** The keys of the rows it may name (any one of them), as the source spells them. */
  readonly keys: readonly string[];
}

export interface TableExpectation {
  /** An INSERT that leaves the id to its default; it must succeed after a restore (run in a rolled-back transaction). */
  readonly probe?: string;
  /** Targets that must refuse the table before writing anything, and what the refusal names. */
  readonly refuse?: Partial<Record<Provider, Refusal>>;
  /** Targets where every value must come back exact: a refusal is a failure there. */
  readonly exact: readonly Provider[];
}

const everywhere: readonly Provider[] = ['postgres', 'mysql', 'sqlite'];

export const POSTGRES_TABLES: Readonly<Record<string, TableExpectation>> = {
  customers: { exact: everywhere, probe: `INSERT INTO customers (email, name) VALUES ('probe@example.com', 'probe')` },
  products: { exact: everywhere, probe: `INSERT INTO products (sku, title, price) VALUES ('PROBE-1', 'probe', 1)` },
  orders: { exact: everywhere, probe: `INSERT INTO orders (customer_id, placed_at) VALUES (1, now())` },
  order_lines: { exact: everywhere },
  events: { exact: everywhere, probe: `INSERT INTO events (occurred_at, kind) VALUES (now(), 'probe')` },
  json_docs: { exact: everywhere },
  // `[0:2]={7,8,9}` has no JSON spelling: exact or refused elsewhere.
  array_values: { exact: ['postgres'] },
  temporal_values: { exact: everywhere },
  temporal_special: {
    exact: ['postgres', 'sqlite'],
    refuse: { mysql: { fields: ['tstz', 'ts', 'd'], keys: ['1', '2', '3', '4', '5'] } },
  },
  numeric_values: { exact: everywhere },
  numeric_special: {
    exact: ['postgres', 'sqlite'],
    refuse: { mysql: { fields: ['n', 'f4', 'f8'], keys: ['1', '2', '3'] } },
  },
  network_values: { exact: everywhere, probe: `INSERT INTO network_values (addr) VALUES ('127.0.0.1')` },
  binary_values: { exact: everywhere },
  accounts: { exact: everywhere },
  daily_rates: { exact: everywhere },
  tags: { exact: everywhere },
  sessions: { exact: everywhere, probe: `INSERT INTO sessions (customer_id, expires_at) VALUES (1, now())` },
  big_ids: { exact: everywhere },
  audit_log: { exact: everywhere },
  measurements: { exact: everywhere },
  'inventory.warehouses': { exact: everywhere, probe: `INSERT INTO inventory.warehouses (name) VALUES ('probe')` },
  'inventory.stock': { exact: everywhere },
  departments: { exact: everywhere, probe: `INSERT INTO departments (name) VALUES ('probe')` },
  employees: { exact: everywhere, probe: `INSERT INTO employees (name) VALUES ('probe')` },
  order: { exact: everywhere },
  'Line Items': { exact: everywhere, probe: `INSERT INTO "Line Items" ("Item Name") VALUES ('probe')` },
  settings: { exact: everywhere },
  people: { exact: everywhere, probe: `INSERT INTO people (first_name, last_name) VALUES ('pro', 'be')` },
  coupon_codes: { exact: everywhere },
};

/** Objects of the PostgreSQL schema that are not data: a backup must name each in `omitted`. */
export const POSTGRES_NOT_DATA = [
  { name: 'customer_totals', kind: 'view' },
  { name: 'daily_sales', kind: 'materialized view' },
  { name: 'touch_updated_at', kind: 'function' },
  { name: 'products_touch', kind: 'trigger' },
] as const;

export const MARIADB_TABLES: Readonly<Record<string, TableExpectation>> = {
  users: { exact: everywhere, probe: `INSERT INTO users (email, display_name) VALUES ('probe@example.com', 'probe')` },
  // tinyint(1) holding 5 and -1: a boolean elsewhere would alter them; exact (a small integer) or refused.
  flags: { exact: ['mysql'] },
  // bigint unsigned up to 2^64-1: more than a 64-bit signed integer holds.
  unsigned_values: { exact: ['mysql'], probe: `INSERT INTO unsigned_values (u8) VALUES (1)` },
  big_keys: { exact: everywhere },
  unsigned_keys: { exact: ['mysql'] },
  bit_values: { exact: ['mysql'], probe: `INSERT INTO bit_values (b1) VALUES (b'1')` },
  float_values: { exact: everywhere },
  decimal_values: { exact: everywhere },
  zero_dates: {
    exact: ['mysql'],
    refuse: { postgres: { fields: ['d', 'dt'], keys: ['1', '2', '3'] } },
  },
  datetime_values: { exact: everywhere },
  json_docs: { exact: everywhere },
  enum_set_values: { exact: everywhere },
  line_totals: { exact: everywhere, probe: `INSERT INTO line_totals (price, qty) VALUES (1, 1)` },
  texts: { exact: everywhere },
  access_log: { exact: everywhere },
  orders: { exact: everywhere, probe: `INSERT INTO orders (user_id, placed_at) VALUES (1, NOW())` },
  order_items: { exact: everywhere },
  price_points: { exact: everywhere },
  calendar_days: { exact: everywhere },
  categories: { exact: everywhere, probe: `INSERT INTO categories (name) VALUES ('probe')` },
  authors: { exact: everywhere, probe: `INSERT INTO authors (name) VALUES ('probe')` },
  books: { exact: everywhere, probe: `INSERT INTO books (author_id, title) VALUES (1, 'probe')` },
  order: { exact: everywhere },
  'line items': { exact: everywhere, probe: 'INSERT INTO `line items` (`unit price`) VALUES (1)' },
};

export const MARIADB_NOT_DATA = [
  { name: 'active_users', kind: 'view' },
  { name: 'users_before_update', kind: 'trigger' },
] as const;

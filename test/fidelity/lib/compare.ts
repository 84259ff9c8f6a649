/**
 * Value comparisons with native SQL only. Same provider: `count(*)` and an md5 of the sorted row texts computed by the
 * server (PostgreSQL `t::text`; MariaDB a QUOTE()d CONCAT_WS of every column), and on a mismatch the row texts that
 * differ. Across providers: every value read as text on both sides and brought to one canonical text (see canon.ts),
 * rows compared as multisets and differences paired by primary key.
 */
import { createHash } from 'node:crypto';
import { canon, type Raw, rawOfSqlite } from './canon.js';
import { type Column, findColumn, type Table } from './catalog.js';
import type { Scratch } from './scratch.js';

/** How many differences a message lists (the total is always given). */
const SHOWN = 6;

export async function countRows(db: Scratch, table: Table): Promise<number> {
  return Number((await db.query(`SELECT count(*) FROM ${table.sql}`))[0]![0]);
}

function rowTextSql(db: Scratch, table: Table): string {
  if (db.provider === 'postgres') return `t::text`;
  if (db.provider === 'mysql') return `CONCAT_WS(',', ${table.columns.map((c) => `QUOTE(${c.read})`).join(', ')})`;
  return table.columns.map((c) => `quote(${c.read})`).join(` || ',' || `);
}

/** `count(*)` and the md5 of the table's row texts in byte order, computed by the server (SQLite: here). */
export async function rowHash(db: Scratch, table: Table): Promise<{ count: number; md5: string }> {
  const text = rowTextSql(db, table);
  if (db.provider === 'sqlite') {
    const rows = (await db.query(`SELECT ${text} FROM ${table.sql} t`)).map((r) => Buffer.from(String(r[0])));
    rows.sort(Buffer.compare);
    return {
      count: rows.length,
      md5: createHash('md5')
        .update(Buffer.concat(rows.flatMap((r) => [r, Buffer.from('\n')])))
        .digest('hex'),
    };
  }
  const sql =
    db.provider === 'postgres'
      ? `SELECT count(*), coalesce(md5(string_agg(${text}, E'\\n' ORDER BY ${text} COLLATE "C")), '') FROM ${table.sql} t`
      : db.provider === 'mysql'
        ? `SELECT count(*), coalesce(MD5(GROUP_CONCAT(r ORDER BY CAST(r AS BINARY) SEPARATOR '\\n')), '') FROM (SELECT ${text} AS r FROM ${table.sql} t) x`
        : '';
  const [count, md5] = (await db.query(sql))[0]!;
  return { count: Number(count), md5: String(md5) };
}

/** The row texts in one table and not the other (as multisets), for a failure message. */
export async function rowTextDiff(source: Scratch, st: Table, target: Scratch, tt: Table): Promise<string[]> {
  const texts = async (db: Scratch, t: Table) =>
    (await db.query(`SELECT ${rowTextSql(db, t)} FROM ${t.sql} t`)).map((r) => String(r[0]));
  return multisetDiff(await texts(source, st), await texts(target, tt)).slice(0, 2 * SHOWN);
}

function multisetDiff(a: readonly string[], b: readonly string[]): string[] {
  const left = new Map<string, number>();
  for (const x of a) left.set(x, (left.get(x) ?? 0) + 1);
  const onlyB: string[] = [];
  for (const x of b) {
    const n = left.get(x) ?? 0;
    if (n > 0) left.set(x, n - 1);
    else onlyB.push(x);
  }
  const onlyA = [...left].flatMap(([x, n]) => Array<string>(n).fill(x));
  return [
    ...onlyA.slice(0, SHOWN).map((x) => `only in source:   ${x}`),
    ...onlyB.slice(0, SHOWN).map((x) => `only in restored: ${x}`),
    ...(onlyA.length + onlyB.length > 2 * SHOWN
      ? [`(${onlyA.length} source rows, ${onlyB.length} restored rows differ)`]
      : []),
  ];
}

function rawOf(db: Scratch, column: Column, cell: unknown): Raw | null {
  if (db.provider === 'sqlite') return rawOfSqlite(cell);
  if (cell === null || cell === undefined) return null;
  return { form: column.kind === 'binary' ? 'hex' : 'text', value: String(cell) };
}

async function canonicalRows(db: Scratch, table: Table, columns: readonly Column[], kinds: readonly Column[]) {
  const rows = await db.query(`SELECT ${columns.map((c) => c.read).join(', ')} FROM ${table.sql}`);
  return rows.map((r) => columns.map((c, i) => canon(kinds[i]!.kind, rawOf(db, c, r[i]))));
}

export interface ValueComparison {
  readonly sourceRows: number;
  readonly restoredRows: number;
  /** Readable differences (columns, then rows paired by key), the first few, with totals. */
  readonly differences: string[];
}

const show = (v: string | null) => (v === null ? 'NULL' : JSON.stringify(v.length > 120 ? `${v.slice(0, 117)}...` : v));

/** Pairs rows that differ by primary key (all columns for a keyless table) and names each differing field. */
function rowDifferences(st: Table, names: readonly string[], a: (string | null)[][], b: (string | null)[][]): string[] {
  const encode = (r: (string | null)[]) => JSON.stringify(r);
  const remaining = new Map<string, number>();
  for (const r of b) remaining.set(encode(r), (remaining.get(encode(r)) ?? 0) + 1);
  const onlyA: (string | null)[][] = [];
  for (const r of a) {
    const n = remaining.get(encode(r)) ?? 0;
    if (n > 0) remaining.set(encode(r), n - 1);
    else onlyA.push(r);
  }
  const onlyB = b.filter((r) => {
    const n = remaining.get(encode(r)) ?? 0;
    if (n > 0) remaining.set(encode(r), n - 1);
    return n > 0;
  });
  if (!onlyA.length && !onlyB.length) return [];
  const keyIdx = st.primaryKey.length ? st.primaryKey.map((k) => names.indexOf(k)) : [];
  const keyOf = (r: (string | null)[]) => keyIdx.map((i) => `${names[i]}=${r[i]}`).join(', ');
  const byKey = new Map(keyIdx.length ? onlyB.map((r) => [keyOf(r), r] as const) : []);
  const out: string[] = [];
  let unpairedA = 0;
  for (const r of onlyA) {
    const other = keyIdx.length ? byKey.get(keyOf(r)) : undefined;
    if (!other) {
      unpairedA++;
      if (out.length < SHOWN) out.push(`row only in source: ${keyIdx.length ? `(${keyOf(r)})` : show(encode(r))}`);
      continue;
    }
    byKey.delete(keyOf(r));
    for (let i = 0; i < names.length && out.length < SHOWN; i++)
      if (r[i] !== other[i]) out.push(`(${keyOf(r)}) .${names[i]}: source ${show(r[i]!)}, restored ${show(other[i]!)}`);
  }
  const unpairedB = keyIdx.length ? byKey.size : onlyB.length;
  for (const r of keyIdx.length ? byKey.values() : onlyB)
    if (out.length < SHOWN) out.push(`row only in restored: ${keyIdx.length ? `(${keyOf(r)})` : show(encode(r))}`);
  out.push(
    `${onlyA.length} of ${a.length} source rows have no identical restored row (${unpairedA} with no restored row of the same key, ${unpairedB} restored rows with no source row of the same key)`,
  );
  return out;
}

/** Canonical source rows by table and columns, so several targets compare against one read of the source. */
export type SourceRowsCache = Map<string, Promise<(string | null)[][]>>;

/**
 * Compares every value of a source table with the table it was restored into (possibly another provider).
 * `cache` keeps the source's canonical rows for the next target.
 */
export async function compareValues(
  source: Scratch,
  st: Table,
  target: Scratch,
  tt: Table,
  cache: SourceRowsCache = new Map(),
): Promise<ValueComparison> {
  const differences: string[] = [];
  const pairs: { s: Column; t: Column }[] = [];
  for (const s of st.columns) {
    const t = findColumn(tt, s.name);
    if (t) pairs.push({ s, t });
    else differences.push(`column ${s.name} (${s.nativeType}) is not in the restored table`);
  }
  const extra = tt.columns.filter((t) => !pairs.some((p) => p.t === t));
  for (const t of extra)
    differences.push(`the restored table has a column ${t.name} (${t.nativeType}) the source has not`);
  const kinds = pairs.map((p) => p.s);
  const cacheKey = `${st.id}\u0000${kinds.map((c) => c.name).join('\u0000')}`;
  if (!cache.has(cacheKey)) cache.set(cacheKey, canonicalRows(source, st, kinds, kinds));
  const a = await cache.get(cacheKey)!;
  const b = await canonicalRows(
    target,
    tt,
    pairs.map((p) => p.t),
    kinds,
  );
  if (a.length !== b.length) differences.push(`${a.length} rows in the source, ${b.length} restored`);
  differences.push(
    ...rowDifferences(
      st,
      pairs.map((p) => p.s.name),
      a,
      b,
    ),
  );
  return { sourceRows: a.length, restoredRows: b.length, differences };
}

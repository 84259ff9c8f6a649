/**
 * The native structure of the tables of a backup, read from PostgreSQL's catalog with the server's own deparsers
 * (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_partkeydef`, `pg_get_viewdef`),
 * as ordered DDL: schemas, extensions, enums and domains, sequences, tables with their partitions, then post-data
 * objects (constraints, indexes, foreign keys, comments, views, sequence values). Names in the source's default schema
 * are left unqualified (the capture runs with that schema alone on the search path), so the DDL replays into the
 * target's default schema; every other name is qualified.
 */
import type { NativeStructure, StructureObject } from '@koan/data/adapter-kit';
import type pg from 'pg';
import { KOAN_COMMENT, SYSTEM_SCHEMAS } from './postgres-introspector.js';
import { captureNotCaptured, captureViews } from './structure-extras.js';
import { lit, type Qualify, q } from './type-mapping.js';

/** A target table of a capture: its schema, name and the key its objects carry (`table` or `schema.table`). */
export interface CaptureTable {
  readonly schema: string;
  readonly table: string;
  readonly key: string;
}

interface TableRow {
  oid: number;
  s: string;
  t: string;
  relkind: string;
  persistence: string;
  options: string[] | null;
  partkey: string | null;
  bound: string | null;
  parent: number | null;
  root: number;
  inherits: boolean;
}

/** Captures the structure of `tables` (and what they need) on `client`, inside a read-only transaction. */
export async function captureStructure(
  client: pg.ClientBase,
  defaultSchema: string,
  tables: readonly CaptureTable[],
): Promise<NativeStructure> {
  const qn: Qualify = (schema, name) => (schema === defaultSchema ? q(name) : `${q(schema)}.${q(name)}`);
  const version = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  const objects: StructureObject[] = [];
  const notCaptured: NativeStructure['notCaptured'][number][] = [];
  const roots = new Map<number, CaptureTable>();
  for (const t of tables) {
    const res = await client.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [
      `${q(t.schema)}.${q(t.table)}`,
    ]);
    const oid = res.rows[0]?.oid;
    if (oid) roots.set(Number(oid), t);
  }
  const rows = await tableRows(client, [...roots.keys()]);
  const oids = rows.map((r) => r.oid);
  const keyOf = (oid: number) => roots.get(rows.find((r) => r.oid === oid)!.root)!.key;
  const sequences = await sequenceRows(client, oids);
  objects.push(...(await schemaObjects(client, rows, defaultSchema)));
  objects.push(...(await extensionObjects(client, oids, defaultSchema)));
  objects.push(...(await typeObjects(client, oids, qn, notCaptured)));
  for (const s of sequences.filter((x) => !x.identity))
    objects.push({
      kind: 'sequence',
      name: `${s.s}.${s.name}`,
      ...(s.owner !== null ? { table: keyOf(s.owner) } : {}),
      phase: 'pre-data',
      sql: [
        ifMissing(
          'regclass',
          qn(s.s, s.name),
          `CREATE SEQUENCE ${qn(s.s, s.name)} AS ${s.type} ${seqOptions(s)}`,
          commentOn(`SEQUENCE ${qn(s.s, s.name)}`, s.comment),
        ),
      ],
    });
  const columns = await columnRows(client, oids);
  const constraints = await constraintRows(client, oids, defaultSchema);
  for (const r of rows) {
    const name = qn(r.s, r.t);
    const owned = sequences.filter((s) => !s.identity && s.owner === r.oid);
    const sql = [createTable(r, name, rows, qn, columns, constraints, sequences)];
    for (const s of owned) sql.push(`ALTER SEQUENCE ${qn(s.s, s.name)} OWNED BY ${name}.${q(s.column!)}`);
    objects.push({
      kind: r.bound !== null ? 'partition' : 'table',
      name: `${r.s}.${r.t}`,
      table: keyOf(r.oid),
      phase: 'pre-data',
      sql,
    });
    if (r.inherits)
      notCaptured.push({
        kind: 'inheritance',
        name: `${r.s}.${r.t}`,
        reason: 'the table inherits from another (INHERITS): it is recreated as a table of its own',
      });
  }
  objects.push(...postDataConstraints(rows, qn, constraints, keyOf));
  objects.push(...(await indexObjects(client, oids, keyOf)));
  objects.push(...(await commentObjects(client, oids, qn, keyOf)));
  const views = await captureViews(client, oids, qn, keyOf, notCaptured);
  objects.push(...views.objects);
  for (const s of sequences) objects.push(sequenceValue(s, qn, s.owner !== null ? keyOf(s.owner) : undefined));
  notCaptured.push(...(await captureNotCaptured(client, oids, [...views.oids])));
  return { provider: 'postgres', serverVersion: `PostgreSQL ${version}`, objects, notCaptured };
}

/** `sql` run only when `name` (a regclass or regtype text) does not resolve yet. */
export function ifMissing(kind: 'regclass' | 'regtype', name: string, ...sql: (string | undefined)[]): string {
  const run = sql
    .filter((x) => x !== undefined)
    .map((x) => `EXECUTE ${lit(x)}; `)
    .join('');
  return `DO $koan$BEGIN IF to_${kind}(${lit(name)}) IS NULL THEN ${run}END IF; END$koan$`;
}

/** `COMMENT ON <what> IS <text>`, or undefined without a comment. */
function commentOn(what: string, text: string | null): string | undefined {
  return text === null ? undefined : `COMMENT ON ${what} IS ${lit(text)}`;
}

async function tableRows(client: pg.ClientBase, roots: readonly number[]): Promise<TableRow[]> {
  const res = await client.query<TableRow>(
    `SELECT c.oid::int AS oid, n.nspname AS s, c.relname AS t, c.relkind, c.relpersistence AS persistence,
            c.reloptions AS options,
            CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
            CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS bound,
            (SELECT i.inhparent::int FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition) AS parent,
            tree.root::int AS root,
            EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid AND NOT c.relispartition) AS inherits
     FROM (SELECT r AS root, coalesce(p.relid, r) AS relid, coalesce(p.level, 0) AS level
           FROM unnest($1::oid[]) r LEFT JOIN LATERAL pg_partition_tree(r) p ON true) tree
     JOIN pg_class c ON c.oid = tree.relid JOIN pg_namespace n ON n.oid = c.relnamespace
     ORDER BY tree.root, tree.level, c.oid`,
    [roots],
  );
  return res.rows.map((r) => ({
    ...r,
    oid: Number(r.oid),
    root: Number(r.root),
    parent: r.parent === null ? null : Number(r.parent),
  }));
}

async function schemaObjects(
  client: pg.ClientBase,
  rows: readonly TableRow[],
  defaultSchema: string,
): Promise<StructureObject[]> {
  const schemas = [...new Set(rows.map((r) => r.s))].filter((s) => s !== defaultSchema && s !== 'public');
  if (schemas.length === 0) return [];
  const res = await client.query<{ s: string; comment: string | null }>(
    `SELECT nspname AS s, obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace WHERE nspname = ANY($1) ORDER BY nspname`,
    [schemas],
  );
  return res.rows.map((r) => ({
    kind: 'schema',
    name: r.s,
    phase: 'pre-data' as const,
    sql: [
      `CREATE SCHEMA IF NOT EXISTS ${q(r.s)}`,
      ...(r.comment !== null ? [`COMMENT ON SCHEMA ${q(r.s)} IS ${lit(r.comment)}`] : []),
    ],
  }));
}

/** Extensions whose types, functions or operator classes the tables use (columns, defaults, checks, indexes). */
async function extensionObjects(
  client: pg.ClientBase,
  oids: readonly number[],
  defaultSchema: string,
): Promise<StructureObject[]> {
  const res = await client.query<{ name: string; s: string }>(
    `WITH objs AS (
       SELECT 'pg_class'::regclass AS classid, o AS objid FROM unnest($1::oid[]) o
       UNION ALL SELECT 'pg_attrdef'::regclass, d.oid FROM pg_attrdef d WHERE d.adrelid = ANY($1)
       UNION ALL SELECT 'pg_constraint'::regclass, k.oid FROM pg_constraint k WHERE k.conrelid = ANY($1)
       UNION ALL SELECT 'pg_class'::regclass, i.indexrelid FROM pg_index i WHERE i.indrelid = ANY($1)
       UNION ALL SELECT 'pg_type'::regclass, a.atttypid FROM pg_attribute a WHERE a.attrelid = ANY($1) AND a.attnum > 0)
     SELECT DISTINCT e.extname AS name, en.nspname AS s
     FROM objs o JOIN pg_depend d ON d.classid = o.classid AND d.objid = o.objid
     JOIN pg_depend x ON x.classid = d.refclassid AND x.objid = d.refobjid AND x.deptype = 'e'
     JOIN pg_extension e ON e.oid = x.refobjid JOIN pg_namespace en ON en.oid = e.extnamespace
     ORDER BY 1`,
    [oids],
  );
  return res.rows.map((r) => ({
    kind: 'extension',
    name: r.name,
    phase: 'pre-data' as const,
    // In the default schema: the first of the search path when replayed (the target's default schema).
    sql: [`CREATE EXTENSION IF NOT EXISTS ${q(r.name)}${r.s === defaultSchema ? '' : ` WITH SCHEMA ${q(r.s)}`}`],
  }));
}

/**
 * Enums and domains the columns use (through arrays and domains too), bases before the types built on them. Other
 * user-defined types (composite, range) are named in `notCaptured`: a table using one needs it to exist already.
 */
async function typeObjects(
  client: pg.ClientBase,
  oids: readonly number[],
  qn: Qualify,
  notCaptured: NativeStructure['notCaptured'][number][],
): Promise<StructureObject[]> {
  const res = await client.query<{
    oid: number;
    s: string;
    name: string;
    kind: string;
    labels: string[] | null;
    base: string | null;
    notnull: boolean;
    def: string | null;
    collation: string | null;
    checks: string[] | null;
    comment: string | null;
    depth: number;
  }>(
    `WITH RECURSIVE used(oid, depth) AS (
       SELECT DISTINCT a.atttypid, 0 FROM pg_attribute a WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
       UNION SELECT CASE WHEN t.typelem <> 0 AND t.typcategory = 'A' THEN t.typelem ELSE t.typbasetype END, u.depth + 1
       FROM used u JOIN pg_type t ON t.oid = u.oid
       WHERE (t.typelem <> 0 AND t.typcategory = 'A') OR t.typbasetype <> 0)
     SELECT t.oid::int AS oid, n.nspname AS s, t.typname AS name, t.typtype AS kind,
            CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END AS labels,
            CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
            t.typnotnull AS notnull, t.typdefault AS def,
            CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN
              (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END AS collation,
            ARRAY(SELECT 'CONSTRAINT ' || quote_ident(k.conname) || ' ' || pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.contypid = t.oid ORDER BY k.conname) AS checks,
            obj_description(t.oid, 'pg_type') AS comment,
            max(u.depth) AS depth
     FROM used u JOIN pg_type t ON t.oid = u.oid JOIN pg_namespace n ON n.oid = t.typnamespace
     LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND t.typtype IN ('e', 'd', 'c', 'r', 'm')
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_type'::regclass AND x.objid = t.oid AND x.deptype = 'e')
       AND NOT (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c'))
     GROUP BY t.oid, n.nspname, bt.typcollation ORDER BY max(u.depth) DESC, t.oid`,
    [oids],
  );
  const out: StructureObject[] = [];
  for (const t of res.rows) {
    const name = qn(t.s, t.name);
    if (t.kind === 'e')
      out.push({
        kind: 'type',
        name: `${t.s}.${t.name}`,
        phase: 'pre-data',
        sql: [
          ifMissing(
            'regtype',
            name,
            `CREATE TYPE ${name} AS ENUM (${t.labels!.map(lit).join(', ')})`,
            commentOn(`TYPE ${name}`, t.comment),
          ),
        ],
      });
    else if (t.kind === 'd')
      out.push({
        kind: 'domain',
        name: `${t.s}.${t.name}`,
        phase: 'pre-data',
        sql: [
          ifMissing(
            'regtype',
            name,
            `CREATE DOMAIN ${name} AS ${t.base}${t.collation ? ` COLLATE ${t.collation}` : ''}${t.def !== null ? ` DEFAULT ${t.def}` : ''}${t.notnull ? ' NOT NULL' : ''}${(t.checks ?? []).map((c) => ` ${c}`).join('')}`,
            commentOn(`DOMAIN ${name}`, t.comment),
          ),
        ],
      });
    else
      notCaptured.push({
        kind: 'type',
        name: `${t.s}.${t.name}`,
        reason: `a ${t.kind === 'c' ? 'composite' : 'range'} type is not recreated: create it before restoring into a database that lacks it`,
      });
  }
  return out;
}

export interface SequenceRow {
  s: string;
  name: string;
  type: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
  /** The table owning it (OWNED BY or identity), or null for a standalone sequence a default uses. */
  owner: number | null;
  column: string | null;
  identity: boolean;
  comment: string | null;
  last: string;
  called: boolean;
}

/** Sequences the tables own (serial, identity) or their defaults use, with their options and current values. */
async function sequenceRows(client: pg.ClientBase, oids: readonly number[]): Promise<SequenceRow[]> {
  const res = await client.query<Omit<SequenceRow, 'last' | 'called'> & { oid: number }>(
    `WITH linked AS (
       SELECT d.objid AS seq, d.refobjid AS owner, a.attname AS col, d.deptype = 'i' AS identity
       FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
       WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = ANY($1) AND d.deptype IN ('a', 'i')
       UNION
       SELECT d.refobjid, NULL, NULL, false FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
       WHERE ad.adrelid = ANY($1) AND d.refclassid = 'pg_class'::regclass
         AND NOT EXISTS (SELECT 1 FROM pg_depend o WHERE o.classid = 'pg_class'::regclass AND o.objid = d.refobjid AND o.deptype IN ('a', 'i'))
       UNION
       -- Standalone sequences no table owns (an application calls nextval itself): shared, like enums.
       SELECT c.oid, NULL, NULL, false FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'S' AND ${SYSTEM_SCHEMAS}
         AND NOT EXISTS (SELECT 1 FROM pg_depend o WHERE o.classid = 'pg_class'::regclass AND o.objid = c.oid AND o.deptype IN ('a', 'i', 'e')))
     SELECT DISTINCT ON (c.oid) c.oid::int AS oid, n.nspname AS s, c.relname AS name, format_type(sq.seqtypid, NULL) AS type,
            sq.seqstart::text AS start, sq.seqincrement::text AS increment, sq.seqmin::text AS min, sq.seqmax::text AS max,
            sq.seqcache::text AS cache, sq.seqcycle AS cycle, l.owner::int AS owner, l.col AS column, l.identity,
            obj_description(c.oid, 'pg_class') AS comment
     FROM linked l JOIN pg_class c ON c.oid = l.seq AND c.relkind = 'S' JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_sequence sq ON sq.seqrelid = c.oid ORDER BY c.oid, l.owner NULLS LAST`,
    [oids],
  );
  const out: SequenceRow[] = [];
  for (const r of res.rows) {
    const v = await client.query<{ last: string; called: boolean }>(
      `SELECT last_value::text AS last, is_called AS called FROM ${q(r.s)}.${q(r.name)}`,
    );
    out.push({
      ...r,
      owner: r.owner === null ? null : Number(r.owner),
      last: v.rows[0]!.last,
      called: v.rows[0]!.called,
    });
  }
  return out;
}

export function seqOptions(s: SequenceRow): string {
  return `START WITH ${s.start} INCREMENT BY ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} CACHE ${s.cache}${s.cycle ? ' CYCLE' : ' NO CYCLE'}`;
}

function sequenceValue(s: SequenceRow, qn: Qualify, table: string | undefined): StructureObject {
  const name = qn(s.s, s.name);
  // Never moved back: a sequence the target already advanced further keeps its value.
  return {
    kind: 'sequence-value',
    name: `${s.s}.${s.name}`,
    ...(table !== undefined ? { table } : {}),
    phase: 'post-data',
    sql: [
      `SELECT pg_catalog.setval(${lit(name)}, ${s.last}, ${s.called}) FROM ${name} s WHERE NOT s.is_called OR s.last_value < ${s.last}`,
    ],
  };
}

interface ColumnRow {
  rel: number;
  name: string;
  type: string;
  notnull: boolean;
  def: string | null;
  identity: string;
  generated: string;
  collation: string | null;
  local: boolean;
}

async function columnRows(client: pg.ClientBase, oids: readonly number[]): Promise<ColumnRow[]> {
  const res = await client.query<ColumnRow>(
    `SELECT a.attrelid::int AS rel, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
            pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity AS identity, a.attgenerated AS generated,
            CASE WHEN a.attcollation <> t.typcollation THEN
              (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END AS collation,
            a.attislocal AS local
     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
     LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
     WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  return res.rows.map((r) => ({ ...r, rel: Number(r.rel) }));
}

export interface ConstraintRow {
  rel: number;
  name: string;
  type: string;
  def: string;
  local: boolean;
  inherited: boolean;
  validated: boolean;
  ref: number | null;
  refkey: string | null;
}

async function constraintRows(
  client: pg.ClientBase,
  oids: readonly number[],
  defaultSchema: string,
): Promise<ConstraintRow[]> {
  const res = await client.query<ConstraintRow>(
    `SELECT k.conrelid::int AS rel, k.conname AS name, k.contype AS type, pg_get_constraintdef(k.oid) AS def,
            k.conislocal AS local, k.conparentid <> 0 OR k.coninhcount > 0 AS inherited, k.convalidated AS validated,
            NULLIF(k.confrelid, 0)::int AS ref,
            CASE WHEN k.confrelid <> 0 THEN (SELECT CASE WHEN rn.nspname = $2 THEN r.relname ELSE rn.nspname || '.' || r.relname END
              FROM pg_class r JOIN pg_namespace rn ON rn.oid = r.relnamespace WHERE r.oid = k.confrelid) END AS refkey
     FROM pg_constraint k WHERE k.conrelid = ANY($1) AND k.contype IN ('p', 'u', 'x', 'c', 'f') ORDER BY k.conrelid, k.conname`,
    [oids, defaultSchema],
  );
  return res.rows.map((r) => ({ ...r, rel: Number(r.rel), ref: r.ref === null ? null : Number(r.ref) }));
}

function createTable(
  r: TableRow,
  name: string,
  rows: readonly TableRow[],
  qn: Qualify,
  columns: readonly ColumnRow[],
  constraints: readonly ConstraintRow[],
  sequences: readonly SequenceRow[],
): string {
  const own = constraints.filter((k) => k.rel === r.oid && k.local && !k.inherited);
  const inTable = own.filter((k) => k.type === 'p' || (k.type === 'c' && k.validated));
  const parts: string[] = [];
  if (r.parent === null)
    for (const c of columns.filter((x) => x.rel === r.oid)) parts.push(columnDef(r, c, qn, sequences));
  else for (const c of columns.filter((x) => x.rel === r.oid && x.local)) parts.push(columnDef(r, c, qn, sequences));
  for (const k of inTable) parts.push(`CONSTRAINT ${q(k.name)} ${k.def}`);
  const body = parts.length || r.parent === null ? ` (${parts.join(', ')})` : '';
  const parent = r.parent === null ? undefined : rows.find((x) => x.oid === r.parent);
  const of = parent ? ` PARTITION OF ${qn(parent.s, parent.t)}` : '';
  const persistence = r.persistence === 'u' ? 'UNLOGGED ' : '';
  const options = r.options?.length ? ` WITH (${r.options.join(', ')})` : '';
  const bound = r.bound !== null ? ` ${r.bound}` : '';
  const partkey = r.partkey !== null ? ` PARTITION BY ${r.partkey}` : '';
  return `CREATE ${persistence}TABLE ${name}${of}${body}${bound}${partkey}${options}`;
}

function columnDef(r: TableRow, c: ColumnRow, qn: Qualify, sequences: readonly SequenceRow[]): string {
  let def = `${q(c.name)} ${c.type}`;
  if (c.collation) def += ` COLLATE ${c.collation}`;
  if (c.generated === 's') def += ` GENERATED ALWAYS AS (${c.def}) STORED`;
  else if (c.identity) {
    const s = sequences.find((x) => x.identity && x.owner === r.oid && x.column === c.name);
    const options = s ? ` (SEQUENCE NAME ${qn(s.s, s.name)} ${seqOptions(s)})` : '';
    def += ` GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${options}`;
  } else if (c.def !== null) def += ` DEFAULT ${c.def}`;
  if (c.notnull) def += ' NOT NULL';
  return def;
}

/** UNIQUE and EXCLUDE constraints, CHECKs not yet validated, foreign keys: after the rows. */
function postDataConstraints(
  rows: readonly TableRow[],
  qn: Qualify,
  constraints: readonly ConstraintRow[],
  keyOf: (oid: number) => string,
): StructureObject[] {
  const out: StructureObject[] = [];
  const order: Record<string, number> = { u: 0, x: 0, c: 1, f: 2 };
  const later = constraints
    .filter(
      (k) =>
        !k.inherited &&
        k.local &&
        (k.type === 'u' || k.type === 'x' || k.type === 'f' || (k.type === 'c' && !k.validated)),
    )
    .sort((a, b) => order[a.type]! - order[b.type]!);
  for (const k of later) {
    const r = rows.find((x) => x.oid === k.rel)!;
    const refRow = k.ref === null ? undefined : rows.find((x) => x.oid === k.ref);
    out.push({
      kind: k.type === 'f' ? 'foreign-key' : 'constraint',
      name: `${r.s}.${r.t}.${k.name}`,
      table: keyOf(r.oid),
      phase: 'post-data',
      sql: [`ALTER TABLE ${r.relkind === 'p' ? '' : 'ONLY '}${qn(r.s, r.t)} ADD CONSTRAINT ${q(k.name)} ${k.def}`],
      ...(k.type === 'f' && k.refkey !== null ? { requires: [refRow ? keyOf(refRow.oid) : k.refkey] } : {}),
    });
  }
  return out;
}

/** Secondary indexes (not those of constraints, not a partition's copy of its parent's). */
async function indexObjects(
  client: pg.ClientBase,
  oids: readonly number[],
  keyOf: (oid: number) => string,
): Promise<StructureObject[]> {
  const res = await client.query<{ rel: number; s: string; name: string; def: string }>(
    `SELECT i.indrelid::int AS rel, n.nspname AS s, c.relname AS name, pg_get_indexdef(i.indexrelid) AS def
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE i.indrelid = ANY($1)
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
       AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
     ORDER BY c.oid`,
    [oids],
  );
  // A partitioned table's index is created on its partitions too (`ON ONLY` would leave them without).
  return res.rows.map((r) => ({
    kind: 'index',
    name: `${r.s}.${r.name}`,
    table: keyOf(Number(r.rel)),
    phase: 'post-data' as const,
    sql: [r.def.replace(/ ON ONLY /, ' ON ')],
  }));
}

/** Comments on the tables, columns, constraints and indexes (never Koan's own `koan:` notes). */
async function commentObjects(
  client: pg.ClientBase,
  oids: readonly number[],
  qn: Qualify,
  keyOf: (oid: number) => string,
): Promise<StructureObject[]> {
  const rows = await client.query<{
    rel: number;
    s: string;
    t: string;
    what: string;
    col: string | null;
    extra: string | null;
    text: string;
  }>(
    `SELECT c.oid::int AS rel, n.nspname AS s, c.relname AS t, 'table' AS what, a.attname AS col, NULL AS extra, d.description AS text
     FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
     WHERE c.oid = ANY($1)
     UNION ALL
     SELECT k.conrelid::int, n.nspname, c.relname, 'constraint', NULL, k.conname, d.description
     FROM pg_description d JOIN pg_constraint k ON d.classoid = 'pg_constraint'::regclass AND d.objoid = k.oid
     JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE k.conrelid = ANY($1) AND k.conparentid = 0
     UNION ALL
     SELECT i.indrelid::int, n.nspname, c.relname, 'index', NULL, NULL, d.description
     FROM pg_description d JOIN pg_index i ON d.classoid = 'pg_class'::regclass AND d.objoid = i.indexrelid
     JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE i.indrelid = ANY($1)`,
    [oids],
  );
  const out: StructureObject[] = [];
  for (const r of rows.rows) {
    if (r.text.startsWith(KOAN_COMMENT)) continue;
    const name = qn(r.s, r.t);
    const on =
      r.what === 'constraint'
        ? `CONSTRAINT ${q(r.extra!)} ON ${name}`
        : r.what === 'index'
          ? `INDEX ${name}`
          : r.col !== null
            ? `COLUMN ${name}.${q(r.col)}`
            : `TABLE ${name}`;
    out.push({
      kind: 'comment',
      name: `${r.s}.${r.t}${r.col !== null ? `.${r.col}` : r.extra !== null ? `.${r.extra}` : ''}`,
      table: keyOf(Number(r.rel)),
      phase: 'post-data',
      sql: [`COMMENT ON ${on} IS ${lit(r.text)}`],
    });
  }
  return out;
}

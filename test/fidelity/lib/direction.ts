/**
 * One restore direction of a source fixture (into a fresh database of some provider, or into an existing schema made
 * from the source's own dump): runs the restore through the CLI, then judges every table with native SQL (values,
 * structure, an insert with a default id) and keeps what it found for the assertions and the report.
 */
import { findColumn, type Table, tablesOf } from './catalog.js';
import { compareValues, rowHash, rowTextDiff } from './compare.js';
import type { Omitted, SourceFixture } from './fixture.js';
import { type Refusal, type RestoreOutcome, restoreDirection } from './restore-run.js';
import {
  createScratch,
  mysqlDumpSchema,
  PROVIDER_LABEL,
  type Provider,
  pgDumpSchema,
  type Scratch,
} from './scratch.js';
import {
  counters,
  type DumpObject,
  diffDumps,
  lineDiff,
  myNonTables,
  pgDumpObjects,
  type StructureCounts,
  showCreateTables,
  sqliteObjects,
  structureCounts,
} from './structure.js';

export interface DirectionSpec {
  readonly to: Provider;
  /** Restore into a schema made from the source's dump (`pg_dump --schema-only` / `mysqldump --no-data`). */
  readonly existingSchema?: boolean;
}

export type TableOutcome =
  | { readonly kind: 'identical'; readonly rows: number }
  | { readonly kind: 'refused'; readonly refusal: Refusal }
  | { readonly kind: 'wrong'; readonly differences: readonly string[] }
  | { readonly kind: 'failed'; readonly why: string; readonly refusal?: Refusal };

/** Codes of a refusal "before anything is written" (a value or key the target cannot hold). */
export const REFUSAL_CODES = ['UNSUPPORTED_VALUE', 'UNSUPPORTED_KEY'];

const shortSql = (o: DumpObject) => (o.sql.length > 300 ? `${o.sql.slice(0, 297)}...` : o.sql).replaceAll('\n', ' ');

/** Whether a structure object the restore did not recreate is named in the backup's `omitted`. */
function namedAsOmitted(omitted: readonly Omitted[], name: string): boolean {
  const last = (s: string) =>
    s
      .replace(/\(.*\)$/, '')
      .split(/[ .]/)
      .pop()!
      .replaceAll('"', '')
      .toLowerCase();
  return omitted.some((o) => last(o.name) === last(name));
}

export class Direction {
  readonly fixture: SourceFixture;
  readonly spec: DirectionSpec;
  result?: RestoreOutcome;
  target?: Scratch;
  targetTables: Table[] = [];
  readonly outcomes = new Map<string, TableOutcome>();
  /** Same provider: objects that differ from the source exactly as PostgreSQL's own pg_dump | psql round trip makes them. */
  readonly nativeRoundTrip: string[] = [];
  /** Same provider: structure differences per source table (`''`: objects of no table: types, functions...). */
  readonly structure = new Map<string, string[]>();
  koanComments: string[] = [];
  counts?: { source: StructureCounts; restored: StructureCounts };
  counters?: { source: Record<string, string>; restored: Record<string, string> };
  /** Table → undefined when the default-id insert worked, else its error. */
  readonly probes = new Map<string, string | undefined>();
  /** Table → [source key columns, restored key columns]. */
  readonly keys = new Map<string, [string[], string[] | undefined]>();

  constructor(fixture: SourceFixture, spec: DirectionSpec) {
    this.fixture = fixture;
    this.spec = spec;
  }

  get same(): boolean {
    return this.spec.to === this.fixture.spec.provider;
  }

  get label(): string {
    const into = this.spec.existingSchema
      ? `an existing ${PROVIDER_LABEL[this.spec.to]} schema (${this.spec.to === 'postgres' ? 'pg_dump --schema-only' : 'mysqldump --no-data'})`
      : `a fresh ${PROVIDER_LABEL[this.spec.to]} database`;
    return `${this.fixture.label} → ${into}`;
  }

  private async makeTarget(): Promise<Scratch> {
    const db = await createScratch(this.spec.to, `${this.fixture.spec.key.slice(0, 6)}_to_${this.spec.to.slice(0, 2)}`);
    if (this.spec.existingSchema) {
      const src = this.fixture.source;
      await db.script(src.provider === 'postgres' ? await pgDumpSchema(src) : await mysqlDumpSchema(src));
    }
    return db;
  }

  /** Milliseconds spent restoring (every CLI run) and judging (native reads), for the report. */
  readonly timings = { restore: 0, judge: 0 };

  async run(): Promise<void> {
    const f = this.fixture;
    const started = performance.now();
    this.result = await restoreDirection(
      f.ws,
      f.backupName,
      f.entities.map((e) => e.entityType),
      () => this.makeTarget(),
    );
    this.target = this.result.target;
    this.timings.restore = performance.now() - started;
    this.targetTables = await tablesOf(this.target);
    for (const t of f.tables) this.outcomes.set(t.id, await this.judge(t).catch((e) => failed(String(e))));
    for (const t of f.tables) {
      const r = this.restoredTable(t);
      this.keys.set(t.id, [[...t.primaryKey], r?.primaryKey.map((k) => sourceName(t, r, k))]);
    }
    this.counts = { source: await structureCounts(f.source), restored: await structureCounts(this.target) };
    this.counters = { source: await counters(f.source), restored: await counters(this.target) };
    if (this.same) {
      await this.judgeStructure();
      await this.runProbes();
    }
    this.timings.judge = performance.now() - started - this.timings.restore;
    f.report.direction(this);
  }

  /** The target table holding source table `t`, if the restore wrote it. */
  restoredTable(t: Table): Table | undefined {
    const entity = this.fixture.entityOf(t.id);
    if (!entity) return undefined;
    return this.same
      ? this.targetTables.find((x) => x.id === t.id)
      : (this.targetTables.find((x) => x.id === entity || x.name === entity) ??
          this.targetTables.find((x) => x.name === t.name) ??
          this.targetTables.find((x) => x.name.toLowerCase() === entity.toLowerCase()));
  }

  private async judge(t: Table): Promise<TableOutcome> {
    const entity = this.fixture.entityOf(t.id);
    if (!entity) return failed('not in the backup');
    const refusal = this.result!.refusals.find((r) => r.entity === entity);
    if (refusal) {
      const named = this.fixture.spec.expectations[t.id]?.refuse?.[this.spec.to];
      const problems = refusalProblems(refusal, entity, t, named);
      if (!problems.length) return { kind: 'refused', refusal };
      // A child whose parent this suite excluded (it failed first) cannot load into a schema with foreign keys.
      const earlier = this.result!.excluded.slice(0, this.result!.refusals.indexOf(refusal));
      const parent = earlier.find((p) => new RegExp(`references ${p}\\b`).test(refusal.message));
      const cause = parent
        ? `a consequence of excluding ${parent}, which failed earlier and which it references; `
        : '';
      return failed(`${cause}the restore stopped on it without a proper refusal: ${problems.join('; ')}`, refusal);
    }
    if (!this.result!.completed) {
      const last = this.result!.refusals.at(-1);
      return failed(`the restore never completed (${this.result!.stuck}); last error: ${last?.code}: ${last?.message}`);
    }
    const restored = this.restoredTable(t);
    if (!restored) return failed(`reported restored, but the target has no table for entity ${entity}`);
    if (this.same) {
      const [a, b] = [await rowHash(this.fixture.source, t), await rowHash(this.target!, restored)];
      if (a.count === b.count && a.md5 === b.md5) return { kind: 'identical', rows: a.count };
      const rows = a.count === b.count ? [] : [`${a.count} rows in the source, ${b.count} restored`];
      return {
        kind: 'wrong',
        differences: [...rows, ...(await rowTextDiff(this.fixture.source, t, this.target!, restored))],
      };
    }
    const c = await compareValues(this.fixture.source, t, this.target!, restored, this.fixture.sourceRows);
    return c.differences.length
      ? { kind: 'wrong', differences: c.differences }
      : { kind: 'identical', rows: c.sourceRows };
  }

  private async judgeStructure(): Promise<void> {
    const f = this.fixture;
    const ids = new Set(f.tables.map((t) => t.id));
    const add = (table: string | undefined, line: string) => {
      const k = table && ids.has(table) ? table : '';
      this.structure.set(k, [...(this.structure.get(k) ?? []), line]);
    };
    for (const t of [...f.tables.map((x) => x.id), '']) this.structure.set(t, []);
    if (this.spec.to === 'postgres') {
      const [src, dst] = [await pgDumpObjects(f.source), await pgDumpObjects(this.target!)];
      const diff = diffDumps(src.objects, dst.objects);
      for (const o of diff.missing)
        if (!namedAsOmitted(f.omitted, o.name)) add(o.table, `missing, not named as omitted: ${o.id}: ${shortSql(o)}`);
      for (const o of diff.added) add(o.table, `not in the source: ${o.id}: ${shortSql(o)}`);
      // PostgreSQL does not re-parse every expression it prints to the same tree (an IN list over varchar prints as
      // ANY(ARRAY[...]::text[]) and comes back with each element cast): an object that differs from the source exactly
      // as pg_dump | psql of the source makes it differ is PostgreSQL's own round trip, not the tool's doing.
      const native = diff.changed.length ? await pgNativeRoundTrip(f.source) : [];
      for (const { source, restored } of diff.changed) {
        const byPgDump = native.find((o) => o.id === source.id);
        if (byPgDump && byPgDump.sql === restored.sql) {
          this.nativeRoundTrip.push(source.id);
          continue;
        }
        add(source.table, `differs: ${source.id}:\n${lineDiff(source.sql, restored.sql)}`);
      }
      this.koanComments = dst.text.split('\n').filter((l) => /koan:/i.test(l));
      return;
    }
    if (this.spec.to === 'sqlite') {
      const [src, dst] = [await sqliteObjects(f.source), await sqliteObjects(this.target!)];
      for (const [k, o] of src) {
        const other = dst.get(k);
        if (!other) add(o.table, `missing: ${k}: ${o.sql}`);
        else if (other.sql !== o.sql) add(o.table, `differs: ${k}:\n${lineDiff(o.sql, other.sql)}`);
      }
      for (const [k, o] of dst) if (!src.has(k)) add(o.table, `not in the source: ${k}: ${o.sql}`);
      this.koanComments = [...dst.values()].flatMap((o) => o.sql.split('\n').filter((l) => /koan:/i.test(l)));
      return;
    }
    const [src, dst] = [
      await showCreateTables(f.source, f.tables),
      await showCreateTables(this.target!, this.targetTables),
    ];
    for (const [id, ddl] of src) {
      const other = dst.get(id);
      if (other === undefined) add(id, 'missing: the table is not in the target');
      else if (other !== ddl) add(id, `SHOW CREATE TABLE differs:\n${lineDiff(ddl, other)}`);
    }
    for (const id of dst.keys()) if (!src.has(id)) add(undefined, `table ${id} is not in the source`);
    const [a, b] = [await myNonTables(f.source), await myNonTables(this.target!)];
    for (const [k, def] of a) {
      if (!b.has(k)) {
        if (!namedAsOmitted(f.omitted, k)) add(undefined, `missing, not named as omitted: ${k}`);
      } else if (b.get(k) !== def) add(undefined, `differs: ${k}:\n${lineDiff(def, b.get(k)!)}`);
    }
    for (const k of b.keys()) if (!a.has(k)) add(undefined, `not in the source: ${k}`);
    this.koanComments = [...dst.values()].flatMap((d) => d.split('\n').filter((l) => /koan:/i.test(l)));
  }

  private async runProbes(): Promise<void> {
    for (const [id, exp] of Object.entries(this.fixture.spec.expectations)) {
      if (!exp.probe) continue;
      const t = this.fixture.tables.find((x) => x.id === id);
      if (!t || !this.restoredTable(t)) {
        this.probes.set(id, 'the table is not in the target');
        continue;
      }
      try {
        await this.target!.rolledBack(exp.probe);
        this.probes.set(id, undefined);
      } catch (e) {
        this.probes.set(id, (e as Error).message);
      }
    }
  }

  /** Kinds of objects that may be fewer in the target because the backup names them as omitted. */
  omittedKinds(): string[] {
    const kinds = new Set(this.fixture.omitted.map((o) => o.kind.toLowerCase()));
    const out: string[] = [];
    if (kinds.has('trigger')) out.push('triggers');
    if (kinds.has('function') || kinds.has('routine')) out.push('functions', 'routines');
    if (kinds.has('view')) out.push('views');
    if (kinds.has('materialized view')) out.push('materialized views');
    return out;
  }
}

function failed(why: string, refusal?: Refusal): TableOutcome {
  return { kind: 'failed', why, ...(refusal ? { refusal } : {}) };
}

const word = (s: string) => new RegExp(`(?<![\\w])${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w])`);

/**
 * What is wrong with a refusal: it must come before anything is written, with a refusal code, naming the entity, a
 * field (one of `named.fields` when the suite knows them), a key (one of `named.keys`) and the reason.
 */
export function refusalProblems(
  r: Refusal,
  entity: string,
  table: Table,
  named?: { fields: readonly string[]; keys: readonly string[] },
): string[] {
  const problems: string[] = [];
  if (!REFUSAL_CODES.includes(r.code))
    problems.push(`error code ${r.code}, expected one of ${REFUSAL_CODES.join(', ')}`);
  if (r.exitCode === 0) problems.push('exit code 0');
  if (r.leftBehind.length) problems.push(`the target holds after the refusal: ${r.leftBehind.join(', ')}`);
  if (!word(entity).test(r.message)) problems.push(`the message does not name entity ${entity}`);
  const fields = named?.fields ?? table.columns.map((c) => c.name);
  if (!fields.some((x) => word(x).test(r.message)))
    problems.push(`the message names none of the fields ${fields.join(', ')}`);
  if (named && !named.keys.some((k) => word(k).test(r.message)))
    problems.push(`the message names none of the keys ${named.keys.join(', ')}`);
  if (problems.length) problems.push(`message: ${r.code}: ${r.message}`);
  return problems;
}

/** The source column name a restored key column stands for. */
function sourceName(source: Table, restored: Table, column: string): string {
  return source.columns.find((c) => findColumn(restored, c.name)?.name === column)?.name ?? `(${column})`;
}

const roundTrips = new WeakMap<Scratch, Promise<DumpObject[]>>();

/** The objects of `pg_dump --schema-only` of a database made by replaying the source's own `pg_dump --schema-only`. */
function pgNativeRoundTrip(source: Scratch): Promise<DumpObject[]> {
  let pending = roundTrips.get(source);
  if (!pending) {
    pending = (async () => {
      const copy = await createScratch('postgres', 'native_rt');
      try {
        await copy.script(await pgDumpSchema(source));
        return (await pgDumpObjects(copy)).objects;
      } finally {
        await copy.drop().catch(() => undefined);
      }
    })();
    roundTrips.set(source, pending);
  }
  return pending;
}

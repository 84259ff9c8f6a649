/**
 * The parts of a structure capture beyond tables: views and materialized views over the captured tables (recreated
 * after the rows), and what the source has that a restore does not recreate (functions, triggers, policies, rules,
 * grants, owners), named so that nothing is left out silently.
 */
import type { NativeStructure, StructureObject } from '@koan/data/adapter-kit';
import type pg from 'pg';
import { SYSTEM_SCHEMAS } from './postgres-introspector.js';
import { lit, type Qualify } from './type-mapping.js';

type Missing = NativeStructure['notCaptured'][number];

/**
 * Views and materialized views that read only captured tables (or other such views), in dependency order, each as
 * a post-data object whose `requires` are the tables it reads; the others go to `notCaptured`, naming what they read.
 */
export async function captureViews(
  client: pg.ClientBase,
  oids: readonly number[],
  qn: Qualify,
  keyOf: (oid: number) => string,
  notCaptured: Missing[],
): Promise<{ objects: StructureObject[]; oids: Set<number> }> {
  const res = await client.query<{
    oid: number;
    s: string;
    name: string;
    kind: string;
    def: string;
    options: string[] | null;
    deps: string[];
    depnames: string[];
  }>(
    `SELECT v.oid::int AS oid, n.nspname AS s, v.relname AS name, v.relkind AS kind, pg_get_viewdef(v.oid) AS def,
            v.reloptions AS options,
            ARRAY(SELECT DISTINCT d.refobjid::int::text FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass
                  AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
                  WHERE r.ev_class = v.oid AND d.refobjid <> v.oid) AS deps,
            ARRAY(SELECT DISTINCT d.refobjid::regclass::text FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass
                  AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
                  WHERE r.ev_class = v.oid AND d.refobjid <> v.oid) AS depnames
     FROM pg_class v JOIN pg_namespace n ON n.oid = v.relnamespace
     WHERE ${SYSTEM_SCHEMAS} AND v.relkind IN ('v', 'm')
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_class'::regclass AND x.objid = v.oid AND x.deptype = 'e')
     ORDER BY v.oid`,
  );
  const captured = new Set(oids);
  const views = new Set<number>();
  const objects: StructureObject[] = [];
  const pending = res.rows.map((r) => ({ ...r, oid: Number(r.oid), deps: r.deps.map(Number) }));
  // Dependency order: a view is taken once everything it reads is a captured table or an already taken view.
  for (let progress = true; progress; ) {
    progress = false;
    for (const v of pending) {
      if (views.has(v.oid) || !v.deps.every((d) => captured.has(d) || views.has(d))) continue;
      views.add(v.oid);
      progress = true;
      const name = qn(v.s, v.name);
      const def = v.def.trim().replace(/;$/, '');
      const options = v.options?.length ? ` WITH (${v.options.join(', ')})` : '';
      const create =
        v.kind === 'm'
          ? `CREATE MATERIALIZED VIEW ${name}${options} AS ${def} WITH DATA`
          : `CREATE VIEW ${name}${options} AS ${def}`;
      const requires = [
        ...new Set(
          v.deps.flatMap((d) =>
            captured.has(d)
              ? [keyOf(d)]
              : objects.filter((o) => o.name === viewName(pending, d)).flatMap((o) => o.requires ?? []),
          ),
        ),
      ];
      objects.push({
        kind: v.kind === 'm' ? 'materialized view' : 'view',
        name: `${v.s}.${v.name}`,
        phase: 'post-data',
        sql: [
          `DO $koan$BEGIN IF to_regclass(${lit(name)}) IS NULL THEN EXECUTE ${lit(create)}; END IF; END$koan$`,
          ...(await viewExtras(client, v.oid, name)),
        ],
        requires,
      });
    }
  }
  for (const v of pending)
    if (!views.has(v.oid) && v.deps.some((d) => captured.has(d)))
      notCaptured.push({
        kind: v.kind === 'm' ? 'materialized view' : 'view',
        name: `${v.s}.${v.name}`,
        reason: `it reads objects that are not in this backup (${v.depnames.join(', ')}): create it again after restoring`,
      });
  return { objects, oids: views };
}

function viewName(rows: readonly { oid: number; s: string; name: string }[], oid: number): string | undefined {
  const r = rows.find((x) => x.oid === oid);
  return r ? `${r.s}.${r.name}` : undefined;
}

/** A view's comment and a materialized view's indexes. */
async function viewExtras(client: pg.ClientBase, oid: number, name: string): Promise<string[]> {
  const res = await client.query<{ sql: string }>(
    `SELECT pg_get_indexdef(i.indexrelid) AS sql FROM pg_index i WHERE i.indrelid = $1
     UNION ALL SELECT 'COMMENT ON ' || CASE WHEN c.relkind = 'm' THEN 'MATERIALIZED VIEW ' ELSE 'VIEW ' END || $2 || ' IS ' || quote_literal(d.description)
     FROM pg_description d JOIN pg_class c ON c.oid = d.objoid WHERE d.classoid = 'pg_class'::regclass AND d.objoid = $1 AND d.objsubid = 0`,
    [oid, name],
  );
  return res.rows.map((r) => r.sql);
}

/**
 * What the source has that the captured structure does not recreate: functions and procedures of the application's
 * schemas, triggers, row-level security policies and rules of the captured tables, their grants and owners.
 */
export async function captureNotCaptured(
  client: pg.ClientBase,
  oids: readonly number[],
  views: readonly number[],
): Promise<Missing[]> {
  const res = await client.query<{ kind: string; name: string; reason: string }>(
    `SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END AS kind,
            n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS name,
            'functions are not recreated: create them in the target before restoring (defaults, checks or triggers may call them)' AS reason
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE ${SYSTEM_SCHEMAS}
       AND NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass AND x.objid = p.oid AND x.deptype = 'e')
     UNION ALL
     SELECT 'trigger', c.relname || '.' || t.tgname, 'triggers are not recreated (nor fired by a restore into a new table)'
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal
     UNION ALL
     SELECT 'policy', c.relname || '.' || p.polname, 'row-level security policies are not recreated'
     FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.polrelid = ANY($1)
     UNION ALL
     SELECT 'row level security', c.relname, 'row-level security is not enabled on the restored table'
     FROM pg_class c WHERE c.oid = ANY($1) AND c.relrowsecurity
     UNION ALL
     SELECT 'rule', c.relname || '.' || r.rulename, 'rules are not recreated'
     FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN'
     UNION ALL
     SELECT 'grant', c.relname, 'privileges granted on it (' || array_to_string(c.relacl, ', ') || ') are not recreated'
     FROM pg_class c WHERE (c.oid = ANY($1) OR c.oid = ANY($2)) AND c.relacl IS NOT NULL
     UNION ALL
     SELECT 'owner', c.relname, 'owned by ' || pg_get_userbyid(c.relowner) || ': a restored table belongs to the user restoring it'
     FROM pg_class c WHERE (c.oid = ANY($1) OR c.oid = ANY($2)) AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
     ORDER BY 1, 2`,
    [oids, views],
  );
  return res.rows;
}

/**
 * What a write or a read needs to know of the table it touches, from the catalog: its kind (a partitioned parent
 * reads every partition; a plain table is read `ONLY`, without inheritance children), and per column the native type
 * (arrays, integer widths), whether it is generated (never written) or an identity, and whether it has a collation.
 */
import type pg from 'pg';
import { q } from './type-mapping.js';

export interface NativeColumn {
  readonly name: string;
  /** The type's name, a domain's base type's for a domain (`int8`, `_int4` for an int4 array...). */
  readonly typname: string;
  readonly isArray: boolean;
  /** Compared with a collation (text types): ordered with `COLLATE "C"` as a key. */
  readonly collatable: boolean;
  /** A generated column: the store computes it, writes leave it out. */
  readonly generated: boolean;
  /** `a` for GENERATED ALWAYS AS IDENTITY, `d` for BY DEFAULT, '' otherwise. */
  readonly identity: string;
}

export interface Relation {
  /** `r` table, `p` partitioned table, `v` view... (pg_class.relkind). */
  readonly relkind: string;
  readonly columns: ReadonlyMap<string, NativeColumn>;
}

/** The relation `schema.table` as the catalog describes it, or undefined when it does not exist. */
export async function relationOf(
  client: pg.ClientBase | pg.Pool,
  schema: string,
  table: string,
): Promise<Relation | undefined> {
  const res = await client.query<{
    relkind: string;
    name: string | null;
    typname: string;
    arr: boolean;
    collatable: boolean;
    generated: boolean;
    identity: string;
  }>(
    `SELECT c.relkind, a.attname AS name, coalesce(b.typname, t.typname) AS typname,
            coalesce(b.typcategory, t.typcategory) = 'A' AS arr, t.typcollation <> 0 AS collatable,
            a.attgenerated <> '' AS generated, a.attidentity AS identity
     FROM pg_class c
     LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     LEFT JOIN pg_type t ON t.oid = a.atttypid
     LEFT JOIN pg_type b ON b.oid = t.typbasetype AND t.typtype = 'd'
     WHERE c.oid = to_regclass($1) ORDER BY a.attnum`,
    [`${q(schema)}.${q(table)}`],
  );
  const first = res.rows[0];
  if (!first) return undefined;
  const columns = new Map<string, NativeColumn>();
  for (const r of res.rows)
    if (r.name !== null)
      columns.set(r.name, {
        name: r.name,
        typname: r.typname,
        isArray: r.arr,
        collatable: r.collatable,
        generated: r.generated,
        identity: r.identity,
      });
  return { relkind: first.relkind, columns };
}

/** `ONLY ` for a plain table (its inheritance children are tables of their own), '' for a partitioned parent. */
export function only(relation: Relation | undefined): string {
  return relation?.relkind === 'r' ? 'ONLY ' : '';
}

/** The range of an integer column's type, for refusing values it cannot hold before writing. */
export const INTEGER_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int2: [-(2n ** 15n), 2n ** 15n - 1n],
  int4: [-(2n ** 31n), 2n ** 31n - 1n],
  int8: [-(2n ** 63n), 2n ** 63n - 1n],
};

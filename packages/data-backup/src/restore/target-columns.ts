/**
 * A restore into a table that already exists (made by the application's migrations, say) writes every field of the
 * entity: a field the table has no column for is refused before anything is written, or, with the lenient schema
 * policy, left out and reported (`droppedFields`, `missingColumns`).
 */
import type { DataRuntime, EntitySchema } from '@koan/data';
import { keyFieldsOf, physicalName } from '@koan/data/adapter-kit';
import { BackupError } from '../errors.js';
import type { PlannedTarget } from './collisions.js';

/** A plan these checks can narrow: the fields its existing table has no column for. */
export interface ColumnPlan extends PlannedTarget {
  /** Fields of `schema` the existing target table has no column for (lenient: left out of every record). */
  readonly missingColumns?: readonly string[] | undefined;
}

/** The fields of `schema` a table with `columns` cannot hold. */
function missingFields(schema: EntitySchema, columns: readonly { readonly name: string }[]): string[] {
  const have = new Set(columns.map((c) => c.name));
  return Object.keys(schema.fields).filter((f) => !have.has(f));
}

/** `schema` without `fields`. */
function without(schema: EntitySchema, fields: readonly string[]): EntitySchema {
  const kept = Object.fromEntries(Object.entries(schema.fields).filter(([f]) => !fields.includes(f)));
  return Object.freeze({ ...schema, fields: Object.freeze(kept) });
}

/**
 * Reads each target table that exists (`describe`) and compares its columns with the fields written. Strict: the
 * restore is refused (`SCHEMA_INCOMPATIBLE`, `details.missingColumns`: entity, set, fields) naming each entity set,
 * field and fix. Lenient: the fields are left out (`plans[i]` is replaced by one whose schema lacks them and whose
 * `missingColumns` names them), unless one is part of the key: that entity set is then blocked (reported Failed).
 */
export async function checkTargetColumns<P extends ColumnPlan>(
  runtime: DataRuntime,
  plans: P[],
  policy: 'strict' | 'lenient',
): Promise<void> {
  const problems: string[] = [];
  const missingColumns: { entity: string; set: string; fields: string[] }[] = [];
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i]!;
    if (plan.blocked) continue;
    const { schema, targetSet, archived } = plan;
    const adapter = await runtime.adapter(schema.source);
    const store = await adapter.describe(schema, targetSet);
    if (!store.exists || !store.columns.length) continue;
    const missing = missingFields(schema, store.columns);
    if (!missing.length) continue;
    const fromArchive = missing.filter((f) => f in archived.fields);
    const others = missing.filter((f) => !(f in archived.fields));
    const table = `${schema.namespace ? `${schema.namespace}.` : ''}${physicalName(schema, targetSet)}`;
    const what = [
      ...(fromArchive.length
        ? [`the archived field${fromArchive.length > 1 ? 's' : ''} ${fromArchive.join(', ')}`]
        : []),
      ...(others.length ? [`the field${others.length > 1 ? 's' : ''} ${others.join(', ')} of ${schema.name}`] : []),
    ].join(' nor for ');
    const where = `${schema.name}@${targetSet}: the existing table ${table} of ${schema.source} has no column for ${what}`;
    const inKey = missing.filter((f) => keyFieldsOf(schema).includes(f));
    if (policy === 'strict') {
      missingColumns.push({ entity: schema.name, set: targetSet, fields: missing });
      problems.push(
        `${where}. Add the column${missing.length > 1 ? 's' : ''} to the table (ALTER TABLE ... ADD COLUMN, or migrate it), restore with schemaPolicy "lenient" (CLI --lenient) to leave ${missing.length > 1 ? 'their' : 'its'} values out, or restore into another set or database, where the table is created whole.`,
      );
    } else if (inKey.length)
      plans[i] = {
        ...plan,
        blocked: `${where}, and ${inKey.join(', ')} ${inKey.length > 1 ? 'are' : 'is'} part of its key: add the column${inKey.length > 1 ? 's' : ''} (ALTER TABLE ... ADD COLUMN, or migrate the table), or restore into another set or database`,
      } as P;
    else plans[i] = { ...plan, schema: without(schema, missing), missingColumns: missing } as P;
  }
  if (problems.length)
    throw new BackupError('SCHEMA_INCOMPATIBLE', `Nothing was restored:\n- ${problems.join('\n- ')}`, {
      details: { problems, missingColumns },
    });
}

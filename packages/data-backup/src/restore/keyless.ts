/**
 * Tables without a primary key (`EntitySchema.keyless`) hold rows no key can match: a merge into one that already has
 * rows would duplicate them, so it is refused, naming what works instead (emptying it first, or appending).
 */
import type { DataAdapter, DataRuntime, EntitySchema } from '@koan/data';
import type { ImportMode } from '@koan/data/adapter-kit';
import { BackupError } from '../errors.js';
import type { PlannedTarget } from './collisions.js';

/** Whether the set holds any record: the adapter's probe where it has one (a count can be a full scan). */
export async function holdsRecords(adapter: DataAdapter, schema: EntitySchema, set: string): Promise<boolean> {
  return adapter.hasRecords ? adapter.hasRecords(schema, set) : (await adapter.count(schema, set)) > 0;
}

/** Why a merge into this keyless entity set is refused, and the options that work. */
export function keylessMergeProblem(plan: PlannedTarget): string {
  return `${plan.schema.name}@${plan.targetSet} has no primary key and already holds rows: a merge cannot match rows by key and would duplicate them. Restore with replaceExisting (CLI --replace: empties it first) or mode "insert" (CLI --mode insert: appends every archived row).`;
}

/**
 * Tables without a primary key hold rows no key can match, so a merge (upsert) into one that already has rows would
 * duplicate them: such a restore is refused before anything is written (`SCHEMA_INCOMPATIBLE`, with
 * `details.keylessMerge`: entity and set of each), saying what to do instead.
 */
export async function refuseKeylessMerges(
  runtime: DataRuntime,
  plans: readonly PlannedTarget[],
  mode: ImportMode,
  replaceExisting: boolean,
): Promise<void> {
  if (mode !== 'upsert' || replaceExisting) return;
  const problems: string[] = [];
  const keylessMerge: { entity: string; set: string }[] = [];
  for (const plan of plans) {
    if (!plan.schema.keyless || plan.blocked) continue;
    const adapter = await runtime.adapter(plan.schema.source);
    if (!(await holdsRecords(adapter, plan.schema, plan.targetSet))) continue;
    problems.push(keylessMergeProblem(plan));
    keylessMerge.push({ entity: plan.schema.name, set: plan.targetSet });
  }
  // `details.keylessMerge` tells this refusal from a schema drift: what fixes it is a mode, not a schema policy.
  if (problems.length)
    throw new BackupError('SCHEMA_INCOMPATIBLE', `Nothing was restored:\n- ${problems.join('\n- ')}`, {
      details: { problems, keylessMerge },
    });
}

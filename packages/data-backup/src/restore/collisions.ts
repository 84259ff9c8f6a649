/**
 * Where the archived entity sets of a restore land, checked before anything is written: two of them written into
 * one table of the target would merge silently (and overwrite each other's keys), so such a restore is refused.
 */
import type { DataRuntime, EntitySchema } from '@koan/data';
import { physicalName } from '@koan/data/adapter-kit';
import { BackupError, invalidOption } from '../errors.js';
import type { EntityManifest } from '../manifest.js';

/** What these checks read of a restore's plan of one archived entity set. */
export interface PlannedTarget {
  readonly item: EntityManifest;
  /** The schema written: its source, table and namespace say where. */
  readonly schema: EntitySchema;
  /** The archived schema: where the set came from. */
  readonly archived: EntitySchema;
  readonly targetSet: string;
  /** Why it is not written (reported Failed instead). */
  readonly blocked: string | undefined;
}

/** One target table that several archived entity sets would be written into. */
export interface TargetCollision {
  readonly source: string;
  /** The table, as the target's adapter spells it (`DataAdapter.locationOf`). */
  readonly location: string;
  readonly entities: readonly {
    readonly entity: string;
    readonly set: string;
    readonly targetSet: string;
    /** Where it was backed up from: `source: namespace.table`. */
    readonly from: string;
  }[];
}

/**
 * Refuses (`INVALID_OPTION` `targetSet`) two archived sets of one entity restored into the same target set: they
 * would merge. Names the option that restores them one at a time.
 */
export function refuseSharedTargetSets(plans: readonly PlannedTarget[]): void {
  const byTarget = new Map<string, PlannedTarget[]>();
  for (const plan of plans) {
    const at = `${plan.schema.source}\0${plan.schema.name}\0${plan.targetSet}`;
    byTarget.set(at, [...(byTarget.get(at) ?? []), plan]);
  }
  for (const same of byTarget.values())
    if (same.length > 1) {
      const { schema, targetSet } = same[0]!;
      const sets = same.map((p) => p.item.set);
      throw invalidOption(
        'targetSet',
        targetSet,
        `one archived set per target set: ${schema.name}'s sets ${sets.join(', ')} would all be restored into "${targetSet}". Restore them one at a time with sets: ['${sets[0]}'] (CLI --set ${sets[0]}), or leave targetSet/setMap out so each returns to its own set`,
      );
    }
}

/** Where an archived entity set was backed up from, for messages: `source: namespace.table#set`. */
function origin(plan: PlannedTarget): string {
  const { archived, item } = plan;
  return `${item.source}: ${archived.namespace ? `${archived.namespace}.` : ''}${physicalName(archived, item.set)}`;
}

function listed(items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items.at(-1)}` : (items[0] ?? '');
}

/**
 * Refuses (`TARGET_COLLISION`) a restore that would write two archived entity sets into one table of a target
 * source: PostgreSQL's `public.orders` and `sales.orders` into MariaDB or SQLite (no schemas there), `orders` and
 * `Orders` into SQLite (table names compared ignoring case). Each adapter says where a set goes
 * (`DataAdapter.locationOf`; else `physicalName`). `details.collisions`: every shared table, with the archived sets.
 */
export async function refuseTargetCollisions(runtime: DataRuntime, plans: readonly PlannedTarget[]): Promise<void> {
  const collisions: TargetCollision[] = [];
  const written = plans.filter((p) => !p.blocked);
  for (const source of [...new Set(written.map((p) => p.schema.source))]) {
    const adapter = await runtime.adapter(source);
    const byLocation = new Map<string, PlannedTarget[]>();
    for (const plan of written.filter((p) => p.schema.source === source)) {
      const location = adapter.locationOf?.(plan.schema, plan.targetSet) ?? physicalName(plan.schema, plan.targetSet);
      byLocation.set(location, [...(byLocation.get(location) ?? []), plan]);
    }
    for (const [location, same] of byLocation)
      if (same.length > 1)
        collisions.push({
          source,
          location,
          entities: same
            .map((p) => ({ entity: p.item.entityType, set: p.item.set, targetSet: p.targetSet, from: origin(p) }))
            .sort((a, b) => (`${a.entity}@${a.set}` < `${b.entity}@${b.set}` ? -1 : 1)),
        });
  }
  if (!collisions.length) return;
  const lines = collisions.map(
    (c) => `${listed(c.entities.map((e) => `${e.entity}@${e.set} (${e.from})`))} -> table ${c.location} of ${c.source}`,
  );
  throw new BackupError(
    'TARGET_COLLISION',
    `Nothing was restored: archived entity sets would be written into one table of the target and merge:\n- ${lines.join('\n- ')}\nRestore them separately: one at a time (includeEntityTypes; CLI --entity), into another set (setMap or targetSet; CLI --target-set) or into another database (targetSource; CLI --target-source).`,
    { details: { collisions } },
  );
}

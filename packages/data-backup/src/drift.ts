import type { EntitySchema, FieldSpec, FieldType } from '@koan/data';

/** How an archived schema differs from the entity's current schema. */
export interface SchemaDrift {
  readonly entity: string;
  /** Fields the current schema has and the archive does not. */
  readonly added: readonly string[];
  /** Fields in the archive the current schema no longer has. */
  readonly removed: readonly string[];
  /**
   * Fields whose type, decimal precision/scale, nullability or optionality differ. `convertible` when every archived
   * value fits the current field (a widening: `integer` → `bigint`, not nullable → nullable, a wider decimal...);
   * a narrowing (nullable → not nullable, optional → required, fewer decimal digits) is not.
   */
  readonly changed: readonly {
    readonly field: string;
    readonly from: string;
    readonly to: string;
    readonly convertible: boolean;
  }[];
  readonly keyChanged: boolean;
  /** Current required fields the archive doesn't have: records can't be restored without a transform. */
  readonly missingRequired: readonly string[];
  readonly identical: boolean;
}

/** Lossless conversions a restore applies on its own. */
const WIDENING: Readonly<Partial<Record<FieldType, readonly FieldType[]>>> = {
  integer: ['bigint', 'number', 'decimal', 'string'],
  bigint: ['decimal', 'string'],
  decimal: ['string'],
  uuid: ['string'],
  date: ['string'],
  datetime: ['string'],
  number: ['string'],
  boolean: ['string'],
};

/** A field's type as drift compares it; a dynamic field (SQLite literals of any type) is a type of its own. */
const typeLabel = (f: FieldSpec) =>
  f.dynamic ? 'dynamic (SQLite values of any type)' : f.type === 'vector' ? `vector(${f.dimension})` : f.type;

/** The field as drift reports it: type, decimal precision and scale, nullable, optional. */
function fieldLabel(f: FieldSpec): string {
  const size = f.type === 'decimal' && f.precision !== undefined ? `(${f.precision},${f.scale ?? 0})` : '';
  return `${typeLabel(f)}${size}${f.nullable ? ' nullable' : ''}${f.optional ? ' optional' : ''}`;
}

/**
 * Whether every value the archived field can hold fits the current field with no more than a widening conversion:
 * the type widens (or stays), nulls stay allowed if the archive allowed them, a field the archive could omit stays
 * optional, and a decimal keeps at least its integer digits and its scale.
 */
function fits(old: FieldSpec, now: FieldSpec): boolean {
  if (typeLabel(old) !== typeLabel(now) && !(WIDENING[old.type]?.includes(now.type) ?? false)) return false;
  if (old.nullable && !now.nullable) return false;
  if (old.optional && !now.optional) return false;
  if (old.type === 'decimal' && now.type === 'decimal' && now.precision !== undefined) {
    if (old.precision === undefined) return false;
    const scale = { old: old.scale ?? 0, now: now.scale ?? 0 };
    if (scale.now < scale.old || now.precision - scale.now < old.precision - scale.old) return false;
  }
  return true;
}

export function compareSchemas(archived: EntitySchema, current: EntitySchema): SchemaDrift {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: { field: string; from: string; to: string; convertible: boolean }[] = [];
  const missingRequired: string[] = [];
  for (const [name, spec] of Object.entries(current.fields)) {
    const old = archived.fields[name];
    if (!old) {
      added.push(name);
      if (!spec.optional) missingRequired.push(name);
      continue;
    }
    if (fieldLabel(old) !== fieldLabel(spec))
      changed.push({ field: name, from: fieldLabel(old), to: fieldLabel(spec), convertible: fits(old, spec) });
  }
  for (const name of Object.keys(archived.fields)) if (!current.fields[name]) removed.push(name);
  const keyChanged =
    archived.key !== current.key ||
    archived.keyType !== current.keyType ||
    (archived.keyFields ?? [archived.key]).join('\0') !== (current.keyFields ?? [current.key]).join('\0');
  return {
    entity: current.name,
    added,
    removed,
    changed,
    keyChanged,
    missingRequired,
    identical: !added.length && !removed.length && !changed.length && !keyChanged,
  };
}

export function describeDrift(d: SchemaDrift): string {
  const parts: string[] = [];
  if (d.keyChanged) parts.push('the key changed');
  if (d.added.length) parts.push(`added ${d.added.join(', ')}`);
  if (d.removed.length) parts.push(`removed ${d.removed.join(', ')}`);
  for (const c of d.changed) parts.push(`${c.field} ${c.from} → ${c.to}${c.convertible ? '' : ' (incompatible)'}`);
  return parts.join('; ') || 'no differences';
}

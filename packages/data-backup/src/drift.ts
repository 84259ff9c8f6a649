import type { EntitySchema, FieldSpec, FieldType } from '@koan/data';

/** How an archived schema differs from the entity's current schema. */
export interface SchemaDrift {
  readonly entity: string;
  /** Fields the current schema has and the archive does not. */
  readonly added: readonly string[];
  /** Fields in the archive the current schema no longer has. */
  readonly removed: readonly string[];
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

const typeLabel = (f: FieldSpec) => (f.type === 'vector' ? `vector(${f.dimension})` : f.type);

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
    if (typeLabel(old) !== typeLabel(spec)) {
      const convertible = old.type === spec.type ? false : (WIDENING[old.type]?.includes(spec.type) ?? false);
      changed.push({ field: name, from: typeLabel(old), to: typeLabel(spec), convertible });
    }
  }
  for (const name of Object.keys(archived.fields)) if (!current.fields[name]) removed.push(name);
  const keyChanged = archived.key !== current.key || archived.keyType !== current.keyType;
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

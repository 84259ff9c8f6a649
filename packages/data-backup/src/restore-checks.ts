/** Checks of a restore against its target store, before anything is written. */
import {
  type DataAdapter,
  DataError,
  type DataRecord,
  type DataRuntime,
  type EntitySchema,
  type KeyValue,
} from '@koan/data';
import { keyFieldsOf } from '@koan/data/adapter-kit';
import { BackupError } from './errors.js';

/**
 * How many of `batch` (distinct keys) exist in the target set, by the whole key: the adapter's `countExisting`, else
 * `getMany` of single keys. A composite key cannot be looked up by its first column: refused, not miscounted.
 */
export async function countExisting(
  adapter: DataAdapter,
  schema: EntitySchema,
  set: string,
  batch: readonly DataRecord[],
): Promise<number> {
  if (adapter.countExisting) return adapter.countExisting(schema, set, batch);
  if (keyFieldsOf(schema).length > 1)
    throw new DataError(
      'UNSUPPORTED_KEY',
      `${schema.name} has a composite key (${keyFieldsOf(schema).join(', ')}) the ${adapter.provider} adapter cannot look up: a dry run cannot count its existing records.`,
      { details: { entity: schema.name, provider: adapter.provider } },
    );
  return (
    await adapter.getMany(
      schema,
      set,
      batch.map((r) => r[schema.key] as KeyValue),
    )
  ).length;
}

/**
 * Fields holding SQLite values of any type (`FieldSpec.dynamic`) are written only by stores that keep each value's
 * own type (`capabilities.dynamicValues`): into any other, refused before anything is written, naming them.
 */
export async function refuseDynamicFields(
  runtime: DataRuntime,
  plans: readonly { readonly schema: EntitySchema; readonly blocked?: string | undefined }[],
): Promise<void> {
  const problems: string[] = [];
  const fields: string[] = [];
  for (const plan of plans) {
    const dynamic = Object.keys(plan.schema.fields).filter((f) => plan.schema.fields[f]!.dynamic);
    if (!dynamic.length || plan.blocked) continue;
    const adapter = await runtime.adapter(plan.schema.source);
    if (adapter.capabilities.dynamicValues) continue;
    for (const f of dynamic) {
      fields.push(`${plan.schema.name}.${f}`);
      problems.push(
        `${plan.schema.name}.${f} holds SQLite values of any type (a column without a declared type), which the ${adapter.provider} store cannot keep as they are: restore ${plan.schema.name} into SQLite, or exclude it`,
      );
    }
  }
  if (problems.length)
    throw new BackupError('UNSUPPORTED_VALUE', `Nothing was restored:\n- ${problems.join('\n- ')}`, {
      details: { problems, fields },
    });
}

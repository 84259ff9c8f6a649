import { dataConfigSchema } from '@koan/data';
import { storageConfigSchema } from '@koan/storage';
import { z } from 'zod';
import { backupConfigSchema } from './context.js';
import { manifestSchema, sidecarSchema } from './manifest.js';

type Json = Record<string, unknown>;

function pascalProperties(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(pascalProperties);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) {
    if (k === 'properties' && v && typeof v === 'object') {
      out[k] = Object.fromEntries(
        Object.entries(v as Json).map(([name, s]) => [name[0]!.toUpperCase() + name.slice(1), pascalProperties(s)]),
      );
    } else if (k === 'required' && Array.isArray(v)) {
      out[k] = v.map((name: string) => name[0]!.toUpperCase() + name.slice(1));
    } else out[k] = pascalProperties(v);
  }
  return out;
}

/** JSON Schema of `manifest.json` (format v1) and of the `.manifest.json` sidecar. */
export function manifestJsonSchemas(): { manifest: Json; sidecar: Json } {
  const base = { $schema: 'https://json-schema.org/draft/2020-12/schema' };
  return {
    manifest: {
      ...base,
      title: 'Koan backup manifest (format v1)',
      ...(z.toJSONSchema(manifestSchema, { io: 'input' }) as Json),
    },
    sidecar: {
      ...base,
      title: 'Koan backup sidecar (manifest + archive location + validation)',
      ...(z.toJSONSchema(sidecarSchema, { io: 'input' }) as Json),
    },
  };
}

/** JSON Schema of koan.config.json for editors (keys in the PascalCase the file uses; camelCase is accepted too). */
export function configJsonSchema(): Json {
  const section = z
    .object({
      data: dataConfigSchema.optional(),
      storage: storageConfigSchema.optional(),
      backup: backupConfigSchema.optional(),
    })
    .strict();
  const koan = pascalProperties(z.toJSONSchema(section, { io: 'input', unrepresentable: 'any' })) as Json;
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'koan.config.json',
    type: 'object',
    properties: { $schema: { type: 'string' }, Koan: koan },
  };
}

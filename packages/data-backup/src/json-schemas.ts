import { dataConfigSchema } from '@koan/data/config';
import { providerSettingsSchemas, storageConfigSchema } from '@koan/storage';
import { z } from 'zod';
import { backupConfigSchema } from './context.js';
import { manifestSchema, sidecarSchema } from './manifest.js';

type Json = Record<string, unknown>;

const pascal = (name: string) => name[0]!.toUpperCase() + name.slice(1);
const camel = (name: string) => name[0]!.toLowerCase() + name.slice(1);
const pointerEscape = (name: string) => name.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * Property names in the PascalCase the file uses, each with its camelCase spelling as an alias (a `$ref` to the
 * PascalCase one), since the loader accepts both; a required property may be given in either spelling.
 */
function pascalProperties(node: unknown, pointer: string): unknown {
  if (Array.isArray(node)) return node.map((v, i) => pascalProperties(v, `${pointer}/${i}`));
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  const extraAllOf: Json[] = [];
  for (const [k, v] of Object.entries(node as Json)) {
    if (k === 'properties' && v && typeof v === 'object') {
      const props: Json = {};
      for (const [name, s] of Object.entries(v as Json)) {
        const upper = pascal(name);
        const target = `${pointer}/properties/${pointerEscape(upper)}`;
        props[upper] = pascalProperties(s, target);
        const lower = camel(name);
        if (lower !== upper) props[lower] = { $ref: target };
      }
      out[k] = props;
    } else if (k === 'required' && Array.isArray(v)) {
      const names = (v as string[]).map(pascal);
      const both = names.filter((n) => camel(n) !== n);
      const plain = names.filter((n) => camel(n) === n);
      if (plain.length) out[k] = plain;
      for (const n of both) extraAllOf.push({ anyOf: [{ required: [n] }, { required: [camel(n)] }] });
    } else out[k] = pascalProperties(v, `${pointer}/${pointerEscape(k)}`);
  }
  if (extraAllOf.length) out.allOf = [...((out.allOf as Json[] | undefined) ?? []), ...extraAllOf];
  return out;
}

function jsonSchemaOf(schema: z.ZodType): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
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

/**
 * JSON Schema of koan.config.json for editors: keys in the PascalCase the file uses, each also accepted in camelCase
 * (as the loader does; it matches keys ignoring case altogether). Every object is closed (an unknown key is an
 * error, as in the code), and a storage profile's `Settings` are those of its `Provider`: the built-in `local` and
 * `memory`, and each of `storageProviders` (a provider package's `provider.name` and `settingsSchema`, as
 * scripts/emit-schemas.mjs passes those of @koan/storage-s3 and @koan/storage-azure).
 */
export function configJsonSchema(
  options: { readonly storageProviders?: Readonly<Record<string, z.ZodType>> } = {},
): Json {
  const section = z
    .object({
      data: dataConfigSchema.optional(),
      storage: storageConfigSchema.optional(),
      backup: backupConfigSchema.optional(),
    })
    .strict();
  const koan = jsonSchemaOf(section);
  const storage = (koan.properties as Json).storage as Json;
  const profile = (storage.properties as Json).profiles as Json;
  const profileSchema = profile.additionalProperties as Json;
  const providers = { ...providerSettingsSchemas, ...options.storageProviders };
  profileSchema.allOf = Object.entries(providers).map(([provider, settings]) => ({
    if: { properties: { provider: { const: provider } }, required: ['provider'] },
    // biome-ignore lint/suspicious/noThenProperty: `then` is the JSON Schema keyword; this object is never awaited.
    then: { properties: { settings: jsonSchemaOf(settings) } },
  }));
  const root = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'koan.config.json',
    type: 'object',
    properties: { $schema: { type: 'string' }, koan },
  };
  return pascalProperties(root, '#') as Json;
}

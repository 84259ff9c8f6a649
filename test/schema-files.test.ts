import { readFileSync } from 'node:fs';
import { configJsonSchema, manifestJsonSchemas } from '@koan/data-backup/schemas';
import * as azure from '@koan/storage-azure';
import * as s3 from '@koan/storage-s3';
import { describe, expect, it } from 'vitest';

/** As scripts/emit-schemas.mjs collects them: each provider package's `provider.name` and `settingsSchema`. */
const storageProviders = Object.fromEntries([s3, azure].map((p) => [p.provider.name, p.settingsSchema]));
const config = () => JSON.parse(JSON.stringify(configJsonSchema({ storageProviders })));

const read = (name: string) => JSON.parse(readFileSync(new URL(`../schema/${name}`, import.meta.url), 'utf8'));

describe('published JSON Schemas', () => {
  it('match the code (regenerate with: npm run build && node scripts/emit-schemas.mjs)', () => {
    const { manifest, sidecar } = manifestJsonSchemas();
    expect(read('manifest.v2.schema.json')).toEqual(JSON.parse(JSON.stringify(manifest)));
    expect(read('sidecar.v2.schema.json')).toEqual(JSON.parse(JSON.stringify(sidecar)));
    expect(read('koan.config.schema.json')).toEqual(config());
    // The copy the CLI package ships (koan-backup/koan.config.schema.json) is the same.
    const shipped = JSON.parse(
      readFileSync(new URL('../packages/cli/koan.config.schema.json', import.meta.url), 'utf8'),
    );
    expect(shipped).toEqual(config());
  });

  it("describe the Settings of every storage provider a profile can name (a provider package's settingsSchema)", () => {
    type Node = {
      properties: Record<string, Node>;
      additionalProperties: Node;
      allOf: { if?: Node }[];
      const?: string;
    };
    const profiles = (read('koan.config.schema.json') as Node).properties.Koan!.properties.Storage!.properties
      .Profiles!;
    const described = profiles.additionalProperties.allOf.flatMap((c) =>
      c.if ? [c.if.properties.Provider!.const] : [],
    );
    expect(described.sort()).toEqual(['azure-blob', 'local', 'memory', 's3']);
  });
});

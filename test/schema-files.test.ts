import { readFileSync } from 'node:fs';
import { configJsonSchema, manifestJsonSchemas } from '@koan/data-backup';
import { describe, expect, it } from 'vitest';

const read = (name: string) => JSON.parse(readFileSync(new URL(`../schema/${name}`, import.meta.url), 'utf8'));

describe('published JSON Schemas', () => {
  it('match the code (regenerate with: npm run build && node scripts/emit-schemas.mjs)', () => {
    const { manifest, sidecar } = manifestJsonSchemas();
    expect(read('manifest.v2.schema.json')).toEqual(JSON.parse(JSON.stringify(manifest)));
    expect(read('sidecar.v2.schema.json')).toEqual(JSON.parse(JSON.stringify(sidecar)));
    expect(read('koan.config.schema.json')).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
    // The copy the CLI package ships (koan-backup/koan.config.schema.json) is the same.
    const shipped = JSON.parse(
      readFileSync(new URL('../packages/cli/koan.config.schema.json', import.meta.url), 'utf8'),
    );
    expect(shipped).toEqual(JSON.parse(JSON.stringify(configJsonSchema())));
  });
});

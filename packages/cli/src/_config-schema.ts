import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The schema this CLI ships (koan-backup/koan.config.schema.json). */
const SHIPPED_SCHEMA = fileURLToPath(new URL('../koan.config.schema.json', import.meta.url));

/**
 * Where editors find the config's JSON Schema from `dir`: the project's own installed CLI when it has one
 * (`./node_modules/koan-backup/koan.config.schema.json`, relative, so the file stays portable), else the schema of this
 * CLI as a file URL.
 */
export function schemaReference(dir: string): string {
  const local = join(dir, 'node_modules', 'koan-backup', 'koan.config.schema.json');
  if (existsSync(local)) return `./${relative(dir, local).split('\\').join('/')}`;
  return pathToFileURL(SHIPPED_SCHEMA).href;
}

/**
 * Finding a package in the user's project. A CLI run through `npx` or installed globally lives in its own
 * `node_modules`: `import('@koan/data-postgres')` from there cannot see the driver the user installed in their project,
 * and installing it "as told" would not help. So packages are looked up from the working directory first (walking up
 * to the root, like Node does for the project's own code), then from this package's tree.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The directory holding this installation's packages: `@koan/data`'s parent (`node_modules/@koan`, or a monorepo's
 * `packages`). A project package found there is this installation's own copy, imported the ordinary way.
 */
const OWN_SIBLINGS = (() => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir))
    if (existsSync(join(dir, 'package.json'))) return dirname(realpathSync(dir));
  return undefined;
})();

/** The ESM entry file of a package's main export (`exports["."]`: `import`, then `default`; else `module`/`main`). */
function entryOf(dir: string): string | undefined {
  let pkg: { exports?: unknown; module?: string; main?: string };
  try {
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg;
  } catch {
    return undefined;
  }
  const pick = (x: unknown): string | undefined => {
    if (typeof x === 'string') return x;
    if (x && typeof x === 'object') {
      const conditions = x as Record<string, unknown>;
      if ('.' in conditions) return pick(conditions['.']);
      for (const c of ['import', 'node', 'default']) {
        const found = pick(conditions[c]);
        if (found) return found;
      }
    }
    return undefined;
  };
  const file = pick(pkg.exports) ?? pkg.module ?? pkg.main ?? 'index.js';
  return join(dir, file);
}

/**
 * The file URL of `specifier`'s entry as installed in the project around `cwd` (its `node_modules`, or a parent
 * directory's), or undefined when the project does not have it.
 */
export function resolveFromProject(specifier: string, cwd: string): string | undefined {
  for (let dir = cwd; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', ...specifier.split('/'));
    if (existsSync(join(candidate, 'package.json'))) {
      const entry = entryOf(candidate);
      if (entry && existsSync(entry)) return pathToFileURL(entry).href;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Imports `specifier` from the project around `cwd` when it has it, else from this package's own tree. Throws the
 * second attempt's error when neither has it.
 */
export async function importFromProject<T>(specifier: string, cwd: string): Promise<T> {
  const fromProject = specifier.startsWith('.') ? undefined : resolveFromProject(specifier, cwd);
  if (fromProject) {
    // This installation's own copy (a monorepo's sibling package, or the same node_modules): the ordinary import.
    const own = OWN_SIBLINGS !== undefined && packageDirOf(fileURLToPath(fromProject)) === OWN_SIBLINGS;
    if (!own) return (await import(fromProject)) as T;
  }
  return (await import(specifier)) as T;
}

/** The directory holding the package that `file` belongs to (the parent of its package root), resolved. */
function packageDirOf(file: string): string | undefined {
  for (let dir = dirname(file); dirname(dir) !== dir; dir = dirname(dir))
    if (existsSync(join(dir, 'package.json'))) return dirname(realpathSync(dir));
  return undefined;
}

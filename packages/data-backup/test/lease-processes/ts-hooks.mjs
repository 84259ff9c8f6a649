/**
 * Module hooks that let a child process run the TypeScript sources, as vitest does for the tests: `.ts` files are
 * transpiled (types stripped, nothing checked) and a relative `./x.js` import finds `./x.ts`. Started with
 * `--conditions=koan-source`, `@koan/*` packages resolve to their sources too (see register.mjs).
 *
 * Transpiled files are cached in the temp directory by path, size and mtime: the instances of a scenario load the same
 * sources, and loading TypeScript itself is the slowest part of starting one, so only a cache miss loads it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CACHE = join(tmpdir(), `koan-ts-hooks-${process.getuid?.() ?? 'user'}`);
mkdirSync(CACHE, { recursive: true });

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    if (!/^(\.|file:)/.test(specifier) || !specifier.endsWith('.js')) throw e;
    return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
  }
}

let typescript;

async function transpile(fileName) {
  typescript ??= (await import('typescript')).default;
  const { outputText } = typescript.transpileModule(readFileSync(fileName, 'utf8'), {
    fileName,
    compilerOptions: {
      module: typescript.ModuleKind.ESNext,
      target: typescript.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      inlineSourceMap: true,
    },
  });
  return outputText;
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const fileName = fileURLToPath(url);
  const { size, mtimeMs } = statSync(fileName);
  const cached = join(CACHE, `${createHash('sha1').update(`${fileName}\0${size}\0${mtimeMs}`).digest('hex')}.mjs`);
  let source;
  try {
    source = readFileSync(cached, 'utf8');
  } catch {
    source = await transpile(fileName);
    const partial = `${cached}.${process.pid}`;
    writeFileSync(partial, source);
    renameSync(partial, cached); // whole or absent, whichever instance writes it
  }
  return { format: 'module', source, shortCircuit: true };
}

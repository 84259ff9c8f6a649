#!/usr/bin/env node
// The measurable shape of the code (docs/architecture.md): source files and functions of bounded length, no import
// circle (between files or between packages), packages importing only what their layer allows, and small main entries.
// Usage: node scripts/check-architecture.mjs [--report]   (--report prints the measurements even when all pass)
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const report = process.argv.includes('--report');

export const LIMITS = Object.freeze({ fileLines: 600, functionLines: 120, mainEntryNames: 40 });
/** Main entries whose exported names are counted (the user API; internals live behind subpaths). */
const COUNTED_ENTRIES = ['data', 'data-backup'];

/** What each package may import (workspace packages only): the layers of docs/architecture.md. */
const LAYERS = {
  core: [],
  data: ['core'],
  storage: ['core'],
  'storage-s3': ['core', 'storage'],
  'storage-azure': ['core', 'storage'],
  'data-sqlite': ['core', 'data'],
  'data-postgres': ['core', 'data'],
  'data-mysql': ['core', 'data'],
  'data-redis': ['core', 'data'],
  'data-lancedb': ['core', 'data'],
  'data-backup': ['core', 'data', 'storage'],
  http: ['core', 'data', 'storage', 'data-backup'],
  cli: ['core', 'data', 'storage', 'data-backup', 'http'],
};

const packagesDir = join(root, 'packages');
const packages = readdirSync(packagesDir).filter((p) => !p.startsWith('.'));
const nameOf = new Map(); // npm name -> dir
for (const p of packages) {
  try {
    nameOf.set(JSON.parse(readFileSync(join(packagesDir, p, 'package.json'), 'utf8')).name, p);
  } catch {}
}

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (/\.(ts|tsx)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield full;
  }
}

const problems = [];
const rows = { files: [], functions: [] };
const fileGraph = new Map(); // file -> Set(file)
const packageGraph = new Map(); // package dir -> Set(package dir)

for (const pkg of packages) {
  const src = join(packagesDir, pkg, 'src');
  let files;
  try {
    files = [...sourceFiles(src)];
  } catch {
    continue;
  }
  packageGraph.set(pkg, packageGraph.get(pkg) ?? new Set());
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(root, file);
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    rows.files.push([rel, lines]);
    if (lines > LIMITS.fileLines) problems.push(`${rel}: ${lines} lines (at most ${LIMITS.fileLines})`);
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const edges = new Set();
    fileGraph.set(file, edges);
    const visit = (node) => {
      if (
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
        node.moduleSpecifier &&
        ts.isStringLiteral(node.moduleSpecifier)
      ) {
        const spec = node.moduleSpecifier.text;
        // Type-only imports count too: a circle of types is still two modules that cannot be understood apart.
        if (spec.startsWith('.')) edges.add(resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
        else {
          const m = /^(@koan\/[^/]+|koan-backup)/.exec(spec);
          const target = m && nameOf.get(m[1]);
          if (target && target !== pkg) {
            packageGraph.get(pkg).add(target);
            const allowed = LAYERS[pkg];
            if (allowed && !allowed.includes(target))
              problems.push(
                `${rel}: imports ${spec}; ${pkg} may import only ${allowed.join(', ') || 'no workspace package'}`,
              );
          }
        }
      }
      if (
        ts.isFunctionDeclaration(node) ||
        ts.isMethodDeclaration(node) ||
        ts.isFunctionExpression(node) ||
        ts.isArrowFunction(node) ||
        ts.isConstructorDeclaration(node) ||
        ts.isGetAccessorDeclaration(node) ||
        ts.isSetAccessorDeclaration(node)
      ) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        const length = end - start + 1;
        const name = node.name?.getText(sf) ?? nameOfAnonymous(node, sf);
        rows.functions.push([`${rel}:${start + 1} ${name}`, length]);
        if (length > LIMITS.functionLines)
          problems.push(`${rel}:${start + 1}: function ${name} is ${length} lines (at most ${LIMITS.functionLines})`);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
}

function nameOfAnonymous(node, sf) {
  const parent = node.parent;
  if (
    parent &&
    (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent))
  )
    return parent.name.getText(sf);
  if (parent && ts.isCallExpression(parent)) {
    const callee = parent.expression.getText(sf);
    const first = parent.arguments[0];
    return `${callee}(${first && ts.isStringLiteral(first) ? JSON.stringify(first.text) : '...'}) callback`;
  }
  return '(anonymous)';
}

/** Every elementary cycle found by a depth-first search (each reported once, from its smallest member). */
function cycles(graph) {
  const found = new Map();
  const state = new Map();
  const stack = [];
  const dfs = (node) => {
    state.set(node, 1);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === 1) {
        const cycle = stack.slice(stack.indexOf(next));
        const min = [...cycle].sort()[0];
        const i = cycle.indexOf(min);
        const canonical = [...cycle.slice(i), ...cycle.slice(0, i)];
        found.set(canonical.join(' -> '), canonical);
      } else if (!state.has(next)) dfs(next);
    }
    stack.pop();
    state.set(node, 2);
  };
  for (const node of graph.keys()) if (!state.has(node)) dfs(node);
  return [...found.values()];
}

for (const cycle of cycles(fileGraph))
  problems.push(`import circle: ${[...cycle, cycle[0]].map((f) => relative(root, f)).join(' -> ')}`);
for (const cycle of cycles(packageGraph)) problems.push(`package circle: ${[...cycle, cycle[0]].join(' -> ')}`);

// Names a main entry exports, as the type checker sees them (values and types, re-exports followed).
const entryCounts = [];
for (const pkg of COUNTED_ENTRIES) {
  const entry = join(packagesDir, pkg, 'src', 'index.ts');
  const program = ts.createProgram([entry], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(entry));
  const names = symbol ? checker.getExportsOfModule(symbol).map((s) => s.name) : [];
  entryCounts.push([pkg, names.length]);
  if (names.length > LIMITS.mainEntryNames)
    problems.push(
      `@koan/${pkg} main entry exports ${names.length} names (at most ${LIMITS.mainEntryNames}; internals belong behind a subpath)`,
    );
}

if (report || problems.length) {
  const top = (list, n) =>
    list
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([what, n]) => `  ${String(n).padStart(5)}  ${what}`)
      .join('\n');
  console.log(`Longest files (limit ${LIMITS.fileLines}):\n${top(rows.files, 10)}`);
  console.log(`Longest functions (limit ${LIMITS.functionLines}):\n${top(rows.functions, 10)}`);
  console.log(
    `Main entry names (limit ${LIMITS.mainEntryNames}): ${entryCounts.map(([p, n]) => `${p} ${n}`).join(', ')}`,
  );
}
if (problems.length) {
  console.error(`\narchitecture check: ${problems.length} problem(s)\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  process.exit(1);
}
console.log(
  `architecture check: ${rows.files.length} source files, ${rows.functions.length} functions, no circle, within every limit`,
);

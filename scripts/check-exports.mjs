// Fails when a package's hand-written `exports` point at files the build did not produce,
// or when an export's source and built entries disagree.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const problems = [];
for (const dir of readdirSync(join(root, 'packages'))) {
  const pkgDir = join(root, 'packages', dir);
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const targets = new Set();
  for (const [sub, conditions] of Object.entries(pkg.exports ?? {})) {
    if (typeof conditions === 'string') {
      // A plain file (the CLI's koan.config.schema.json): it must exist.
      if (!existsSync(join(pkgDir, conditions)))
        problems.push(`${pkg.name} exports["${sub}"] -> ${conditions} does not exist`);
      continue;
    }
    for (const [condition, target] of Object.entries(conditions)) {
      const file = join(pkgDir, target);
      if (!existsSync(file))
        problems.push(`${pkg.name} exports["${sub}"].${condition} -> ${target} does not exist (run npm run build?)`);
      if (condition === 'import') targets.add(file);
    }
  }
  for (const bin of Object.values(typeof pkg.bin === 'string' ? { bin: pkg.bin } : (pkg.bin ?? {}))) {
    if (!existsSync(join(pkgDir, bin))) problems.push(`${pkg.name} bin ${bin} does not exist`);
  }
  // the source entry and the built entry of every export must correspond
  for (const [sub, conditions] of Object.entries(pkg.exports ?? {})) {
    if (typeof conditions === 'string') continue;
    const src = conditions['koan-source'];
    const built = conditions.import;
    if (src && built && src.replace(/^\.\/src\//, './dist/').replace(/\.ts$/, '.js') !== built)
      problems.push(`${pkg.name} exports["${sub}"]: source ${src} and build ${built} disagree`);
    // require() gets the same ES module (Node 20.19+ loads it; older 20.x say to use import()): never a second copy.
    if (conditions.require !== built)
      problems.push(
        `${pkg.name} exports["${sub}"].require should be ${built} (the ES module), not ${conditions.require}`,
      );
  }
}
if (problems.length) {
  console.error(`exports check failed:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log('exports check: every package export resolves to a built file');

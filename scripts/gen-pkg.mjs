// one-off scaffolding helper (kept for adding packages consistently)
import { writeFileSync } from 'node:fs';

const pkgs = {
  data: {
    name: '@koan/data',
    desc: 'Entities with runtime schemas, zero-config discovery, the data adapter contract, memory and JSON-file adapters',
    deps: { zod: '^4.1.0' },
    sub: ['testing'],
  },
  'data-sqlite': {
    name: '@koan/data-sqlite',
    desc: 'SQLite data adapter for @koan/data (better-sqlite3)',
    deps: { '@koan/data': '0.1.0', 'better-sqlite3': '12.11.1' },
  },
  'data-postgres': {
    name: '@koan/data-postgres',
    desc: 'PostgreSQL data adapter for @koan/data (pg)',
    deps: { '@koan/data': '0.1.0', pg: '8.23.1', 'pg-copy-streams': '7.0.0' },
  },
  'data-mysql': {
    name: '@koan/data-mysql',
    desc: 'MariaDB/MySQL data adapter for @koan/data (mysql2)',
    deps: { '@koan/data': '0.1.0', mysql2: '^3.24.0' },
  },
  'data-redis': {
    name: '@koan/data-redis',
    desc: 'Redis data adapter for @koan/data (ioredis)',
    deps: { '@koan/data': '0.1.0', ioredis: '6.0.0' },
  },
  'data-lancedb': {
    name: '@koan/data-lancedb',
    desc: 'LanceDB vector data adapter for @koan/data',
    deps: { '@koan/data': '0.1.0', '@lancedb/lancedb': '0.31.0', 'apache-arrow': '18.1.0' },
  },
  storage: {
    name: '@koan/storage',
    desc: 'Storage profiles: the streaming storage contract, local disk and memory drivers',
    deps: { zod: '^4.1.0' },
    sub: ['testing'],
  },
  'storage-s3': {
    name: '@koan/storage-s3',
    desc: 'S3 storage driver for @koan/storage',
    deps: { '@koan/storage': '0.1.0', '@aws-sdk/client-s3': '3.1175.0', '@aws-sdk/lib-storage': '3.1175.0' },
  },
  'storage-azure': {
    name: '@koan/storage-azure',
    desc: 'Azure Blob storage driver for @koan/storage',
    deps: { '@koan/storage': '0.1.0', '@azure/storage-blob': '12.29.1' },
  },
  'data-backup': {
    name: '@koan/data-backup',
    desc: 'Backup and restore for @koan/data entities: ZIP+JSONL archives, catalog, validation, retention',
    deps: {
      '@koan/data': '0.1.0',
      '@koan/storage': '0.1.0',
      yazl: '3.3.1',
      yauzl: '3.4.0',
      croner: '11.0.1',
      zod: '^4.1.0',
    },
  },
  cli: {
    name: 'koan-backup',
    desc: 'Command line for Koan data backups',
    deps: {
      '@koan/data': '0.1.0',
      '@koan/storage': '0.1.0',
      '@koan/data-backup': '0.1.0',
      '@koan/data-sqlite': '0.1.0',
      citty: '0.2.2',
    },
    bin: { 'koan-backup': './dist/bin.js' },
  },
  http: {
    name: '@koan/backup-http',
    desc: 'HTTP API and web dashboard for Koan data backups (hono)',
    deps: {
      '@koan/data': '0.1.0',
      '@koan/storage': '0.1.0',
      '@koan/data-backup': '0.1.0',
      hono: '^4.9.0',
      '@hono/node-server': '^1.19.0',
    },
  },
};
for (const [dir, p] of Object.entries(pkgs)) {
  const exp = { '.': { 'koan-source': './src/index.ts', types: './dist/index.d.ts', import: './dist/index.js' } };
  for (const s of p.sub ?? [])
    exp[`./${s}`] = {
      'koan-source': `./src/${s}/index.ts`,
      types: `./dist/${s}/index.d.ts`,
      import: `./dist/${s}/index.js`,
    };
  const json = {
    name: p.name,
    version: '0.1.0',
    description: p.desc,
    license: 'MIT',
    type: 'module',
    engines: { node: '>=20.11' },
    exports: exp,
    ...(p.bin ? { bin: p.bin } : {}),
    files: ['dist', 'src', 'README.md'],
    dependencies: p.deps,
  };
  const file = `packages/${dir}/package.json`;
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  const refs = Object.keys(p.deps)
    .filter((d) => d.startsWith('@koan/') || d === 'koan-backup')
    .map((d) => ({ path: `../${Object.entries(pkgs).find(([, q]) => q.name === d)[0]}` }));
  writeFileSync(
    `packages/${dir}/tsconfig.json`,
    JSON.stringify(
      {
        extends: '../../tsconfig.base.json',
        compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
        include: ['src'],
        exclude: ['src/**/*.test.ts'],
        references: refs,
      },
      null,
      2,
    ) + '\n',
  );
}
writeFileSync(
  'tsconfig.json',
  JSON.stringify({ files: [], references: Object.keys(pkgs).map((d) => ({ path: `packages/${d}` })) }, null, 2) + '\n',
);

/**
 * Using Koan from an installation that is not the project's: a CLI run through npx or installed globally must find the
 * drivers the project installed, share the project's entity registry, and recognise the project's errors.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataError, DataRuntime, KoanError, registeredEntities } from '../src/index.js';

let project: string;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'koan-project-'));
  // A driver installed in the project only (this installation has no @koan/data-fake): an ESM package with `exports`.
  const pkg = join(project, 'node_modules', '@koan', 'data-fake');
  mkdirSync(join(pkg, 'dist'), { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: '@koan/data-fake', type: 'module', exports: { '.': { import: './dist/index.js' } } }),
  );
  writeFileSync(
    join(pkg, 'dist', 'index.js'),
    `export const provider = { name: 'fake', create: (settings, context) => ({ provider: 'fake', source: context.source, cwd: context.cwd, settings, init: async () => {}, close: async () => {} }) };\n`,
  );
  mkdirSync(join(project, 'app', 'nested'), { recursive: true });
});
afterAll(() => rmSync(project, { recursive: true, force: true }));

describe('an installation outside the project', () => {
  it('loads a driver from the project around the working directory (walking up, like Node)', async () => {
    const runtime = new DataRuntime({ cwd: join(project, 'app', 'nested'), sources: { db: { provider: 'fake' } } });
    const adapter = (await runtime.adapter('db')) as unknown as { provider: string; source: string };
    expect(adapter).toMatchObject({ provider: 'fake', source: 'db' });
    await runtime.close();
  });

  it('says where it looked when neither the project nor this installation has the driver', async () => {
    const elsewhere = mkdtempSync(join(tmpdir(), 'koan-empty-'));
    const runtime = new DataRuntime({ cwd: elsewhere, sources: { db: { provider: 'fake' } } });
    await expect(runtime.adapter('db')).rejects.toMatchObject({
      code: 'PROVIDER_NOT_INSTALLED',
      message: expect.stringContaining(`from the project in ${elsewhere} nor from this installation`),
    });
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it('shares one entity registry between copies of @koan/data, through a global symbol', () => {
    const shared = (globalThis as Record<symbol, { major: number; entities: Map<string, unknown> }>)[
      Symbol.for('koan.data.entity-registry')
    ];
    expect(shared?.entities).toBeInstanceOf(Map);
    expect([...shared!.entities.values()]).toEqual(registeredEntities());
  });

  it('recognises Koan errors made by another copy of the package (instanceof by brand and name)', () => {
    // What another copy's classes look like: the same names and brand, other constructors.
    const brand = Symbol.for('koan.error');
    class OtherKoanError extends Error {
      constructor(message: string) {
        super(message);
        Object.defineProperty(this, brand, { value: true });
      }
    }
    class OtherDataError extends OtherKoanError {}
    Object.defineProperty(OtherDataError, 'name', { value: 'DataError' });
    Object.defineProperty(OtherKoanError, 'name', { value: 'KoanError' });
    const foreign = new OtherDataError('from the project');
    expect(foreign instanceof KoanError).toBe(true);
    expect(foreign instanceof DataError).toBe(true);
    expect(new OtherKoanError('x') instanceof DataError).toBe(false);
    expect(new Error('plain') instanceof KoanError).toBe(false);
    expect(new DataError('C', 'own') instanceof KoanError).toBe(true);
  });
});

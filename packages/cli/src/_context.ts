import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DataRuntime, type SourceConfig } from '@koan/data';
import { dataConfigSchema, loadKoanConfig, parseConfigSection } from '@koan/data/config';
import { BackupContext } from '@koan/data-backup';
import { listOption } from './_args.js';
import { CLIError, ExitCode, usageError } from './_errors.js';
import type { Session } from './_io.js';

export interface ContextArgs {
  readonly config?: string | undefined;
  readonly cwd?: string | undefined;
}

/** The directory the app runs in: `--cwd` against the caller's directory. */
export function appDir(session: Session, args: ContextArgs): string {
  return args.cwd ? resolve(session.cwd, args.cwd) : session.cwd;
}

/**
 * Refuses a `--cwd` that is not an existing directory: a typo must not read an empty catalog (and report zero
 * backups) or create a fresh app directory somewhere unexpected.
 */
export function checkAppDir(session: Session, args: ContextArgs): void {
  if (!args.cwd) return;
  const dir = appDir(session, args);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    throw usageError(
      `--cwd ${args.cwd}: no such directory (${dir}).`,
      `Pass the app's existing directory (relative paths resolve against ${session.cwd}); --cwd never creates one.`,
    );
  }
  if (!isDirectory)
    throw usageError(
      `--cwd ${args.cwd}: ${dir} is a file, not a directory.`,
      "Pass the app's directory (where koan.config.json is), not a file in it; --config <file> names a config file.",
    );
}

function configFile(session: Session, args: ContextArgs): string | undefined {
  if (!args.config) return undefined;
  return isAbsolute(args.config) ? args.config : resolve(session.cwd, args.config);
}

/** The configured data sources (`Koan.Data.Sources`, or the embedded default when none). */
export function configuredSources(session: Session, args: ContextArgs): Record<string, SourceConfig> | undefined {
  const cwd = appDir(session, args);
  const file = configFile(session, args);
  const loaded = loadKoanConfig({ cwd, env: session.env, ...(file ? { file } : {}) });
  const data = parseConfigSection(dataConfigSchema, loaded.koan.data, ['Koan', 'Data'], loaded.file);
  return data.sources ? { ...data.sources } : undefined;
}

/**
 * A backup context from koan.config.json + `Koan__...` env in the app directory. `sources` replaces the
 * configured data sources (`--source`), `extraSources` adds to them (`--target-source <url>`).
 */
export async function openContext(
  session: Session,
  args: ContextArgs,
  options: { sources?: Record<string, SourceConfig>; extraSources?: Record<string, SourceConfig> } = {},
): Promise<BackupContext> {
  const cwd = appDir(session, args);
  const file = configFile(session, args);
  let runtime: DataRuntime | undefined;
  if (options.sources || options.extraSources) {
    const base = options.sources ?? configuredSources(session, args);
    runtime = new DataRuntime({
      cwd,
      sources: {
        ...(base ?? { default: { provider: 'sqlite', settings: { path: '.koan/data.sqlite' } } }),
        ...options.extraSources,
      },
    });
  }
  return BackupContext.fromConfig({
    cwd,
    env: session.env,
    ...(file ? { file } : {}),
    ...(runtime ? { runtime } : {}),
  });
}

/** Runs `fn` with a context and closes it afterwards, whatever happens. */
export async function withContext<T>(
  session: Session,
  args: ContextArgs,
  fn: (context: BackupContext) => Promise<T>,
  options: Parameters<typeof openContext>[2] = {},
): Promise<T> {
  const context = await openContext(session, args, options);
  try {
    return await fn(context);
  } finally {
    await context.close();
  }
}

/** Imports the app's entity modules (`--import`), so their `defineEntity` calls register them for discovery. */
export async function importEntityModules(
  session: Session,
  args: ContextArgs,
  rawArgs: readonly string[],
): Promise<string[]> {
  const modules = listOption(rawArgs, 'import');
  const base = appDir(session, args);
  for (const spec of modules) {
    const isPath = spec.startsWith('.') || isAbsolute(spec) || /\.(m?js|cjs)$/.test(spec);
    const target = isPath ? pathToFileURL(resolve(base, spec)).href : spec;
    try {
      await import(target);
    } catch (e) {
      throw new CLIError(`Cannot import ${spec}: ${(e as Error).message}`, 'IMPORT_FAILED', {
        exitCode: ExitCode.USAGE,
        hint: 'Pass the built JavaScript module that calls defineEntity (e.g. ./dist/entities.js), relative to --cwd.',
        cause: e,
      });
    }
  }
  return modules;
}

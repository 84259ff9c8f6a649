/**
 * The CLI as a newcomer runs it: the built `node packages/cli/dist/bin.js`, as a child process, in a temporary working
 * directory with no configuration, so backups land in the default local profile (`./backups` there). Nothing of the
 * project is imported: the suite sees only exit codes, stdout (`--json`) and stderr.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI_BIN = join(REPO_ROOT, 'packages/cli/dist/bin.js');

/** The packages a `--source` backup and restore run through: their build must be newer than their sources. */
const PACKAGES = ['cli', 'data', 'data-backup', 'data-postgres', 'data-mysql', 'data-sqlite', 'storage'];

/** The `error` of a failed `--json` run. */
export interface CliError {
  readonly code: string;
  readonly message: string;
  readonly exitCode?: number;
  readonly details?: Record<string, unknown>;
}

/**
 * The parts of a `--json` document the suite reads: a backup's manifest (status, entities, omitted), a restore's
 * report (status, entities) or an error. Nothing else is assumed of it.
 */
export interface CliJson {
  readonly status?: string;
  readonly error?: CliError;
  readonly entities?: readonly {
    readonly entityType: string;
    readonly status: string;
    readonly itemCount: number;
    readonly keyType: string;
    readonly errorMessage?: string;
  }[];
  readonly omitted?: readonly {
    readonly source: string;
    readonly name: string;
    readonly kind: string;
    readonly reason: string;
  }[];
}

export interface CliRun {
  readonly args: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed (every run passes `--json`), or undefined when it is not one JSON document. */
  readonly json: CliJson | undefined;
}

export function cliError(run: CliRun): CliError | undefined {
  const e = run.json?.error;
  return e && typeof e === 'object' ? (e as CliError) : undefined;
}

function newest(dir: string): { path: string; mtime: number } {
  let best = { path: dir, mtime: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const candidate = entry.isDirectory() ? newest(path) : { path, mtime: statSync(path).mtimeMs };
    if (candidate.mtime > best.mtime) best = candidate;
  }
  return best;
}

/**
 * Why the built CLI cannot be trusted to be the code under test (missing, or older than a source file), or undefined.
 * The suite refuses to run then: results of a stale build would blame or clear the wrong code.
 */
export function staleBuild(): string | undefined {
  if (!existsSync(CLI_BIN)) return `${CLI_BIN} does not exist: run \`npx tsc -b\` at the repository root first`;
  for (const pkg of PACKAGES) {
    const built = join(REPO_ROOT, 'packages', pkg, 'dist', '.tsbuildinfo');
    if (!existsSync(built)) return `packages/${pkg} is not built: run \`npx tsc -b\``;
    const src = newest(join(REPO_ROOT, 'packages', pkg, 'src'));
    if (src.mtime > statSync(built).mtimeMs)
      return `${src.path} is newer than the build of packages/${pkg}: run \`npx tsc -b\``;
  }
  return undefined;
}

/** A working directory for CLI runs: no config in it, so `./backups` is the default local profile. */
export interface CliWorkspace {
  readonly dir: string;
  run(args: readonly string[]): Promise<CliRun>;
  remove(): void;
}

export function cliWorkspace(label: string): CliWorkspace {
  const dir = mkdtempSync(join(tmpdir(), `koan-fidelity-${label}-`));
  // The child sees no configuration of the machine it runs on: only PATH/HOME-like basics.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(koan|KOAN_CONFIG)/i.test(k) && !/^(CI|VITEST.*|NODE_OPTIONS)$/.test(k)) env[k] = v;
  return {
    dir,
    run: (args) => runCli(args, dir, env),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function runCli(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<CliRun> {
  const all = [...args, '--json'];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_BIN, ...all],
      { cwd, env, maxBuffer: 1 << 28, timeout: 600_000 },
      (err, stdout, stderr) => {
        const exitCode = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        let json: CliJson | undefined;
        try {
          json = JSON.parse(stdout) as CliJson;
        } catch {
          json = undefined;
        }
        resolve({ args: all, exitCode, stdout, stderr, json });
      },
    );
  });
}

/** One line describing a run, for assertion messages. */
export function describeRun(run: CliRun): string {
  const e = cliError(run);
  const what = e ? `${e.code}: ${e.message}` : run.json ? `status ${run.json.status}` : run.stdout.slice(0, 400);
  return `koan-backup ${run.args.join(' ')} → exit ${run.exitCode}; ${what}${run.stderr ? `; stderr: ${run.stderr.slice(0, 400)}` : ''}`;
}

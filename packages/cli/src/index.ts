/**
 * `koan-backup`: the command line of Koan data backups. `runCli` runs one command line in-process
 * (tests, embedding) and returns its exit code; only `runMain` touches `process`.
 *
 * @example
 * import { runCli } from 'koan-backup';
 * const code = await runCli(['list', '--json'], { stdout: process.stdout, stderr: process.stderr, cwd: '/srv/app' });
 */
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline/promises';
import { type CommandDef, defineCommand, renderUsage, runCommand } from 'citty';
import { globalArgs } from './_args.js';
import { detailsOf, examplesOf } from './_command.js';
import {
  CLIError,
  codeOf,
  ExitCode,
  errorDocument,
  exitCodeOf,
  fromCittyError,
  hintOf,
  usageError,
} from './_errors.js';
import { stripAnsi } from './_format.js';
import { type CliIO, Session } from './_io.js';
import { pipeSafeWriter, suppressSdkNodeVersionWarning } from './_process.js';

export { CLIError, ExitCode } from './_errors.js';
export type { CliIO } from './_io.js';

const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

// biome-ignore lint/suspicious/noExplicitAny: citty's own type for commands of any arguments
type AnyCommand = CommandDef<any>;
type Loader = () => Promise<AnyCommand>;
const load =
  (f: () => Promise<{ default: unknown }>): Loader =>
  async () =>
    (await f()).default as AnyCommand;

/** Subcommands, loaded on first use so `koan-backup list` never loads the demo or the restore engine. */
const commands: Record<string, Loader> = {
  backup: load(() => import('./_commands/backup.js')),
  restore: load(() => import('./_commands/restore.js')),
  list: load(() => import('./_commands/list.js')),
  inspect: load(() => import('./_commands/inspect.js')),
  validate: load(() => import('./_commands/validate.js')),
  query: load(() => import('./_commands/query.js')),
  stats: load(() => import('./_commands/stats.js')),
  delete: load(() => import('./_commands/delete.js')),
  copy: load(() => import('./_commands/copy.js')),
  cleanup: load(() => import('./_commands/cleanup.js')),
  adopt: load(() => import('./_commands/adopt.js')),
  prune: load(() => import('./_commands/prune.js')),
  monitor: load(() => import('./_commands/monitor.js')),
  serve: load(() => import('./_commands/serve.js')),
  entities: load(() => import('./_commands/entities.js')),
  demo: load(() => import('./_commands/demo.js')),
  init: load(() => import('./_commands/init.js')),
};

/** The root command: global options and the subcommands. */
export const main = defineCommand({
  meta: {
    name: 'koan-backup',
    version: VERSION,
    description: 'Back up, restore, validate and browse Koan data backups',
  },
  args: globalArgs,
  subCommands: commands,
});

const MAIN_EXAMPLES = [
  '# See everything work end to end in a scratch directory',
  'koan-backup demo',
  '# Back up every entity of the app in the current directory, then list the catalog',
  'koan-backup backup nightly --import ./dist/entities.js',
  'koan-backup list',
  '# Back up an existing database with no code',
  'koan-backup backup shop --source postgres://user:pass@localhost:5432/shop',
];

const MAIN_FOOTER = `EXIT CODES

  0  success
  1  failure (the message names the cause); also a backup or restore that finished with entity sets failed
     (PartiallyCompleted or Failed: the report is printed, with its status)
  2  usage error: unknown option, bad value, or invalid configuration
  3  validation failed: damaged archive, failed pre-restore checks, incompatible schema,
     tables a backup cannot take that are not excluded
  4  not found: no such backup, entity or source file
  (monitor: 1 when the backups are unhealthy; the problems are printed, --json with "healthy": false)
  130  cancelled (Ctrl-C)

CONFIGURATION

  koan.config.json in --cwd (or --config <file>, or $KOAN_CONFIG): Koan.Data.Sources, Koan.Storage.Profiles,
  Koan.Backup. Any value can be overridden with env vars: Koan__Storage__DefaultProfile=s3, Koan__Backup__CompressionLevel=6.
  With no config: SQLite data at .koan/data.sqlite and local storage profile "local" at ./backups.`;

/** Flags that take a value before the command name. */
const GLOBAL_VALUE_FLAGS = new Set(['--config', '--cwd']);

function locateCommand(argv: readonly string[]): number {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return -1;
    if (arg.startsWith('-')) {
      if (GLOBAL_VALUE_FLAGS.has(arg)) i++;
      continue;
    }
    return i;
  }
  return -1;
}

function before(argv: readonly string[], flags: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => flags.includes(a));
}

/**
 * The NO_COLOR convention (no-color.org): any non-empty value turns colour off (citty's own check wants exactly "1");
 * so does a dumb terminal.
 */
export function noColor(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env.NO_COLOR !== undefined && env.NO_COLOR !== '') || env.TERM === 'dumb';
}

async function helpText(session: Session, cmd: AnyCommand, parent?: AnyCommand): Promise<string> {
  const usage = await renderUsage(cmd, parent);
  const examples = cmd === main ? MAIN_EXAMPLES : examplesOf(cmd);
  const lines = [usage.trimEnd(), ''];
  if (examples.length) lines.push('EXAMPLES', '', ...examples.map((e) => `  ${e}`), '');
  const details = detailsOf(cmd);
  if (details) lines.push(details, '');
  if (cmd === main) lines.push(MAIN_FOOTER, '');
  else
    lines.push(
      'Exit codes: 0 ok, 1 failure, 2 usage, 3 validation failed, 4 not found. Global help: koan-backup --help',
      '',
    );
  const text = (session.isTTY && !noColor(session.env) ? lines.join('\n') : stripAnsi(lines.join('\n')))
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
  return text;
}

function closest(name: string): string | undefined {
  const distance = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  const best = Object.keys(commands)
    .map((c) => [c, distance(name, c)] as const)
    .sort((a, b) => a[1] - b[1])[0];
  return best && best[1] <= 2 ? best[0] : undefined;
}

/**
 * Runs one command line (without the `node` and script arguments) and returns the exit code.
 * Output goes only to `io.stdout` / `io.stderr`; nothing touches `process`.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const session = new Session(io);
  session.json = before(argv, ['--json']);
  const index = locateCommand(argv);
  const name = index === -1 ? undefined : argv[index]!;
  let commandName = '';
  try {
    if (name === undefined) {
      if (before(argv, ['--version', '-v'])) {
        io.stdout.write(`${VERSION}\n`);
        return ExitCode.OK;
      }
      const text = await helpText(session, main as AnyCommand);
      if (before(argv, ['--help', '-h'])) {
        io.stdout.write(`${text}\n`);
        return ExitCode.OK;
      }
      io.stderr.write(`${text}\n`);
      throw usageError('No command given.', 'Try `koan-backup demo`, or `koan-backup <command> --help`.');
    }
    const loader = commands[name];
    if (!loader) {
      const guess = closest(name);
      throw usageError(
        `Unknown command "${name}".`,
        `${guess ? `Did you mean \`koan-backup ${guess}\`? ` : ''}Commands: ${Object.keys(commands).join(', ')}.`,
      );
    }
    commandName = name;
    const cmd = await loader();
    if (before(argv, ['--help', '-h'])) {
      io.stdout.write(`${await helpText(session, cmd, main as AnyCommand)}\n`);
      return ExitCode.OK;
    }
    const rawArgs = [...argv.slice(0, index), ...argv.slice(index + 1)];
    const { result } = await runCommand(cmd, { rawArgs, data: session });
    return typeof result === 'number' ? result : ExitCode.OK;
  } catch (error) {
    return reportError(session, fromCittyError(error, commandName), commandName);
  }
}

function reportError(session: Session, error: unknown, command: string): number {
  const exitCode = exitCodeOf(error);
  if (session.json) {
    session.printJson(errorDocument(error, exitCode));
    return exitCode;
  }
  const message = stripAnsi(error instanceof Error ? error.message : String(error));
  const hint = hintOf(error, command || '<command>');
  const known = error instanceof CLIError || codeOf(error) !== 'ERROR';
  const err = session.io.stderr;
  err.write(`Error [${codeOf(error)}]: ${message}\n`);
  if (hint) err.write(`Hint: ${hint}\n`);
  // Unexpected errors keep their stack: they are bugs to report, not situations to explain.
  if (!known && error instanceof Error && error.stack && session.env.KOAN_DEBUG) err.write(`${error.stack}\n`);
  return exitCode;
}

/** Runs the command line of this process: `process.argv`, Ctrl-C cancels, sets `process.exitCode`. */
export async function runMain(): Promise<void> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) process.exit(ExitCode.CANCELLED); // a second Ctrl-C does not wait
    process.stderr.write('\nCancelling (Ctrl-C again to quit at once)...\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  const restoreWarnings = suppressSdkNodeVersionWarning();
  try {
    process.exitCode = await runCli(process.argv.slice(2), {
      stdout: pipeSafeWriter(process.stdout),
      stderr: pipeSafeWriter(process.stderr),
      binaryOut: process.stdout,
      isTTY: Boolean(process.stderr.isTTY),
      cwd: process.cwd(),
      env: process.env,
      signal: controller.signal,
      ...(interactive
        ? {
            confirm: async (question: string) => {
              const rl = createInterface({ input: process.stdin, output: process.stderr });
              try {
                return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
              } finally {
                rl.close();
              }
            },
          }
        : {}),
    });
  } finally {
    restoreWarnings();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

import { type ArgsDef, type CommandDef, defineCommand, type ParsedArgs } from 'citty';
import { checkArgs } from './_args.js';
import { checkAppDir } from './_context.js';
import type { Session } from './_io.js';

export interface CliCommandOptions<T extends ArgsDef> {
  readonly meta: { readonly name: string; readonly description: string };
  readonly args: T;
  /** Shown under EXAMPLES in `--help`: complete command lines, each with a `# what it does` comment. */
  readonly examples: readonly string[];
  /** Shown after the examples in `--help`: what the command needs to know beyond its options (a config example...). */
  readonly details?: string;
  /** Returns the exit code (default 0). */
  readonly run: (args: ParsedArgs<T>, session: Session, rawArgs: readonly string[]) => Promise<number | undefined>;
}

const EXAMPLES = new WeakMap<object, readonly string[]>();
const DETAILS = new WeakMap<object, string>();

/** A citty command whose `run` receives the session (`runCommand`'s `data`) and whose help carries examples. */
export function defineCliCommand<const T extends ArgsDef>(options: CliCommandOptions<T>): CommandDef<T> {
  const cmd = defineCommand<T>({
    meta: { ...options.meta },
    args: options.args,
    run: async (ctx) => {
      const session = ctx.data as Session;
      checkArgs(ctx.rawArgs, options.args, options.meta.name);
      const cwd = (ctx.args as { cwd?: unknown }).cwd;
      if (typeof cwd === 'string') checkAppDir(session, { cwd });
      return (await options.run(ctx.args, session, ctx.rawArgs)) ?? 0;
    },
  });
  EXAMPLES.set(cmd, options.examples);
  if (options.details) DETAILS.set(cmd, options.details);
  return cmd;
}

export function examplesOf(cmd: object): readonly string[] {
  return EXAMPLES.get(cmd) ?? [];
}

export function detailsOf(cmd: object): string | undefined {
  return DETAILS.get(cmd);
}

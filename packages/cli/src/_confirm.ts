import { CLIError, ExitCode, usageError } from './_errors.js';
import type { Session } from './_io.js';

/**
 * Gate for destructive operations: `--yes` confirms; on a terminal the user is asked; anywhere else
 * (scripts, CI, --json) the command refuses, so nothing is destroyed by accident.
 */
export async function confirmDestructive(
  session: Session,
  options: {
    yes: boolean | undefined;
    question: string;
    /** What needs confirming, as the user typed it: `prune`, `delete`, `--replace`. */
    flag: string;
    /** The command line to suggest, without `--yes`: `prune --keep-last 3`, `restore nightly --replace`. */
    command: string;
  },
): Promise<void> {
  if (options.yes) return;
  if (session.isTTY && !session.json && session.io.confirm) {
    if (await session.io.confirm(options.question)) return;
    throw new CLIError('Not confirmed; nothing was changed.', 'NOT_CONFIRMED', { exitCode: ExitCode.FAILURE });
  }
  throw usageError(
    `${options.flag} needs confirmation, and this is not an interactive terminal.`,
    `Add --yes to confirm: koan-backup ${options.command} --yes`,
  );
}

import { type CliIO, runCli } from '../src/index.js';

/** What one command line printed and returned. */
export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  json<T = Record<string, unknown>>(): T;
}

/** Runs one command line in `cwd` (no terminal, an empty environment unless `io` says otherwise), capturing output. */
export async function runIn(cwd: string, argv: readonly string[], io: Partial<CliIO> = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    isTTY: false,
    cwd,
    env: {},
    ...io,
  });
  return { code, stdout, stderr, json: <T>() => JSON.parse(stdout) as T };
}

/** Where a command reads its environment and writes its output; `runCli` takes one, so commands run without a process. */
export interface CliIO {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
  /** An interactive terminal: progress lines are drawn and destructive commands ask for confirmation. */
  readonly isTTY?: boolean;
  /** Directory relative paths and `--cwd` resolve against. Default `process.cwd()`. */
  readonly cwd?: string;
  /** Environment for `Koan__...` overrides and `${env:NAME}` references. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Cancels the running operation (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Asks a yes/no question on the terminal; only used when `isTTY`. */
  readonly confirm?: (question: string) => Promise<boolean>;
  /** Where bytes go for `backup --output -` (an archive on standard output). Default: none (refused). */
  readonly binaryOut?: NodeJS.WritableStream;
}

/** The state one command run shares with its helpers. */
export class Session {
  readonly io: CliIO;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly isTTY: boolean;
  json = false;

  constructor(io: CliIO) {
    this.io = io;
    this.cwd = io.cwd ?? process.cwd();
    this.env = io.env ?? process.env;
    this.isTTY = io.isTTY ?? false;
  }

  /** A line of human output on stdout (suppressed with --json, where stdout holds one JSON document). */
  print(line = ''): void {
    if (!this.json) this.io.stdout.write(`${line}\n`);
  }

  /** The one JSON document of a --json run. */
  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
  }

  /** Notes and warnings: stderr, never stdout; suppressed with --json. */
  note(line: string): void {
    if (!this.json) this.io.stderr.write(`${line}\n`);
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

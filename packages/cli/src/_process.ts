/** What `runMain` does to the process, beyond what `runCli` needs: kept here so it can be tested on its own. */

interface ErrorEmitter {
  write(chunk: string): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * A writer for `runCli` over stdout or stderr that goes quiet when the reader has gone (`koan-backup list | head -1`):
 * an `EPIPE` stops the output, not the command, like other Unix tools, and is never an unhandled stack trace.
 * The command still finishes what it started (a backup still publishes), with its own exit code.
 * Any other stream error is rethrown, as Node would.
 */
export function pipeSafeWriter(stream: ErrorEmitter): { write(chunk: string): boolean; readonly closed: boolean } {
  let closed = false;
  const isBrokenPipe = (e: unknown) => (e as { code?: unknown } | undefined)?.code === 'EPIPE';
  stream.on('error', (e) => {
    if (!isBrokenPipe(e)) throw e;
    closed = true;
  });
  return {
    write(chunk: string): boolean {
      if (closed) return false;
      try {
        stream.write(chunk);
        return true;
      } catch (e) {
        if (!isBrokenPipe(e)) throw e;
        closed = true;
        return false;
      }
    },
    get closed() {
      return closed;
    },
  };
}

/** The warning name the AWS SDK puts at the start of its Node.js end-of-support notice. */
const SDK_NODE_VERSION_WARNING = 'NodeVersionSupportWarning';

function nameOfWarning(warning: string | Error, rest: readonly unknown[]): string | undefined {
  const options = rest[0];
  const type =
    typeof options === 'string'
      ? options
      : typeof options === 'object' && options !== null
        ? (options as { type?: unknown }).type
        : undefined;
  if (typeof type === 'string' && type !== 'Warning') return type;
  if (warning instanceof Error) return warning.name === 'Warning' ? warning.message.split(':')[0] : warning.name;
  return warning.split(':')[0];
}

/**
 * Drops the AWS SDK's `NodeVersionSupportWarning` (printed on stderr the first time an S3 client is created, on
 * Node < 22), so a `--json` run with an S3 storage profile writes nothing but its JSON. Every other warning is
 * emitted as usual. Returns the function that restores `process.emitWarning`.
 */
export function suppressSdkNodeVersionWarning(proc: Pick<NodeJS.Process, 'emitWarning'> = process): () => void {
  const original = proc.emitWarning;
  const filtered = function emitWarning(this: unknown, warning: string | Error, ...rest: unknown[]): void {
    if (nameOfWarning(warning, rest) === SDK_NODE_VERSION_WARNING) return;
    (original as (...args: unknown[]) => void).call(this, warning, ...rest);
  };
  proc.emitWarning = filtered as NodeJS.Process['emitWarning'];
  return () => {
    if (proc.emitWarning === filtered) proc.emitWarning = original;
  };
}

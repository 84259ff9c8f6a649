/** What `runMain` does to the process: quiet on a closed pipe, and no AWS SDK Node-version notice on stderr. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CLIError, errorDocument, fromCittyError, hintOf } from '../src/_errors.js';
import { pipeSafeWriter, suppressSdkNodeVersionWarning } from '../src/_process.js';

const SDK_WARNING = `NodeVersionSupportWarning: The AWS SDK for JavaScript (v3)
versions published after the first week of January 2027
will require node >=22. You are running node v20.0.0.`;

describe('pipeSafeWriter', () => {
  it('stops writing, without an unhandled EPIPE, when the reader of the pipe has gone (`list | head -1`)', async () => {
    // A reader that takes the first bytes and closes its end of the pipe, like `head -1`; it says so on stdout.
    const reader = [
      "const fs = require('node:fs');",
      'fs.readSync(0, Buffer.alloc(16));',
      'fs.closeSync(0);',
      "process.stdout.write('closed');",
      'setTimeout(() => {}, 10000);',
    ].join(' ');
    const child = spawn(process.execPath, ['-e', reader], { stdio: ['pipe', 'pipe', 'ignore'] });
    try {
      const writer = pipeSafeWriter(child.stdin);
      expect(writer.write('NAME  ID\n')).toBe(true);
      await once(child.stdout, 'data');
      const line = `${'x'.repeat(1000)}\n`;
      // Without the guard, the EPIPE is an unhandled 'error' event: an uncaught exception with a stack trace.
      for (let i = 0; i < 200 && !writer.closed; i++) {
        writer.write(line);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(writer.closed).toBe(true);
      expect(writer.write(line)).toBe(false);
    } finally {
      child.kill();
    }
  });

  it('rethrows stream errors other than EPIPE', () => {
    let listener: ((e: Error) => void) | undefined;
    pipeSafeWriter({ write: () => true, on: (_event, l) => (listener = l) });
    const other = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    expect(() => listener!(other)).toThrow('disk full');
  });
});

describe('suppressSdkNodeVersionWarning', () => {
  it("drops the AWS SDK's NodeVersionSupportWarning and passes every other warning on", () => {
    const emitted: unknown[][] = [];
    const proc = { emitWarning: (...args: unknown[]) => void emitted.push(args) } as Pick<
      NodeJS.Process,
      'emitWarning'
    >;
    const original = proc.emitWarning;
    const restore = suppressSdkNodeVersionWarning(proc);
    proc.emitWarning(SDK_WARNING);
    proc.emitWarning('the same notice, typed', { type: 'NodeVersionSupportWarning' });
    proc.emitWarning('Buffer() is deprecated', 'DeprecationWarning');
    proc.emitWarning('Something: else');
    expect(emitted.map((a) => a[0])).toEqual(['Buffer() is deprecated', 'Something: else']);
    restore();
    expect(proc.emitWarning).toBe(original);
  });

  it('keeps the notice off the real process (no warning event) while installed', async () => {
    const seen: string[] = [];
    const onWarning = (w: Error) => seen.push(w.message);
    process.on('warning', onWarning);
    const restore = suppressSdkNodeVersionWarning();
    try {
      process.emitWarning(SDK_WARNING);
      process.emitWarning('koan-cli-test: another warning');
      await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      restore();
      process.off('warning', onWarning);
    }
    expect(seen).toEqual(['koan-cli-test: another warning']);
  });
});

describe('error documents', () => {
  it("turns citty's coloured EARG errors into plain USAGE errors with a hint", () => {
    // citty colours the values unless NO_COLOR/CI/TEST is set: a terminal run gets escapes in the message.
    const citty = Object.assign(
      new Error('Invalid value for argument: \u001b[36m--sort\u001b[39m (\u001b[36mfoo\u001b[39m).'),
      { name: 'CLIError', code: 'EARG' },
    );
    const converted = fromCittyError(citty, 'query');
    expect(converted).toBeInstanceOf(CLIError);
    expect(converted).toMatchObject({
      code: 'USAGE',
      exitCode: 2,
      message: 'Invalid value for argument: --sort (foo).',
    });
    expect(hintOf(converted, 'query')).toContain('koan-backup query --help');
    expect(JSON.stringify(errorDocument(citty, 2))).not.toContain('\\u001b');
  });
});

// Shared benchmark helpers: run a command under GNU time, read wall time and peak RSS.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

/**
 * Runs `command` (a shell line) and returns { seconds, peakRssMB, stdout }. Peak RSS is the largest process of the
 * pipeline. Untimed, first: `sync`, so no phase pays for writing back the dirty pages of the one before it (a
 * restore right after another wrote 300+ MB measured up to 50% slower without it).
 */
export function measure(command, { env = process.env, cwd = process.cwd() } = {}) {
  execFileSync('sync');
  const out = join(tmpdir(), `koan-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const started = process.hrtime.bigint();
  const useTime = existsSync(GNU_TIME);
  const r = useTime
    ? spawnSync(GNU_TIME, ['-f', '%e %M', '-o', out, 'bash', '-o', 'pipefail', '-c', command], {
        env,
        cwd,
        encoding: 'utf8',
        maxBuffer: 1 << 26,
      })
    : spawnSync('bash', ['-o', 'pipefail', '-c', command], { env, cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`command failed (${r.status}): ${command}\n${r.stderr}`);
  let peakRssMB;
  if (useTime) {
    const [, kb] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ');
    peakRssMB = Number(kb) / 1024;
    rmSync(out, { force: true });
  }
  return { seconds, peakRssMB, stdout: r.stdout };
}

export function scratchDir(name) {
  const dir = join(process.cwd(), 'bench', '.work', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export function sh(command) {
  return execFileSync('bash', ['-o', 'pipefail', '-c', command], { encoding: 'utf8', maxBuffer: 1 << 26 });
}

export function table(rows) {
  const cols = Object.keys(rows[0]);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => r[c])))].join(
    '\n',
  );
}

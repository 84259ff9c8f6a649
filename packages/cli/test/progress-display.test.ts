/** The progress line's text for exact and for estimated totals. */
import type { ProgressEvent } from '@koan/data-backup';
import { describe, expect, it } from 'vitest';
import { Session } from '../src/_io.js';
import { ProgressDisplay } from '../src/_progress.js';

function draw(event: Partial<ProgressEvent>): string {
  let out = '';
  const session = new Session({
    stdout: { write: () => {} },
    stderr: { write: (s: string) => (out += s) },
    isTTY: true,
  });
  new ProgressDisplay(session, {}).listener!({
    operation: 'backup',
    phase: 'progress',
    backup: 'nightly',
    entity: 'Order',
    set: 'root',
    records: 0,
    overallRecords: 0,
    bytes: 0,
    rate: 0,
    elapsedMs: 1000,
    ...event,
  });
  return out;
}

describe('the progress line', () => {
  it('shows exact totals as they are', () => {
    const line = draw({ records: 500, totalRecords: 1000, overallRecords: 500, overallTotalRecords: 2000 });
    expect(line).toContain('500/1,000 (50%)');
    expect(line).toContain('all 25%');
  });

  it('marks estimated totals with ~ and never shows more than 99% of one before the end', () => {
    const line = draw({
      records: 1_200_000,
      totalRecords: 1_000_000,
      overallRecords: 1_200_000,
      overallTotalRecords: 1_000_000,
      totalsEstimated: true,
    });
    expect(line).toContain('1,200,000/~1,000,000 (~99%)');
    expect(line).toContain('all ~99%');
  });
});

describe('output conventions', () => {
  it('NO_COLOR with any non-empty value turns colour off (and TERM=dumb); an empty NO_COLOR does not', async () => {
    const { noColor } = await import('../src/index.js');
    for (const value of ['1', 'yes', 'true', '0']) expect(noColor({ NO_COLOR: value }), value).toBe(true);
    expect(noColor({ NO_COLOR: '' })).toBe(false);
    expect(noColor({})).toBe(false);
    expect(noColor({ TERM: 'dumb' })).toBe(true);
  });

  it('validate lists at most 20 issues, then how many more', async () => {
    const { boundedList } = await import('../src/_render.js');
    const issues = Array.from({ length: 57 }, (_, i) => `issue ${i + 1}`);
    const text = boundedList('Issues', issues);
    expect(text.split('\n')).toHaveLength(22);
    expect(text).toMatch(/^Issues \(57\):\n {2}- issue 1\n/);
    expect(text).toContain('  - issue 20\n  ... and 37 more (--json lists every one)');
    expect(boundedList('Issues', issues.slice(0, 3)).split('\n')).toHaveLength(4);
  });
});

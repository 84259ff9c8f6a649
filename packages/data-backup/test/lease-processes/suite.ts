/**
 * The N-instance scheduler scenario (scenario.ts) as a test, the same for every shared lease store: exactly one run per
 * tick, a takeover after SIGKILL within the lease time (measured and printed, asserted only against a generous bound),
 * and a stale holder's publish refused by the store.
 */
import { describe, expect, it } from 'vitest';
import { runScenario, type ScenarioOptions, type ScenarioReport } from './scenario.js';

/** What a backend's test gives the scenario: where its instances meet, how to read the runs, how to clean up. */
export interface ScenarioStore {
  readonly url: string;
  readonly namespace: string;
  readonly runsTable: string;
  readonly readRuns: ScenarioOptions['readRuns'];
  cleanup(): Promise<void>;
}

const SETTINGS = {
  instances: 4,
  ttlMs: 2_000,
  periodMs: 4_000,
  jobMs: 300,
  ticks: 8,
  killAfterTick: 2,
  pauseAtTick: 5,
} as const;

/** Whether tick `n` was due while nobody could lead: between a leader's end and the takeover. */
function inGap(report: ScenarioReport, n: number): boolean {
  const due = report.tickTimes[n]!;
  return [report.killed, report.paused].some((g) => due >= g.at && due <= g.takeoverAt);
}

function summary(label: string, report: ScenarioReport, runsPerTick: number[]): string {
  const s = SETTINGS;
  return (
    `[lease scenario] ${label}: ${s.instances} processes, lease ${s.ttlMs} ms, a tick every ${s.periodMs} ms; ` +
    `runs per tick [${runsPerTick.join(', ')}]; takeover after SIGKILL ${report.killed.takeoverAt - report.killed.at} ms; ` +
    `after SIGSTOP ${report.paused.takeoverAt - report.paused.at} ms; ` +
    `the paused holder's publish of tick ${s.pauseAtTick} (token ${report.paused.token}) refused`
  );
}

export function describeSchedulerScenario(
  label: 'postgres' | 'redis',
  skip: string | undefined,
  prepare: (leaseName: string) => Promise<ScenarioStore>,
): void {
  describe(`exactly one scheduler among ${SETTINGS.instances} processes: ${label}`, () => {
    it('runs each tick once, takes over after SIGKILL within the lease time, and refuses a stale holder’s publish', async (ctx) => {
      if (skip) return ctx.skip(skip);
      const leaseName = `scheduler-${process.pid}-${Date.now()}`;
      const store = await prepare(leaseName);
      try {
        const report = await runScenario({ ...SETTINGS, ...store, backend: label, leaseName });
        const runsPerTick = report.tickTimes.map((_, n) => report.runs.filter((r) => r.tick === n).length);
        console.log(summary(label, report, runsPerTick));
        const leadingAtStart = report.events.filter((e) => e.type === 'leading' && e.at < report.tickTimes[0]!);
        expect(leadingAtStart, 'instances that started together and lead').toHaveLength(1);

        // Never two runs of a tick; one run of every tick due while an instance could lead.
        for (const [n, runs] of runsPerTick.entries()) {
          expect(runs, `runs of tick ${n}`).toBeLessThanOrEqual(1);
          if (n !== SETTINGS.pauseAtTick && !inGap(report, n)) expect(runs, `runs of tick ${n}`).toBe(1);
        }
        const tokens = report.runs.map((r) => r.token);
        expect(tokens, 'tokens by tick').toEqual([...tokens].sort((a, b) => a - b));

        // The SIGKILLed leader's lease ends by expiry alone: the takeover comes after about the lease time.
        const takeoverMs = report.killed.takeoverAt - report.killed.at;
        expect(takeoverMs).toBeLessThan(SETTINGS.ttlMs + 15_000);

        // The paused leader resumed and published as if it still led: the store refused it.
        expect(report.events).toContainEqual(
          expect.objectContaining({ type: 'refused', tick: SETTINGS.pauseAtTick, pid: report.paused.pid }),
        );
        expect(report.runs.filter((r) => r.token === report.paused.token && r.tick === SETTINGS.pauseAtTick)).toEqual(
          [],
        );
        expect(report.events.filter((e) => e.type === 'error')).toEqual([]);
      } finally {
        await store.cleanup();
      }
    }, 240_000);
  });
}

/**
 * N instances as real processes (instance.ts) sharing one lease store: they start together, lead or follow, and run a
 * fake scheduled job per tick. The scenario SIGKILLs the leader after a tick it published (another must take over),
 * later SIGSTOPs the next leader in the middle of a job until a third takes over, then SIGCONTs it: its publish comes
 * from a stale holder and the store must refuse it. Every loop and wait is bounded.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { InstanceConfig, InstanceEvent } from './instance.js';

const INSTANCE = fileURLToPath(new URL('./instance.ts', import.meta.url));
const REGISTER = new URL('./register.mjs', import.meta.url).href;

export type RecordedEvent = InstanceEvent & { readonly at: number; readonly pid: number };

export interface ScenarioOptions extends Omit<InstanceConfig, 'ticks'> {
  readonly instances: number;
  /** The leader is SIGKILLed right after it publishes this tick. */
  readonly killAfterTick: number;
  /** The leader is SIGSTOPped when it starts this tick's job, and SIGCONTed once another instance leads. */
  readonly pauseAtTick: number;
  readonly ticks: number;
  /** Reads the published runs from the store, after every instance ended. */
  readonly readRuns: () => Promise<{ tick: number; token: number; pid: number }[]>;
}

export interface ScenarioReport {
  readonly events: readonly RecordedEvent[];
  readonly runs: readonly { tick: number; token: number; pid: number }[];
  /** When each tick was due (wall clock). */
  readonly tickTimes: readonly number[];
  readonly killed: { readonly pid: number; readonly at: number; readonly takeoverAt: number };
  readonly paused: { readonly pid: number; readonly at: number; readonly takeoverAt: number; readonly token: number };
}

class Instances {
  readonly events: RecordedEvent[] = [];
  readonly #children: ChildProcess[] = [];
  readonly #listeners = new Set<(e: RecordedEvent) => void>();

  readonly #config: InstanceConfig;

  constructor(config: InstanceConfig) {
    this.#config = config;
  }

  /**
   * Starts `count` instances: one first, whose start fills the transpile cache (see ts-hooks.mjs), then the others at
   * once. Resolves when every instance is ready.
   */
  async fork(count: number, timeoutMs: number): Promise<void> {
    this.#forkOne();
    await this.allSent('ready', this.pids, timeoutMs);
    for (let i = 1; i < count; i++) this.#forkOne();
    await this.allSent('ready', this.pids, timeoutMs);
  }

  #forkOne(): void {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = fork(INSTANCE, [JSON.stringify(this.#config)], {
      execArgv: ['--conditions=koan-source', '--import', REGISTER],
      env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m) => {
      const event = m as RecordedEvent;
      this.events.push(event);
      for (const listener of this.#listeners) listener(event);
    });
    this.#children.push(child);
  }

  /** Resolves with the first event `match` accepts (among those to come); rejects after `timeoutMs`. */
  next(match: (e: RecordedEvent) => boolean, timeoutMs: number, what: string): Promise<RecordedEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.events.slice(-20))}`));
      }, timeoutMs);
      const listener = (e: RecordedEvent) => {
        if (!match(e)) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(e);
      };
      this.#listeners.add(listener);
    });
  }

  async allSent(type: RecordedEvent['type'], pids: readonly number[], timeoutMs: number): Promise<void> {
    const missing = () => pids.filter((pid) => !this.events.some((e) => e.type === type && e.pid === pid));
    const giveUpAt = Date.now() + timeoutMs;
    while (missing().length) {
      if (Date.now() > giveUpAt) throw new Error(`no ${type} from ${missing().join(', ')} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  get pids(): number[] {
    return this.#children.map((c) => c.pid!);
  }

  /** Tells every instance to start at `t0` (wall clock). */
  startAll(t0: number): void {
    for (const c of this.#children) c.send({ type: 'start', t0 });
  }

  signal(pid: number, signal: NodeJS.Signals): void {
    this.#children.find((c) => c.pid === pid)?.kill(signal);
  }

  /** Waits (bounded) for every child to exit; SIGKILLs whatever is left after `timeoutMs`. */
  async ended(timeoutMs: number): Promise<void> {
    const running = this.#children.filter((c) => c.exitCode === null && c.signalCode === null);
    const exits = running.map((c) => new Promise((resolve) => c.once('exit', resolve)));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const late = await Promise.race([Promise.all(exits).then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      this.killAll();
      throw new Error(`instances still running after ${timeoutMs} ms`);
    }
  }

  killAll(): void {
    for (const c of this.#children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

export async function runScenario(options: ScenarioOptions): Promise<ScenarioReport> {
  const { instances: count, killAfterTick, pauseAtTick, readRuns, ...config } = options;
  const instances = new Instances(config);
  try {
    // Starting a process (loading the sources) takes seconds on a busy machine: they start together once all are up.
    await instances.fork(count, 120_000);
    const t0 = Date.now() + 500;
    instances.startAll(t0);
    const tickTimes = Array.from({ length: config.ticks }, (_, n) => t0 + (n + 0.5) * config.periodMs);
    const bound = config.ttlMs + 30_000;

    const killedTick = await instances.next(
      (e) => e.type === 'published' && e.tick === killAfterTick,
      tickTimes[killAfterTick]! - Date.now() + bound,
      `publish of tick ${killAfterTick}`,
    );
    instances.signal(killedTick.pid, 'SIGKILL');
    const killedAt = Date.now();
    const takeover = await instances.next((e) => e.type === 'leading', bound, 'takeover after SIGKILL');

    const pausedJob = await instances.next(
      (e) => e.type === 'job-started' && e.tick === pauseAtTick,
      tickTimes[pauseAtTick]! - Date.now() + bound,
      `job of tick ${pauseAtTick}`,
    );
    instances.signal(pausedJob.pid, 'SIGSTOP');
    const pausedAt = Date.now();
    const pauseTakeover = await instances.next(
      (e) => e.type === 'leading' && e.pid !== pausedJob.pid,
      bound,
      'takeover from the paused leader',
    );
    instances.signal(pausedJob.pid, 'SIGCONT');

    await instances.ended(tickTimes.at(-1)! - Date.now() + bound);
    return {
      events: instances.events,
      runs: await readRuns(),
      tickTimes,
      killed: { pid: killedTick.pid, at: killedAt, takeoverAt: takeover.at },
      paused: {
        pid: pausedJob.pid,
        at: pausedAt,
        takeoverAt: pauseTakeover.at,
        token: (pausedJob as { token: number }).token,
      },
    };
  } finally {
    instances.killAll();
  }
}

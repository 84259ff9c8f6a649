import { randomUUID } from 'node:crypto';
import type { ProgressEvent, ProgressListener } from '@koan/data-backup';
import { describeError, type ErrorInfo, httpError } from './_errors.js';

export type JobKind = 'backup' | 'restore' | 'validate' | 'copy';
export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** A job as the API reports it. */
export interface JobSnapshot {
  readonly id: string;
  readonly kind: JobKind;
  /** Name of the backup the job works on: one active job per name. */
  readonly backup: string;
  /** What was requested (the validated body). */
  readonly request: Readonly<Record<string, unknown>>;
  readonly status: JobStatus;
  readonly cancelRequested: boolean;
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** The latest progress event. */
  readonly progress?: ProgressEvent;
  readonly result?: unknown;
  readonly error?: ErrorInfo;
}

/** What `GET /jobs/:id/events` streams; `id` increases per job, so a reconnect resumes with `Last-Event-ID`. */
export type JobEvent =
  | { readonly id: number; readonly type: 'progress'; readonly data: ProgressEvent }
  | { readonly id: number; readonly type: 'done'; readonly data: JobSnapshot };

export type JobWork = (io: { readonly signal: AbortSignal; readonly onProgress: ProgressListener }) => Promise<unknown>;

/**
 * What a job's result left undone (a partial backup, a restore whose entity sets failed), or `undefined`: such a job
 * ends `failed` with this error, its result kept, so a client that reads only the status is not told "succeeded".
 */
export type JobShortfall = (result: unknown) => ErrorInfo | undefined;

export interface JobQueueOptions {
  /** Jobs running at once; the rest wait in order. */
  readonly concurrency: number;
  /** Finished jobs kept for `GET /jobs`. */
  readonly historyLimit: number;
  /** Queued + running jobs accepted before `503 TOO_MANY_JOBS`. */
  readonly maxActive: number;
  /** Events kept per job for subscribers that connect late or reconnect. */
  readonly eventBuffer: number;
}

const FINISHED: ReadonlySet<JobStatus> = new Set(['succeeded', 'failed', 'cancelled']);

class Job {
  readonly id = randomUUID();
  readonly controller = new AbortController();
  readonly createdAt = new Date().toISOString();
  readonly events: JobEvent[] = [];
  readonly listeners = new Set<(event: JobEvent) => void>();
  status: JobStatus = 'queued';
  cancelRequested = false;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  progress: ProgressEvent | undefined;
  result: unknown;
  error: ErrorInfo | undefined;
  #nextEventId = 1;
  readonly #settled: Promise<void>;
  #settle!: () => void;

  constructor(
    readonly kind: JobKind,
    readonly backup: string,
    readonly request: Readonly<Record<string, unknown>>,
    readonly work: JobWork,
    readonly eventBuffer: number,
    readonly shortfall: JobShortfall | undefined,
  ) {
    this.#settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  get finished(): boolean {
    return FINISHED.has(this.status);
  }

  get settled(): Promise<void> {
    return this.#settled;
  }

  snapshot(): JobSnapshot {
    return {
      id: this.id,
      kind: this.kind,
      backup: this.backup,
      request: this.request,
      status: this.status,
      cancelRequested: this.cancelRequested,
      createdAt: this.createdAt,
      ...(this.startedAt ? { startedAt: this.startedAt } : {}),
      ...(this.finishedAt ? { finishedAt: this.finishedAt } : {}),
      ...(this.progress ? { progress: this.progress } : {}),
      ...(this.result !== undefined ? { result: this.result } : {}),
      ...(this.error ? { error: this.error } : {}),
    };
  }

  publish(event: { type: 'progress'; data: ProgressEvent } | { type: 'done'; data: JobSnapshot }): void {
    const full = { ...event, id: this.#nextEventId++ } as JobEvent;
    this.events.push(full);
    // Keep the first events (start, first entity) and the newest ones; a late subscriber still sees how it began.
    if (this.events.length > this.eventBuffer) this.events.splice(2, 1);
    for (const listener of this.listeners) listener(full);
  }

  finish(status: 'succeeded' | 'failed' | 'cancelled', outcome: { result?: unknown; error?: ErrorInfo } = {}): void {
    this.status = status;
    this.finishedAt = new Date().toISOString();
    this.result = outcome.result;
    this.error = outcome.error;
    this.publish({ type: 'done', data: this.snapshot() });
    this.listeners.clear();
    this.#settle();
  }
}

/**
 * Runs backup, restore, validation and copy jobs in the background, at most `concurrency` at once, and remembers the
 * last `historyLimit` finished ones. Cancelling aborts the job's `AbortSignal`: the library then stops, rolls back
 * what it can and publishes nothing.
 */
export class JobQueue {
  readonly #options: JobQueueOptions;
  readonly #jobs = new Map<string, Job>();
  readonly #waiting: Job[] = [];
  #running = 0;

  constructor(options: JobQueueOptions) {
    this.#options = options;
  }

  /** Queues a job; 409 when a job for the same backup is queued or running. */
  enqueue(
    kind: JobKind,
    backup: string,
    request: Readonly<Record<string, unknown>>,
    work: JobWork,
    shortfall?: JobShortfall,
  ): JobSnapshot {
    const busy = this.activeFor(backup);
    if (busy)
      throw httpError(
        409,
        'JOB_CONFLICT',
        `A ${busy.kind} job (${busy.id}) is already ${busy.status} for backup ${backup}. Wait for it, or cancel it with DELETE /jobs/${busy.id}.`,
        { jobId: busy.id, backup },
      );
    const active = [...this.#jobs.values()].filter((j) => !j.finished).length;
    if (active >= this.#options.maxActive)
      throw httpError(503, 'TOO_MANY_JOBS', `${active} jobs are queued or running; try again when some finish.`, {
        active,
      });
    const job = new Job(kind, backup, request, work, this.#options.eventBuffer, shortfall);
    this.#jobs.set(job.id, job);
    this.#waiting.push(job);
    this.#pump();
    return job.snapshot();
  }

  get(id: string): JobSnapshot {
    return this.#find(id).snapshot();
  }

  /** Newest first. */
  list(): JobSnapshot[] {
    return [...this.#jobs.values()].reverse().map((j) => j.snapshot());
  }

  /** The queued or running job of a backup name, if any. */
  activeFor(backup: string): JobSnapshot | undefined {
    for (const job of this.#jobs.values()) if (!job.finished && job.backup === backup) return job.snapshot();
    return undefined;
  }

  hasActive(kinds?: readonly JobKind[]): boolean {
    return [...this.#jobs.values()].some((j) => !j.finished && (!kinds || kinds.includes(j.kind)));
  }

  /** A queued job is cancelled at once; a running one when the library has stopped. */
  cancel(id: string): JobSnapshot {
    const job = this.#find(id);
    if (job.finished)
      throw httpError(409, 'JOB_FINISHED', `Job ${id} has already ${job.status}; there is nothing to cancel.`, {
        jobId: id,
        status: job.status,
      });
    job.cancelRequested = true;
    if (job.status === 'queued') {
      this.#waiting.splice(this.#waiting.indexOf(job), 1);
      job.finish('cancelled', { error: { code: 'ABORTED', message: 'Cancelled before it started', details: {} } });
      this.#trimHistory();
    } else job.controller.abort(new Error(`Job ${id} was cancelled`));
    return job.snapshot();
  }

  /**
   * Replays the buffered events after `afterEventId`, then delivers new ones until `done`. Returns the unsubscriber.
   */
  subscribe(id: string, listener: (event: JobEvent) => void, afterEventId = 0): () => void {
    const job = this.#find(id);
    for (const event of job.events) if (event.id > afterEventId) listener(event);
    if (job.finished) return () => {};
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** Cancels every queued and running job and waits until they have stopped. */
  async shutdown(): Promise<void> {
    const active = [...this.#jobs.values()].filter((j) => !j.finished);
    for (const job of active) this.cancel(job.id);
    await Promise.all(active.map((j) => j.settled));
  }

  #find(id: string): Job {
    const job = this.#jobs.get(id);
    if (!job) throw httpError(404, 'JOB_NOT_FOUND', `No job ${id}. GET /jobs lists the recent ones.`, { jobId: id });
    return job;
  }

  #pump(): void {
    while (this.#running < this.#options.concurrency) {
      const job = this.#waiting.shift();
      if (!job) return;
      void this.#run(job);
    }
  }

  async #run(job: Job): Promise<void> {
    this.#running++;
    job.status = 'running';
    job.startedAt = new Date().toISOString();
    const signal = job.controller.signal;
    try {
      const result = await job.work({
        signal,
        onProgress: (event) => {
          job.progress = event;
          job.publish({ type: 'progress', data: event });
        },
      });
      const error = job.shortfall?.(result);
      job.finish(error ? 'failed' : 'succeeded', error ? { result, error } : { result });
    } catch (e) {
      const error = describeError(e);
      job.finish(signal.aborted || error.code === 'ABORTED' ? 'cancelled' : 'failed', { error });
    } finally {
      this.#running--;
      this.#trimHistory();
      this.#pump();
    }
  }

  #trimHistory(): void {
    let finished = 0;
    for (const job of this.#jobs.values()) if (job.finished) finished++;
    for (const [id, job] of this.#jobs) {
      if (finished <= this.#options.historyLimit) break;
      if (!job.finished) continue;
      this.#jobs.delete(id);
      finished--;
    }
  }
}

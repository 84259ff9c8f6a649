/** A progress event of a backup, restore or validation. */
export interface ProgressEvent {
  readonly operation: 'backup' | 'restore' | 'validate';
  readonly phase: 'start' | 'entity-start' | 'progress' | 'entity-done' | 'done';
  /** Backup name. */
  readonly backup: string;
  readonly entity?: string;
  readonly set?: string;
  /** Records of the current entity so far, and its expected total where known. */
  readonly records: number;
  readonly totalRecords?: number;
  /** All records so far across entities, and the expected overall total where known. */
  readonly overallRecords: number;
  readonly overallTotalRecords?: number;
  /** Uncompressed bytes so far (overall). */
  readonly bytes: number;
  /** Records per second since the operation started. */
  readonly rate: number;
  /**
   * True when some totals are the stores' own estimates (large sets are not counted: a count can be a full scan), so
   * records may end above or below them; absent when every total is an exact count.
   */
  readonly totalsEstimated?: true;
  /** Estimated milliseconds left, where the total is known. */
  readonly etaMs?: number;
  readonly elapsedMs: number;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Tracks counters and emits throttled progress events (at most every `intervalMs`, plus phase changes). */
export class ProgressTracker {
  readonly #listener: ProgressListener | undefined;
  readonly #operation: ProgressEvent['operation'];
  readonly #backup: string;
  readonly #started = performance.now();
  readonly #intervalMs: number;
  #last = 0;
  overallRecords = 0;
  overallTotalRecords: number | undefined;
  /** Some totals are estimates (see {@link ProgressEvent.totalsEstimated}). */
  totalsEstimated = false;
  bytes = 0;

  constructor(
    operation: ProgressEvent['operation'],
    backup: string,
    listener: ProgressListener | undefined,
    intervalMs = 250,
  ) {
    this.#operation = operation;
    this.#backup = backup;
    this.#listener = listener;
    this.#intervalMs = intervalMs;
  }

  /** Whether anyone listens: work done only for progress (counting records up front) is skipped otherwise. */
  get observed(): boolean {
    return this.#listener !== undefined;
  }

  emit(
    phase: ProgressEvent['phase'],
    current?: { entity: string; set: string; records: number; totalRecords?: number | undefined },
  ): void {
    if (!this.#listener) return;
    const now = performance.now();
    if (phase === 'progress' && now - this.#last < this.#intervalMs) return;
    this.#last = now;
    const elapsedMs = now - this.#started;
    const rate = elapsedMs > 0 ? (this.overallRecords * 1000) / elapsedMs : 0;
    const total = this.overallTotalRecords;
    const etaMs =
      total !== undefined && rate > 0 ? Math.max(0, ((total - this.overallRecords) * 1000) / rate) : undefined;
    try {
      this.#listener({
        operation: this.#operation,
        phase,
        backup: this.#backup,
        ...(current ? { entity: current.entity, set: current.set, records: current.records } : { records: 0 }),
        ...(current?.totalRecords !== undefined ? { totalRecords: current.totalRecords } : {}),
        overallRecords: this.overallRecords,
        ...(total !== undefined ? { overallTotalRecords: total } : {}),
        ...(this.totalsEstimated ? { totalsEstimated: true as const } : {}),
        bytes: this.bytes,
        rate,
        ...(etaMs !== undefined ? { etaMs } : {}),
        elapsedMs,
      });
    } catch {
      /* a listener's failure must not break the operation */
    }
  }
}

import type { ProgressEvent, ProgressListener } from '@koan/data-backup';
import { formatBytes, formatCount, formatDuration, percent } from './_format.js';
import type { Session } from './_io.js';

/**
 * The progress display of one operation. On a terminal: one line on stderr, redrawn in place.
 * With `--progress` off a terminal: a plain line per finished entity. Otherwise (and with --json): nothing.
 */
export class ProgressDisplay {
  readonly #session: Session;
  readonly #mode: 'tty' | 'plain' | 'off';
  #drawn = false;
  #lastPlain = 0;

  constructor(session: Session, options: { progress?: boolean | undefined }) {
    this.#session = session;
    this.#mode = session.json
      ? options.progress
        ? 'plain'
        : 'off'
      : session.isTTY
        ? 'tty'
        : options.progress
          ? 'plain'
          : 'off';
  }

  /** The listener to pass as `onProgress`, or undefined when nothing is shown (saves the engine's counting). */
  get listener(): ProgressListener | undefined {
    return this.#mode === 'off' ? undefined : (event) => this.#render(event);
  }

  #render(e: ProgressEvent): void {
    const err = this.#session.io.stderr;
    // Estimated totals (large sets are not counted) are marked with ~, and a share never passes 99% before the end.
    const share = (part: number, whole: number) =>
      e.totalsEstimated ? `~${percent(Math.min(part, whole * 0.99), whole)}` : percent(part, whole);
    const total = (n: number) => `${e.totalsEstimated ? '~' : ''}${formatCount(n)}`;
    if (this.#mode === 'plain') {
      if (e.phase === 'entity-done' && e.entity)
        err.write(
          `${e.operation} ${e.backup}: ${label(e)} ${formatCount(e.records)} records${e.overallTotalRecords ? ` (${share(e.overallRecords, e.overallTotalRecords)} overall)` : ''}\n`,
        );
      else if (e.phase === 'done')
        err.write(
          `${e.operation} ${e.backup}: ${formatCount(e.overallRecords)} records in ${formatDuration(e.elapsedMs)}\n`,
        );
      else if (e.phase === 'progress' && e.elapsedMs - this.#lastPlain >= 2000) {
        this.#lastPlain = e.elapsedMs;
        err.write(
          `${e.operation} ${e.backup}: ${e.entity ? `${label(e)} ` : ''}${formatCount(e.overallRecords)} records${e.overallTotalRecords ? ` (${share(e.overallRecords, e.overallTotalRecords)})` : ''}\n`,
        );
      }
      return;
    }
    if (e.phase === 'done') {
      this.clear();
      return;
    }
    const parts = [`${e.operation} ${e.backup}`];
    if (e.entity) parts.push(label(e));
    parts.push(
      e.totalRecords !== undefined
        ? `${formatCount(e.records)}/${total(e.totalRecords)} (${share(e.records, e.totalRecords)})`
        : formatCount(e.records),
    );
    if (e.overallTotalRecords) parts.push(`all ${share(e.overallRecords, e.overallTotalRecords)}`);
    if (e.rate > 0) parts.push(`${formatCount(Math.round(e.rate))} rec/s`);
    if (e.etaMs !== undefined && e.etaMs > 0) parts.push(`ETA ${formatDuration(e.etaMs)}`);
    if (e.bytes > 0) parts.push(formatBytes(e.bytes));
    err.write(`\r\u001b[2K${parts.join('  ')}`);
    this.#drawn = true;
  }

  /** Removes the progress line so the next output starts clean. */
  clear(): void {
    if (this.#drawn) this.#session.io.stderr.write('\r\u001b[2K');
    this.#drawn = false;
  }
}

function label(e: ProgressEvent): string {
  if (!e.entity) return '';
  return e.set && e.set !== 'root' ? `${e.entity}@${e.set}` : e.entity;
}

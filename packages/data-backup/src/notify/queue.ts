/**
 * The waiting room of a webhook: items in order, bounded in count and in bytes. Adding to a full queue drops the
 * oldest, since the newest event says most about the state of the backups now; what is dropped is handed back, for
 * the webhook to count and report.
 */
import { invalidOption } from '../errors.js';

export class BoundedQueue<T extends { readonly bytes: number }> {
  readonly maxItems: number;
  readonly maxBytes: number;
  readonly #items: T[] = [];
  #bytes = 0;

  constructor(maxItems: number, maxBytes: number) {
    if (!Number.isInteger(maxItems) || maxItems < 1)
      throw invalidOption('maxQueueEvents', maxItems, 'a whole number above 0');
    if (!Number.isInteger(maxBytes) || maxBytes < 1)
      throw invalidOption('maxQueueBytes', maxBytes, 'a whole number above 0');
    this.maxItems = maxItems;
    this.maxBytes = maxBytes;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Adds `item` last; returns the oldest items dropped to make room. An item larger than the whole queue is not added. */
  push(item: T): T[] {
    if (item.bytes > this.maxBytes) return [item];
    this.#items.push(item);
    this.#bytes += item.bytes;
    const dropped: T[] = [];
    while (this.#items.length > this.maxItems || this.#bytes > this.maxBytes) dropped.push(this.shift()!);
    return dropped;
  }

  shift(): T | undefined {
    const item = this.#items.shift();
    if (item) this.#bytes -= item.bytes;
    return item;
  }

  /** Empties the queue; returns what it held. */
  clear(): T[] {
    this.#bytes = 0;
    return this.#items.splice(0);
  }
}

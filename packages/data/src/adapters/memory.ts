/**
 * The memory adapter: every entity set is a key-ordered map in this process. Meant for tests and
 * demos; nothing survives `close()`.
 *
 * - Streams in key order with keyset paging, like every other adapter.
 * - `transaction()` stages writes on copies and installs them only when `fn` returns: a throw leaves nothing.
 * - `readSnapshot()` copies the tables' maps (records are never mutated in place), so it is a real snapshot.
 * - Records are copied on the way in and out: callers can never alias stored values.
 */
import type { AdapterCapabilities, DataProvider } from '../adapter.js';
import { KeyedTablesAdapter } from './_keyed-adapter.js';
import type { KeyedTable } from './_keyed-table.js';

export const PROVIDER_NAME = 'memory';

const CAPABILITIES: AdapterCapabilities = Object.freeze({
  transactions: true,
  snapshotReads: true,
  nativeUpsert: true,
  bulkLoad: false,
  orderedStreaming: true,
  sets: true,
  introspection: false,
  ttl: false,
  nonFiniteNumbers: true,
});

export class MemoryAdapter extends KeyedTablesAdapter {
  readonly provider = PROVIDER_NAME;
  readonly capabilities = CAPABILITIES;

  protected async load(): Promise<KeyedTable | undefined> {
    return undefined;
  }

  protected async persist(): Promise<void> {}

  protected async storedNames(): Promise<string[]> {
    return [];
  }

  protected location(physical: string): string {
    return `memory:${physical}`;
  }
}

/** A fresh, empty memory adapter. */
export function createMemoryAdapter(): MemoryAdapter {
  return new MemoryAdapter();
}

export const provider: DataProvider = { name: PROVIDER_NAME, settings: {}, create: () => new MemoryAdapter() };

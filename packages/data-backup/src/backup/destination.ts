import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { throwIfAborted } from '@koan/data/adapter-kit';
import { writeSidecar } from '../catalog.js';
import type { BackupContext } from '../context.js';
import type { BackupSidecar } from '../manifest.js';
import type { GlobalBackupOptions } from './options.js';

/** Where a backup's archive goes: a storage profile (with its catalog record), a file, or a stream. */
export interface Destination {
  readonly keys: { readonly archive: string; readonly sidecar: string };
  /** What the manifest's `storageProfile` says: the profile, or `file:<path>` / `stdout`. */
  readonly profile: string;
  put(body: Readable, signal: AbortSignal | undefined): Promise<{ size: number }>;
  /** Publishes the backup (the sidecar is the commit marker); nothing for a file or stream. */
  commit(sidecar: BackupSidecar): Promise<void>;
  /** Removes a partly written archive. */
  discard(): Promise<void>;
  /** Records a failed backup in the catalog (profiles only). */
  recordFailure(failed: BackupSidecar): Promise<void>;
}

export function destinationOf(
  context: BackupContext,
  profile: string,
  keys: { archive: string; sidecar: string },
  output: GlobalBackupOptions['output'],
): Destination {
  if (output && 'stream' in output) {
    const none = async () => {};
    return {
      keys: { archive: '-', sidecar: '-' },
      profile: 'stdout',
      async put(body, signal) {
        // Written chunk by chunk, honouring backpressure, and never ended: stdout stays usable for messages.
        let size = 0;
        for await (const chunk of body) {
          throwIfAborted(signal);
          size += (chunk as Buffer).length;
          if (!output.stream.write(chunk as Buffer)) await once(output.stream, 'drain');
        }
        return { size };
      },
      commit: none,
      discard: none,
      recordFailure: none,
    };
  }
  if (output) {
    // Written beside the target under a temporary name, synced, then renamed: never a half-written file at `file`.
    const file = resolve(context.runtime.cwd, output.file);
    const temp = join(dirname(file), `.${basename(file)}.${randomUUID()}.partial`);
    return {
      keys: { archive: file, sidecar: '-' },
      profile: `file:${file}`,
      async put(body, signal) {
        const handle = await open(temp, 'wx', 0o600);
        let size = 0;
        try {
          for await (const chunk of body) {
            throwIfAborted(signal);
            await handle.write(chunk as Buffer);
            size += (chunk as Buffer).length;
          }
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(temp, file);
        return { size };
      },
      commit: async () => {},
      discard: async () => {
        await rm(temp, { force: true });
      },
      recordFailure: async () => {},
    };
  }
  const driver = context.storage.get(profile);
  return {
    keys,
    profile,
    put: (body, signal) =>
      driver.put(keys.archive, body, { contentType: 'application/zip', ...(signal ? { signal } : {}) }),
    commit: (sidecar) => writeSidecar(driver, keys.sidecar, sidecar),
    discard: async () => {
      await driver.delete(keys.archive).catch(() => undefined);
    },
    recordFailure: (failed) => writeSidecar(driver, keys.sidecar, failed),
  };
}

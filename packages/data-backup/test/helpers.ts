import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataRuntime, type SourceConfig } from '@koan/data';
import { type BackupConfig, BackupContext } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';

/** A context on real local disk in a temp dir, with the given data sources. */
export async function makeContext(
  sources: Record<string, SourceConfig>,
  options: {
    profiles?: Record<string, { provider: string; settings?: Record<string, unknown> }>;
    config?: Partial<BackupConfig>;
  } = {},
): Promise<{ context: BackupContext; dir: string; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'koan-backup-test-'));
  const runtime = new DataRuntime({ sources, cwd: dir });
  const storage = await StorageProfiles.load(
    {
      defaultProfile: 'local',
      profiles: options.profiles ?? { local: { provider: 'local', settings: { root: join(dir, 'backups') } } },
    },
    { cwd: dir },
  );
  const context = new BackupContext({ runtime, storage, ...(options.config ? { config: options.config } : {}) });
  return {
    context,
    dir,
    cleanup: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

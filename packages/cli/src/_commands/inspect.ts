import { type BackupSidecar, openArchive, readContents } from '@koan/data-backup/archive';
import { locateBackup } from '@koan/data-backup/catalog';
import { globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { formatBytes } from '../_format.js';
import { lookupArgs, lookupOptions, requiredRef } from '../_lookup.js';
import {
  type ArchiveEntry,
  archiveEntries,
  archiveListing,
  entityTable,
  manifestSummary,
  omittedTable,
} from '../_render.js';

export default defineCliCommand({
  meta: {
    name: 'inspect',
    description: "Show a backup's manifest, its entities, what it left out (and why) and the files in its archive",
  },
  args: {
    ref: {
      type: 'positional',
      required: false,
      description: 'Backup name (the newest with it), id, storage key of an archive, or path of a .zip file',
    },
    ...globalArgs,
    ...lookupArgs,
    profile: { type: 'string', description: 'Storage profile to look in (default: every profile)' },
  },
  examples: ['koan-backup inspect nightly', 'koan-backup inspect 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b --json'],
  async run(args, session) {
    const ref = requiredRef(args.ref, 'inspect');
    return withContext(session, args, async (context) => {
      const located = await locateBackup(context, ref, { anyStatus: true, ...lookupOptions(ref, args, session.cwd) });
      const sidecar: BackupSidecar = located.sidecar;
      let entries: ArchiveEntry[] | undefined;
      let archiveProblem: string | undefined;
      if (sidecar.archive) {
        try {
          const reader = await openArchive(located, session.io.signal);
          try {
            await readContents(reader, sidecar);
            entries = archiveEntries(reader);
          } finally {
            await reader.close();
          }
        } catch (e) {
          archiveProblem = (e as Error).message;
        }
      }
      if (session.json) {
        session.printJson({
          backup: sidecar,
          storageProfile: located.profile,
          sidecarKey: located.sidecarKey,
          archiveEntries: entries ?? null,
          archiveProblem: archiveProblem ?? null,
        });
        return 0;
      }
      session.print(`Backup ${sidecar.name}`);
      session.print();
      session.print(manifestSummary(sidecar, [['sidecar', located.sidecarKey]]));
      session.print();
      session.print(entityTable(sidecar.entities));
      if (sidecar.omitted?.length) {
        session.print();
        session.print(`Not in this backup (${sidecar.omitted.length}): left out on request, not selected, or not data`);
        session.print(omittedTable(sidecar.omitted));
      }
      if (entries) {
        session.print();
        session.print(`Archive ${sidecar.archive?.key} (${formatBytes(sidecar.archive?.sizeBytes ?? 0)}):`);
        session.print(archiveListing(entries));
      }
      if (archiveProblem)
        session.note(
          `Warning: the archive could not be read: ${archiveProblem}\nRun \`koan-backup validate ${sidecar.id}\` for details.`,
        );
      return 0;
    });
  },
});

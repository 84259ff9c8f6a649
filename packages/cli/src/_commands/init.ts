import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { schemaReference } from '../_config-schema.js';
import { usageError } from '../_errors.js';
import { parseSourceUrl, redactUrl } from '../_source-url.js';

/** The configuration `init` writes: every section with a working default, and what each is for. */
export function defaultConfig(options: {
  schema: string;
  source?: { provider: string; settings: object };
  root: string;
}) {
  return {
    $schema: options.schema,
    $comment: [
      'Koan backup configuration. Every key can be overridden by an environment variable: Koan__Storage__Profiles__local__Settings__Root=/srv/backups.',
      'Koan.Data.Sources: where the entities live (Provider: sqlite, postgres, mysql, redis, json, lancedb; Settings as each provider documents). `default` is the source of entities that name none.',
      'Koan.Storage.Profiles: where backups go (Provider: local, s3, azure-blob). DefaultProfile is used when a command names none (--profile).',
      'Koan.Backup: defaults of backups (CompressionLevel 1-9, DefaultBatchSize, DefaultBatchBytes), ExcludeEntities (tables left out on purpose, recorded in each manifest), RetentionPolicy (restic-style Keep* rules; prune never deletes the newest healthy backup of a name).',
      'See `koan-backup --help` and the README of the koan-backup package.',
    ],
    Koan: {
      Data: {
        Sources: {
          default: options.source ?? { Provider: 'sqlite', Settings: { Path: '.koan/data.sqlite' } },
        },
      },
      Storage: {
        DefaultProfile: 'local',
        Profiles: { local: { Provider: 'local', Settings: { Root: options.root } } },
      },
      Backup: {
        CompressionLevel: 1,
        RetentionPolicy: { KeepLast: 3, KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12 },
      },
    },
  };
}

export default defineCliCommand({
  meta: {
    name: 'init',
    description:
      'Write a koan.config.json in the working directory: a data source, a local storage profile and a retention policy, each explained, with the JSON Schema editors validate it against',
  },
  args: {
    ...globalArgs,
    source: {
      type: 'string',
      description:
        'The data source to configure as `default`: postgres://..., mysql://..., sqlite:<path> or a .sqlite file (default: the embedded SQLite file .koan/data.sqlite)',
      valueHint: 'url',
    },
    storage: {
      type: 'string',
      description: 'Directory of the local storage profile (default ./backups)',
      valueHint: 'dir',
    },
    force: { type: 'boolean', description: 'Overwrite an existing koan.config.json' },
  },
  examples: ['koan-backup init', 'koan-backup init --source postgres://app@localhost:5432/shop --storage /srv/backups'],
  async run(args, session) {
    const file = join(session.cwd, 'koan.config.json');
    if (existsSync(file) && !args.force)
      throw usageError(
        `${file} exists already; nothing was written.`,
        'Pass --force to overwrite it, or edit it (koan-backup validates it on every command).',
      );
    // Nothing is asked: on a terminal or not, the defaults work and the flags change them.
    const source = args.source ? parseSourceUrl(args.source, session.cwd) : undefined;
    // A password is never written into the file: it comes from the environment (the usual Koan__ override).
    let passwordVariable: string | undefined;
    if (source?.settings)
      for (const [k, v] of Object.entries(source.settings)) {
        if (typeof v !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) continue;
        const url = new URL(v);
        if (!url.password) continue;
        url.password = '';
        (source.settings as Record<string, unknown>)[k] = url.toString();
        passwordVariable = 'Koan__Data__Sources__default__Settings__Password';
      }
    const config = defaultConfig({
      schema: schemaReference(session.cwd),
      root: args.storage ?? './backups',
      ...(source
        ? {
            source: {
              Provider: source.provider,
              Settings: Object.fromEntries(
                Object.entries(source.settings ?? {}).map(([k, v]) => [k[0]!.toUpperCase() + k.slice(1), v]),
              ),
            },
          }
        : {}),
    } as Parameters<typeof defaultConfig>[0]);
    await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { flag: args.force ? 'w' : 'wx' });
    if (session.json) session.printJson({ file, config, ...(passwordVariable ? { passwordVariable } : {}) });
    else {
      session.print(`Wrote ${file}${args.source ? ` (source: ${redactUrl(args.source)})` : ''}.`);
      if (passwordVariable)
        session.print(`The password is not in the file: set it in the environment as ${passwordVariable}.`);
      session.print(`Editors validate it against ${config.$schema}.`);
      session.print('Next: koan-backup entities   |   koan-backup backup nightly');
    }
    return 0;
  },
});

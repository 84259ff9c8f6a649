import { discoverEntities } from '@koan/data';
import { entityArgs, globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { importEntityModules, withContext } from '../_context.js';
import { formatCount, renderTable } from '../_format.js';
import { parseSourceUrl } from '../_source-url.js';

export default defineCliCommand({
  meta: {
    name: 'entities',
    description: 'List the entities a backup would contain: name, source, provider, key, sets and record counts',
  },
  args: {
    ...globalArgs,
    ...entityArgs,
    introspect: { type: 'boolean', description: 'Also list tables of the configured sources that no code declares' },
    source: {
      type: 'string',
      description: 'List the tables of this database instead (postgres://..., sqlite:<path>, ...)',
      valueHint: 'url',
    },
  },
  examples: [
    'koan-backup entities --import ./dist/entities.js',
    '# What would `backup --source` take from this database?',
    'koan-backup entities --source ./data/app.sqlite --json',
  ],
  async run(args, session, rawArgs) {
    const source = args.source ? parseSourceUrl(args.source, session.cwd, { mustExist: true }) : undefined;
    if (!source) await importEntityModules(session, args, rawArgs);
    return withContext(
      session,
      args,
      async (context) => {
        const infos = await discoverEntities({
          runtime: context.runtime,
          introspect: Boolean(args.introspect || source),
        });
        const rows = [];
        for (const info of infos) {
          const adapter = await context.runtime.adapter(info.source);
          const sets = info.sets.length ? info.sets : ['root'];
          const counts: Record<string, number> = {};
          for (const set of sets) counts[set] = await adapter.count(info.schema, set);
          rows.push({
            name: info.name,
            source: info.source,
            provider: info.provider,
            origin: info.schema.origin,
            key: info.schema.key,
            keyType: info.keyType,
            fields: Object.keys(info.schema.fields).length,
            sets,
            records: counts,
            totalRecords: Object.values(counts).reduce((a, b) => a + b, 0),
          });
        }
        if (session.json) {
          session.printJson({ entities: rows, sources: context.runtime.sourceNames() });
          return 0;
        }
        if (!rows.length) {
          session.print(
            `No entities discovered in source${context.runtime.sourceNames().length === 1 ? '' : 's'} ${context.runtime.sourceNames().join(', ')}.`,
          );
          session.print(
            'Pass --import <module> with your defineEntity calls, --introspect for tables no code declares, or --source <url>.',
          );
          return 0;
        }
        session.print(
          renderTable(rows, [
            { header: 'ENTITY', value: (r) => r.name },
            { header: 'SOURCE', value: (r) => r.source },
            { header: 'PROVIDER', value: (r) => r.provider },
            { header: 'KEY', value: (r) => `${r.key} (${r.keyType})` },
            { header: 'FIELDS', value: (r) => String(r.fields), align: 'right' },
            { header: 'SETS', value: (r) => r.sets.join(', ') },
            { header: 'RECORDS', value: (r) => formatCount(r.totalRecords), align: 'right' },
            { header: 'ORIGIN', value: (r) => r.origin },
          ]),
        );
        return 0;
      },
      source ? { sources: { cli: source } } : {},
    );
  },
});

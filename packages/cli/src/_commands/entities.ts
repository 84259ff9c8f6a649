import { describeEntities, type EntityDescription } from '@koan/data-backup/plan';
import { entityArgs, globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { importEntityModules, withContext } from '../_context.js';
import { formatCount, renderTable } from '../_format.js';
import { parseSourceUrl } from '../_source-url.js';

export default defineCliCommand({
  meta: {
    name: 'entities',
    description:
      'List the entities a backup would contain (name, source, provider, key, sets, record counts), and the tables it cannot back up and the objects that are not data, with why',
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
        const described = await describeEntities(context, { introspect: Boolean(args.introspect || source) });
        if (session.json) {
          session.printJson(described);
          return 0;
        }
        const { entities, skipped, notData, sources } = described;
        if (!entities.length && !skipped.length)
          session.print(
            `No entities discovered in source${sources.length === 1 ? '' : 's'} ${sources.join(', ')}. Pass --import <module> with your defineEntity calls, --introspect for tables no code declares, or --source <url>.`,
          );
        if (entities.length)
          session.print(
            renderTable(entities, [
              { header: 'ENTITY', value: (e) => e.name },
              { header: 'SOURCE', value: (e) => e.source },
              { header: 'PROVIDER', value: (e) => e.provider },
              { header: 'KEY', value: (e) => keyText(e) },
              { header: 'FIELDS', value: (e) => String(e.fields), align: 'right' },
              { header: 'SETS', value: (e) => e.sets.join(', ') },
              { header: 'RECORDS', value: (e) => formatCount(e.totalRecords), align: 'right' },
              { header: 'ORIGIN', value: (e) => (e.excluded ? `${e.origin}, ${e.excluded}` : e.origin) },
            ]),
          );
        if (skipped.length) {
          session.print();
          session.print(
            `Cannot be backed up (${skipped.length}): a backup fails naming ${skipped.length === 1 ? 'it' : 'them'} unless excluded with --exclude-entity <table> or Koan.Backup.ExcludeEntities`,
          );
          session.print(
            renderTable(skipped, [
              { header: 'TABLE', value: (t) => t.table },
              { header: 'SOURCE', value: (t) => t.source },
              { header: 'WHY', value: (t) => (t.excluded ? `${t.reason} (${t.excluded})` : t.reason) },
            ]),
          );
        }
        if (notData.length) {
          session.print();
          session.print(`Not data (${notData.length}): not backed up as tables`);
          session.print(
            renderTable(notData, [
              { header: 'NAME', value: (n) => n.name },
              { header: 'SOURCE', value: (n) => n.source },
              { header: 'KIND', value: (n) => n.kind },
              { header: 'NOTE', value: (n) => n.note },
            ]),
          );
        }
        return 0;
      },
      source ? { sources: { cli: source } } : {},
    );
  },
});

/** The key as a reader wants it: the field and its type, every field of a composite key, or none. */
function keyText(e: EntityDescription): string {
  if (e.keyless) return '(none: every row, restored by insert)';
  return `${e.keyFields ? e.keyFields.join(' + ') : e.key} (${e.keyType})`;
}

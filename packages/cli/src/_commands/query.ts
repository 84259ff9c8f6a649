import { KoanError } from '@koan/data';
import { BackupDiscoveryService, type BackupQuery, type BackupStatus, type HealthStatus } from '@koan/data-backup';
import { BACKUP_SORT_KEYS, backupStatuses, checkBackupQuery, healthStatuses } from '@koan/data-backup/catalog';
import { choiceOption, dateOption, globalArgs, intOption, opt, optionalList, sizeOption } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { withContext } from '../_context.js';
import { usageError } from '../_errors.js';
import { catalogTable } from '../_render.js';

export default defineCliCommand({
  meta: {
    name: 'query',
    description:
      'Search the catalog: filter by tag, entity, date, profile, status, health, text and size; sort and page',
  },
  args: {
    ...globalArgs,
    tag: { type: 'string', description: 'Backups with any of these tags (repeatable or comma list)' },
    entity: {
      type: 'string',
      description: 'Backups containing any of these entities (repeatable or comma list)',
      valueHint: 'Name',
    },
    from: {
      type: 'string',
      description: 'Created at or after (inclusive): ISO date/time, or an age such as 7d, 12h, 30m, 2w',
      valueHint: 'date|age',
    },
    to: {
      type: 'string',
      description:
        'Created at or before (inclusive; a date alone means the end of that day, UTC): ISO date/time, or an age',
      valueHint: 'date|age',
    },
    profile: { type: 'string', description: 'Only these storage profiles (repeatable or comma list)' },
    status: {
      type: 'string',
      description: `Any of these statuses: ${backupStatuses.join(', ')} (repeatable or comma list)`,
    },
    health: {
      type: 'string',
      description: `Any of these health states: ${healthStatuses.join(', ')} (repeatable or comma list)`,
    },
    search: {
      type: 'string',
      description: 'Case-insensitive text in name, description, tags and entity names',
      valueHint: 'text',
    },
    'min-size': {
      type: 'string',
      description: 'Archive at least this big: bytes, or 512KiB, 10MB, 1.5GiB',
      valueHint: 'size',
    },
    'max-size': { type: 'string', description: 'Archive at most this big', valueHint: 'size' },
    sort: { type: 'enum', options: [...BACKUP_SORT_KEYS], description: 'Sort key (default createdAt)' },
    asc: { type: 'boolean', description: 'Ascending order' },
    desc: { type: 'boolean', description: 'Descending order (the default)' },
    skip: { type: 'string', description: 'Skip this many matches (paging)' },
    take: { type: 'string', description: 'Return at most this many matches (paging); 0 only counts them' },
  },
  examples: [
    '# Completed nightly backups of the last week that contain Order, biggest first',
    'koan-backup query --tag nightly --entity Order --from 7d --status Completed --sort size --desc',
    '# Backups needing attention, as JSON',
    'koan-backup query --health Critical,Warning --json',
    '# Second page of 20, by name',
    'koan-backup query --sort name --asc --skip 20 --take 20 --min-size 1MiB',
  ],
  async run(args, session, rawArgs) {
    if (args.asc && args.desc) throw usageError('Pass either --asc or --desc, not both.');
    const several = (flag: string, a: string, b: string) =>
      `Repeat --${flag} or give a comma list for several (e.g. --${flag} ${a},${b}); values are case-insensitive.`;
    const statuses = optionalList(rawArgs, 'status')?.map(
      (s) =>
        choiceOption(s, 'status', backupStatuses, several('status', 'Completed', 'PartiallyCompleted')) as BackupStatus,
    );
    const healths = optionalList(rawArgs, 'health')?.map(
      (h) => choiceOption(h, 'health', healthStatuses, several('health', 'Warning', 'Critical')) as HealthStatus,
    );
    // Both bounds inclusive: a date-only --to is the end of that day, as in the library and the HTTP API.
    const dateFrom = dateOption(args.from, 'from');
    const dateTo = dateOption(args.to, 'to', { endOfDay: true });
    const query: BackupQuery = {
      ...opt('tags', optionalList(rawArgs, 'tag')),
      ...opt('entityTypes', optionalList(rawArgs, 'entity')),
      ...opt('dateFrom', dateFrom),
      ...opt('dateTo', dateTo),
      ...opt('storageProfiles', optionalList(rawArgs, 'profile')),
      ...opt('statuses', statuses),
      ...opt('healthStatuses', healths),
      ...opt('searchTerm', args.search || undefined),
      ...opt('minSizeBytes', sizeOption(args['min-size'], 'min-size')),
      ...opt('maxSizeBytes', sizeOption(args['max-size'], 'max-size')),
      ...opt('sortBy', choiceOption(args.sort, 'sort', BACKUP_SORT_KEYS)),
      ...(args.asc ? { sortDirection: 'asc' as const } : args.desc ? { sortDirection: 'desc' as const } : {}),
      ...opt('skip', intOption(args.skip, 'skip', 0, Number.MAX_SAFE_INTEGER)),
      ...opt(
        'take',
        intOption(
          args.take,
          'take',
          0,
          Number.MAX_SAFE_INTEGER,
          'At most this many matches, e.g. --take 20; --take 0 only counts them.',
        ),
      ),
    };
    // The library's check (the same rules as the HTTP API), before any config is read, said with the flags' names.
    try {
      checkBackupQuery(query);
    } catch (e) {
      throw queryError(e);
    }
    return withContext(session, args, async (context) => {
      const result = await new BackupDiscoveryService(context).queryBackups(query);
      if (session.json) {
        // `take` is always there: null when the page is unlimited (JSON has no undefined).
        session.printJson({ query, ...result, take: result.take ?? null });
        return 0;
      }
      if (query.take === 0)
        session.print(
          `${result.totalCount} matching backup${result.totalCount === 1 ? '' : 's'} (--take 0: counted, not listed).`,
        );
      else if (result.backups.length === 0)
        session.print(
          `No backups match (${result.totalCount} before paging). Relax the filters or run \`koan-backup list\`.`,
        );
      else {
        session.print(catalogTable(result.backups));
        session.print();
        session.print(
          `Showing ${result.skip + 1}-${result.skip + result.backups.length} of ${result.totalCount} matching backups`,
        );
      }
      for (const u of result.unavailableProfiles)
        session.note(
          `Warning: storage profile ${u.profile} could not be listed; its backups are not searched. ${u.code}: ${u.message}`,
        );
      return 0;
    });
  },
});

/** The library's refusal of a query across two fields, in the flags the user typed; anything else as it is. */
function queryError(e: unknown): unknown {
  if (!(e instanceof KoanError) || e.code !== 'INVALID_OPTION') return e;
  const d = e.details;
  if (d.option === 'minSizeBytes' && d.maxSizeBytes !== undefined)
    return usageError(`--min-size (${d.minSizeBytes} bytes) is larger than --max-size (${d.maxSizeBytes} bytes).`);
  if (d.option === 'dateFrom' && d.dateTo !== undefined)
    return usageError(
      `--from (${d.dateFrom}) is after --to (${d.dateTo}): nothing could match.`,
      'Both bounds are inclusive; a date alone in --to means the end of that day (UTC), so --from 2024-12-17 --to 2024-12-17 is that whole day.',
    );
  return e;
}

/**
 * BackupQuery validation and date bounds, the same rules as the HTTP API and the CLI: every field is checked (a bad one
 * is `INVALID_OPTION` naming it), impossible dates are refused, a date-only `dateTo` covers its whole day, and `take: 0`
 * counts without listing. `applyQuery` runs on catalog entries built here; `queryBackups` on an empty local profile.
 */
import { BackupDiscoveryService, type BackupInfo, type BackupQuery } from '@koan/data-backup';
import { applyQuery, checkBackupQuery } from '@koan/data-backup/catalog';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const entry = (id: string, createdAt: string, sizeBytes: number): BackupInfo => ({
  id,
  name: `b-${id}`,
  tags: ['t'],
  createdAt,
  status: 'Completed',
  storageProfile: 'local',
  sizeBytes,
  dataSizeBytes: sizeBytes,
  itemCount: 1,
  entityTypes: ['E'],
  providers: ['memory'],
  healthStatus: 'Unknown',
  restorable: true,
  sidecarKey: `b-${id}/sidecar`,
});

const catalog = [
  entry('a', '2024-12-16T23:59:59.999Z', 10),
  entry('b', '2024-12-17T00:00:00.000Z', 20),
  entry('c', '2024-12-17T12:00:00.000Z', 30),
  entry('d', '2024-12-17T23:59:59.999Z', 40),
  entry('e', '2024-12-18T00:00:00.000Z', 50),
];
const ids = (query: BackupQuery) => applyQuery(catalog, { sortDirection: 'asc', ...query }).backups.map((b) => b.id);

let env: Awaited<ReturnType<typeof makeContext>>;
let discovery: BackupDiscoveryService;
beforeAll(async () => {
  env = await makeContext({ qv_mem: { provider: 'memory' } });
  discovery = new BackupDiscoveryService(env.context);
});
afterAll(async () => {
  await env?.cleanup();
});

describe('BackupQuery date bounds', () => {
  it('dateFrom and dateTo are inclusive; a date-only dateTo covers that whole day (UTC)', () => {
    expect(ids({ dateFrom: '2024-12-17', dateTo: '2024-12-17' })).toEqual(['b', 'c', 'd']);
    expect(ids({ dateTo: '2024-12-17' })).toEqual(['a', 'b', 'c', 'd']);
    expect(ids({ dateFrom: '2024-12-17' })).toEqual(['b', 'c', 'd', 'e']);
    // a date-time bound is that exact instant, inclusive
    expect(ids({ dateTo: '2024-12-17T12:00:00Z' })).toEqual(['a', 'b', 'c']);
    expect(ids({ dateFrom: '2024-12-17T12:00:00Z', dateTo: new Date('2024-12-17T23:59:59.999Z') })).toEqual(['c', 'd']);
    // a Date is an instant too: a midnight Date is not widened to the end of its day
    expect(ids({ dateTo: new Date('2024-12-17T00:00:00Z') })).toEqual(['a', 'b']);
  });

  it('refuses impossible dates instead of rolling them over, naming the bound and the reason', () => {
    for (const [query, option, problem] of [
      [{ dateFrom: '2024-02-30' }, 'dateFrom', 'February 2024 has 29 days'],
      [{ dateTo: '2024-02-31T10:00:00Z' }, 'dateTo', 'February 2024 has 29 days'],
      [{ dateFrom: '2023-02-29' }, 'dateFrom', 'February 2023 has 28 days'],
      [{ dateFrom: '2024-00-10' }, 'dateFrom', 'there is no month 00'],
      [{ dateTo: '2024-04-01T23:60:00Z' }, 'dateTo', '23:60:00 is not a time of day'],
    ] as const) {
      let error: unknown;
      try {
        applyQuery(catalog, query);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(query)).toMatchObject({ code: 'INVALID_OPTION', details: { option } });
      expect((error as Error).message).toContain(problem);
      expect((error as Error).message).toContain(option);
    }
    expect(ids({ dateFrom: '2024-02-29', dateTo: '2024-02-29' })).toEqual([]); // a real leap day is fine
  });

  it('dateFrom after dateTo is refused (not an empty result)', () => {
    expect(() => applyQuery(catalog, { dateFrom: '2024-12-18', dateTo: '2024-12-17' })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', details: expect.objectContaining({ option: 'dateFrom' }) }),
    );
    expect(() =>
      applyQuery(catalog, { dateFrom: new Date('2024-12-17T12:00:01Z'), dateTo: '2024-12-17T12:00:00Z' }),
    ).toThrow(/dateFrom/);
    // the same day on both sides is one whole day, not an inverted range
    expect(() => applyQuery(catalog, { dateFrom: '2024-12-17T18:00:00Z', dateTo: '2024-12-17' })).not.toThrow();
  });
});

describe('BackupQuery validation', () => {
  const bad: [BackupQuery, string, string][] = [
    [{ minSizeBytes: Number.NaN }, 'minSizeBytes', 'NaN'],
    [{ minSizeBytes: -1 }, 'minSizeBytes', '-1'],
    [{ maxSizeBytes: '5' as never }, 'maxSizeBytes', '"5"'],
    [{ maxSizeBytes: 1.5 }, 'maxSizeBytes', '1.5'],
    [{ minSizeBytes: Number.POSITIVE_INFINITY }, 'minSizeBytes', 'Infinity'],
    [{ minSizeBytes: 10, maxSizeBytes: 1 }, 'minSizeBytes', 'larger than maxSizeBytes'],
    [{ skip: -1 }, 'skip', '-1'],
    [{ take: 2.5 }, 'take', '2.5'],
    [{ take: '3' as never }, 'take', '"3"'],
    [{ sortBy: 'colour' as never }, 'sortBy', 'colour'],
    [{ sortDirection: 'up' as never }, 'sortDirection', 'up'],
    [{ statuses: ['Done' as never] }, 'statuses', 'Done'],
    [{ statuses: 'Completed' as never }, 'statuses', 'Completed'],
    [{ healthStatuses: ['Fine' as never] }, 'healthStatuses', 'Fine'],
    [{ tags: 'daily' as never }, 'tags', 'daily'],
    [{ entityTypes: [''] }, 'entityTypes', 'non-empty strings'],
    [{ storageProfiles: [42 as never] }, 'storageProfiles', '42'],
    [{ searchTerm: 7 as never }, 'searchTerm', '7'],
    [{ dateFrom: 'yesterday' }, 'dateFrom', 'ISO-8601'],
    [{ dateTo: 1734393600000 as never }, 'dateTo', 'ISO-8601'],
    [{ dateTo: new Date(Number.NaN) }, 'dateTo', 'Invalid Date'],
    [{ tag: ['daily'] } as never, 'tag', 'no such option'],
  ];
  it.each(bad.map(([query, option, shown]) => [option, shown, query] as const))(
    'applyQuery refuses %s = %s',
    (option, shown, query) => {
      let error: unknown;
      try {
        applyQuery(catalog, query);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'INVALID_OPTION', details: { option } });
      expect((error as Error).message).toContain(option);
      expect((error as Error).message).toContain(shown);
    },
  );

  it('queryBackups applies the same checks, before listing any storage', async () => {
    for (const [query, option] of bad)
      await expect(discovery.queryBackups(query), JSON.stringify(query)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        details: { option },
      });
    // even a profile that does not exist: the query is refused first
    await expect(discovery.queryBackups({ storageProfiles: ['nowhere'], take: -1 })).rejects.toMatchObject({
      details: { option: 'take' },
    });
  });

  it('accepts the spec\'s .NET spellings: SortBy "CreatedAt", SortDirection Descending/Ascending (any case)', () => {
    expect(ids({ sortBy: 'CreatedAt', sortDirection: 'Descending' })).toEqual(
      ids({ sortBy: 'createdAt', sortDirection: 'desc' }),
    );
    expect(ids({ sortBy: 'Size', sortDirection: 'Ascending' })).toEqual(ids({ sortBy: 'size', sortDirection: 'asc' }));
    expect(ids({ sortBy: 'NAME' as never })).toEqual(ids({ sortBy: 'name' }));
  });

  it('statuses and healthStatuses in any case, as sortBy (the frontends pass them through)', () => {
    expect(ids({ statuses: ['completed' as never], healthStatuses: ['UNKNOWN' as never] })).toEqual(
      ids({ statuses: ['Completed'], healthStatuses: ['Unknown'] }),
    );
    expect(ids({ statuses: ['failed' as never] })).toEqual([]);
  });

  it('checkBackupQuery checks without listing; a rule across two fields gives both values in details', () => {
    expect(() => checkBackupQuery({ statuses: ['Completed'], take: 5 })).not.toThrow();
    expect(() => checkBackupQuery({ minSizeBytes: 10, maxSizeBytes: 1 })).toThrow(
      expect.objectContaining({
        code: 'INVALID_OPTION',
        details: { option: 'minSizeBytes', minSizeBytes: 10, maxSizeBytes: 1 },
      }),
    );
    expect(() => checkBackupQuery({ dateFrom: '2024-12-18', dateTo: '2024-12-17' })).toThrow(
      expect.objectContaining({
        details: { option: 'dateFrom', dateFrom: '2024-12-18T00:00:00.000Z', dateTo: '2024-12-17T23:59:59.999Z' },
      }),
    );
    expect(() => checkBackupQuery({ take: -1 })).toThrow(expect.objectContaining({ details: { option: 'take' } }));
  });

  it('take: 0 is a count-only query: totalCount and no backups', async () => {
    const counted = applyQuery(catalog, { take: 0, dateFrom: '2024-12-17' });
    expect(counted).toEqual({ backups: [], totalCount: 4, skip: 0, take: 0 });
    expect(await discovery.queryBackups({ take: 0 })).toMatchObject({ backups: [], totalCount: 0, take: 0 });
  });

  it('accepts valid bounds: zero sizes, equal min and max, an empty list as no filter', () => {
    expect(ids({ minSizeBytes: 30, maxSizeBytes: 30 })).toEqual(['c']);
    expect(ids({ minSizeBytes: 0, tags: [], searchTerm: '  ' })).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(ids({ dateFrom: undefined, skip: 4 })).toEqual(['e']);
  });
});

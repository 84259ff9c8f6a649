import type { BackupInfo } from '@koan/data-backup';
import {
  DEFAULT_PROTECTED_TAGS,
  KEEP_COUNTS,
  planRetention,
  type RetentionPolicy,
} from '@koan/data-backup/maintenance';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const DAY = 86_400_000;

function backup(over: Partial<BackupInfo> & { id: string; createdAt: string }): BackupInfo {
  return {
    name: 'nightly',
    tags: [],
    status: 'Completed',
    storageProfile: 'local',
    sizeBytes: 1000,
    dataSizeBytes: 0,
    itemCount: 0,
    entityTypes: [],
    providers: [],
    healthStatus: 'Healthy',
    restorable: true,
    sidecarKey: `${over.id}.manifest.json`,
    ...over,
  } as BackupInfo;
}

/**
 * 1000 days from 2022-01-01, a backup at 06:00 and 18:00 UTC each: backup n fails when n % 17 == 0, its validation
 * failed when n % 23 == 0, it was never validated when n % 3 == 0; backup 200 carries the tag "keep".
 */
function thousandDays(): BackupInfo[] {
  const out: BackupInfo[] = [];
  for (let i = 0; i < 1000; i++)
    for (const slot of [0, 1]) {
      const n = i * 2 + slot;
      out.push(
        backup({
          id: `b${String(n).padStart(5, '0')}`,
          createdAt: new Date(Date.UTC(2022, 0, 1) + i * DAY + (slot ? 18 : 6) * 3_600_000).toISOString(),
          tags: n === 200 ? ['keep'] : [],
          status: n % 17 === 0 ? 'Failed' : 'Completed',
          healthStatus: n % 23 === 0 ? 'Critical' : n % 3 === 0 ? 'Unknown' : 'Healthy',
          sizeBytes: 1000 + n,
        }),
      );
    }
  return out;
}

describe('retention: golden', () => {
  it('1000 days of two backups a day, with failures and unvalidated ones: exactly these survive', () => {
    const all = thousandDays();
    const now = new Date('2024-09-26T18:30:00Z'); // 30 minutes after the last backup
    const policy: RetentionPolicy = {
      keepLast: 3,
      keepDaily: 7,
      keepWeekly: 5,
      keepMonthly: 12,
      keepYearly: 3,
      keepWithin: '2d',
    };
    const plan = planRetention(all, policy, { now });
    const kept = Object.fromEntries(plan.keep.map((k) => [k.backup.id, k.reasons]));
    // Worked out by hand: b01989 (Sep 21 18:00) failed, so Sep 21 keeps its 06:00 backup; the year 2022 keeps its
    // unvalidated Dec 31 backup (unvalidated is not known bad); "within 2d" counts back from the newest backup.
    expect(kept).toEqual({
      b00200: ['protected tag "keep"'],
      b00729: ['yearly 2022'],
      b01337: ['monthly 2023-10'],
      b01397: ['monthly 2023-11'],
      b01459: ['monthly 2023-12', 'yearly 2023'],
      b01521: ['monthly 2024-01'],
      b01579: ['monthly 2024-02'],
      b01641: ['monthly 2024-03'],
      b01701: ['monthly 2024-04'],
      b01763: ['monthly 2024-05'],
      b01823: ['monthly 2024-06'],
      b01885: ['monthly 2024-07'],
      b01947: ['monthly 2024-08'],
      b01949: ['weekly 2024-W35'],
      b01963: ['weekly 2024-W36'],
      b01977: ['weekly 2024-W37'],
      b01987: ['daily 2024-09-20'],
      b01988: ['daily 2024-09-21'],
      b01991: ['daily 2024-09-22', 'weekly 2024-W38'],
      b01993: ['daily 2024-09-23'],
      b01995: ['daily 2024-09-24', 'within 2d'],
      b01996: ['within 2d'],
      b01997: ['last 3', 'daily 2024-09-25', 'within 2d'],
      b01998: ['last 3', 'within 2d'],
      b01999: [
        'newest healthy backup of its name in this profile',
        'last 3',
        'daily 2024-09-26',
        'weekly 2024-W39',
        'monthly 2024-09',
        'yearly 2024',
        'within 2d',
        'younger than 1 h',
      ],
    });
    expect(plan.remove).toHaveLength(2000 - 25);
    expect(plan.freedBytes).toBe(plan.remove.reduce((n, b) => n + b.sizeBytes, 0));
    // Applying the plan and planning again removes nothing more.
    expect(
      planRetention(
        plan.keep.map((k) => k.backup),
        policy,
        { now },
      ).remove,
    ).toEqual([]);
  });

  it('never deletes the newest healthy backup, whatever the policy says; a policy that keeps nothing is refused', () => {
    const now = new Date('2024-07-10T12:00:00Z');
    const old = backup({ id: 'old', createdAt: '2024-06-01T02:00:00Z' });
    const newest = backup({ id: 'newest', createdAt: '2024-06-02T02:00:00Z' });
    const bad = backup({ id: 'bad', createdAt: '2024-06-03T02:00:00Z', healthStatus: 'Critical' });
    const failed = backup({ id: 'failed', createdAt: '2024-06-04T02:00:00Z', status: 'Failed' });
    // keepLast 1 keeps the newest completed backup, preferring one whose validation did not fail.
    const plan = planRetention([old, newest, bad, failed], { keepLast: 1, minAgeHours: 0 }, { now });
    expect(plan.keep.map((k) => [k.backup.id, k.reasons])).toEqual([
      ['newest', ['newest healthy backup of its name in this profile', 'last 1']],
    ]);
    for (const zeros of [
      {},
      { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 },
      Object.fromEntries(KEEP_COUNTS.map((k) => [k, 0])),
    ])
      expect(() => planRetention([old], zeros, { now })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/keeps something/) }),
      );
    expect(() => planRetention([old], { keepWithin: 'forever' }, { now })).toThrow(/keepWithin.*30d/);
    expect(() => planRetention([old], { keepDaily: -1 }, { now })).toThrow(/keepDaily/);
  });

  it('scopes by name and tag: backups outside the scope are left alone', () => {
    const now = new Date('2024-07-10T12:00:00Z');
    const a1 = backup({ id: 'a1', name: 'a', createdAt: '2024-06-01T02:00:00Z', tags: ['db'] });
    const a2 = backup({ id: 'a2', name: 'a', createdAt: '2024-06-02T02:00:00Z', tags: ['db'] });
    const b1 = backup({ id: 'b1', name: 'b', createdAt: '2024-06-01T02:00:00Z' });
    const b2 = backup({ id: 'b2', name: 'b', createdAt: '2024-06-02T02:00:00Z' });
    const byName = planRetention([a1, a2, b1, b2], { keepLast: 1, minAgeHours: 0 }, { now, scope: { names: ['b'] } });
    expect(byName.remove.map((b) => b.id)).toEqual(['b1']);
    expect(byName.keep.find((k) => k.backup.id === 'a1')?.reasons).toEqual(['outside the scope']);
    const byTag = planRetention([a1, a2, b1, b2], { keepLast: 1, minAgeHours: 0 }, { now, scope: { tags: ['DB'] } });
    expect(byTag.remove.map((b) => b.id)).toEqual(['a1']);
  });
});

describe('retention: a series never pruned to nothing', () => {
  const now = new Date('2024-07-10T12:00:00Z');

  it('a name whose backups are all PartiallyCompleted keeps its newest restorable one', () => {
    const partial = (id: string, day: number) =>
      backup({ id, createdAt: `2024-06-0${day}T02:00:00Z`, status: 'PartiallyCompleted' });
    const failed = backup({ id: 'f', createdAt: '2024-06-09T02:00:00Z', status: 'Failed', restorable: false });
    for (const policy of [{ keepLast: 3, keepDaily: 7 }, { keepWithin: '30d' }] as RetentionPolicy[]) {
      const plan = planRetention([partial('p1', 1), partial('p2', 2), partial('p3', 3), failed], policy, { now });
      expect(plan.keep.map((k) => [k.backup.id, k.reasons])).toEqual([
        [
          'p3',
          ['newest restorable backup of its name in this profile (PartiallyCompleted; none is completed and healthy)'],
        ],
      ]);
    }
  });

  it('each profile is its own series: an off-site copy is not aged out by a newer backup that is not copied yet', () => {
    const local = [1, 2, 3].map((d) => backup({ id: `l${d}`, createdAt: `2024-06-0${d}T02:00:00Z` }));
    // A copy keeps the id of its original: each copy is still decided on its own.
    const offsite = [1, 2].map((d) =>
      backup({ id: `l${d}`, createdAt: `2024-06-0${d}T02:00:00Z`, storageProfile: 'offsite' }),
    );
    const plan = planRetention([...local, ...offsite], { keepLast: 1, minAgeHours: 0 }, { now });
    const where = (b: BackupInfo) => `${b.storageProfile}:${b.id}`;
    expect(plan.keep.map((k) => where(k.backup)).sort()).toEqual(['local:l3', 'offsite:l2']);
    expect(plan.remove.map(where).sort()).toEqual(['local:l1', 'local:l2', 'offsite:l1']);
  });

  it('under a tag scope, the reason says among which backups it is the newest', () => {
    const a = backup({ id: 'a', createdAt: '2024-06-01T02:00:00Z', tags: ['db'] });
    const b = backup({ id: 'b', createdAt: '2024-06-02T02:00:00Z' });
    const plan = planRetention([a, b], { keepLast: 1, minAgeHours: 0 }, { now, scope: { tags: ['db'] } });
    expect(plan.keep.find((k) => k.backup.id === 'a')?.reasons[0]).toBe(
      'newest healthy backup of its name tagged db in this profile',
    );
  });
});

describe('retention: invariants (property tests)', () => {
  const T0 = Date.UTC(2023, 0, 1);
  const backups = fc
    .array(
      fc.record({
        name: fc.constantFrom('a', 'b', 'c'),
        profile: fc.constantFrom('local', 'local', 'offsite'),
        minutes: fc.integer({ min: 0, max: 400 * 24 * 60 }),
        status: fc.constantFrom('Completed', 'Completed', 'Completed', 'Failed', 'PartiallyCompleted'),
        health: fc.constantFrom('Healthy', 'Unknown', 'Warning', 'Critical'),
        tags: fc.subarray(['keep', 'permanent', 'release', 'x']),
        size: fc.integer({ min: 0, max: 10_000 }),
      }),
      { maxLength: 60 },
    )
    .map((rows) =>
      rows.map((r, i) =>
        backup({
          id: `id${String(i).padStart(3, '0')}`,
          name: r.name,
          storageProfile: r.profile,
          createdAt: new Date(T0 + r.minutes * 60_000).toISOString(),
          status: r.status as BackupInfo['status'],
          restorable: r.status !== 'Failed',
          healthStatus: r.health as BackupInfo['healthStatus'],
          tags: r.tags,
          sizeBytes: r.size,
        }),
      ),
    );
  const count = fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined });
  const policies = fc
    .record({
      keepLast: count,
      keepHourly: count,
      keepDaily: count,
      keepWeekly: count,
      keepMonthly: count,
      keepYearly: count,
      keepWithin: fc.option(fc.constantFrom('12h', '3d', '2w', '1m', '1y'), { nil: undefined }),
      minAgeHours: fc.constantFrom(0, 1, 48),
    })
    .filter((p) => KEEP_COUNTS.some((k) => (p[k] ?? 0) > 0) || p.keepWithin !== undefined)
    .map((p) => Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined)) as RetentionPolicy);
  const nowArb = fc.integer({ min: 0, max: 30 * 24 * 60 }).map((m) => new Date(T0 + 400 * DAY + m * 60_000));

  it('keeps the newest healthy backup of each name, protected tags and young backups; every backup is decided once', () => {
    fc.assert(
      fc.property(backups, policies, nowArb, (all, policy, now) => {
        const plan = planRetention(all, policy, { now });
        const kept = new Set(plan.keep.map((k) => k.backup.id));
        expect(plan.keep.length + plan.remove.length).toBe(all.length);
        expect(plan.remove.every((b) => !kept.has(b.id))).toBe(true);
        expect(plan.freedBytes).toBe(plan.remove.reduce((n, b) => n + b.sizeBytes, 0));
        for (const k of plan.keep) expect(new Set(k.reasons).size).toBe(k.reasons.length);
        const newest = (x: BackupInfo, y: BackupInfo) =>
          x.createdAt < y.createdAt ? 1 : x.createdAt > y.createdAt ? -1 : x.id < y.id ? 1 : -1;
        // Per series (a name in a profile): its newest healthy completed backup, else a restorable one, survives.
        for (const series of new Set(all.map((b) => `${b.name}/${b.storageProfile}`))) {
          const group = all.filter((b) => `${b.name}/${b.storageProfile}` === series);
          const healthy = group
            .filter((b) => b.status === 'Completed' && b.healthStatus !== 'Critical')
            .sort(newest)[0];
          if (healthy) expect(kept.has(healthy.id)).toBe(true);
          if (group.some((b) => b.restorable)) expect(group.some((b) => b.restorable && kept.has(b.id))).toBe(true);
        }
        for (const b of all) {
          if (b.tags.some((t) => DEFAULT_PROTECTED_TAGS.includes(t))) expect(kept.has(b.id)).toBe(true);
          if (now.getTime() - Date.parse(b.createdAt) < (policy.minAgeHours ?? 1) * 3_600_000)
            expect(kept.has(b.id)).toBe(true);
        }
      }),
      { numRuns: 300, seed: 20261207 },
    );
  });

  it('is idempotent: planning again over the survivors removes nothing', () => {
    fc.assert(
      fc.property(backups, policies, nowArb, (all, policy, now) => {
        const plan = planRetention(all, policy, { now });
        expect(
          planRetention(
            plan.keep.map((k) => k.backup),
            policy,
            { now },
          ).remove,
        ).toEqual([]);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('is monotonic: keeping more of any kind never deletes a backup that was kept', () => {
    fc.assert(
      fc.property(backups, policies, nowArb, fc.constantFrom(...KEEP_COUNTS), (all, policy, now, rule) => {
        const kept = new Set(planRetention(all, policy, { now }).keep.map((k) => k.backup.id));
        const more = planRetention(all, { ...policy, [rule]: (policy[rule] ?? 0) + 1 }, { now });
        for (const b of more.remove) expect(kept.has(b.id)).toBe(false);
      }),
      { numRuns: 300, seed: 11 },
    );
  });
});

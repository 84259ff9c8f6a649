/**
 * What a restore selects: archived sets (`sets`), a target set that two archived sets would share (refused before
 * anything is written), and a selection that matches nothing (an error, not an empty success).
 */
import { defineEntity, t, unregisterEntity } from '@koan/data';
import { type BackupError, backupAllEntities, restoreAllEntities, restoreEntity } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';

const RsItem = defineEntity({
  name: 'RsItem',
  key: 'id',
  source: 'rs_mem',
  fields: { id: t.integer(), v: t.string() },
});
const RsOther = defineEntity({ name: 'RsOther', key: 'id', source: 'rs_mem', fields: { id: t.integer() } });

let env: Awaited<ReturnType<typeof makeContext>>;
const items = () => RsItem.withRuntime(env.context.runtime);

beforeAll(async () => {
  env = await makeContext({ rs_mem: { provider: 'memory' } });
  await items().upsertMany([
    { id: 1, v: 'live-1' },
    { id: 2, v: 'live-2' },
  ]);
  await items()
    .set('archive')
    .upsertMany([{ id: 1, v: 'archived-1' }]);
  await RsOther.withRuntime(env.context.runtime).upsertMany([{ id: 9 }]);
  await backupAllEntities(env.context, 'sets');
});

afterAll(async () => {
  unregisterEntity('RsItem');
  unregisterEntity('RsOther');
  await env.cleanup();
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: BackupError) => e,
  );

describe('restore selection', () => {
  it('refuses a target set that two archived sets would share, before writing anything (dry run too)', async () => {
    for (const dryRun of [false, true]) {
      const err = await failure(restoreEntity(env.context, RsItem, 'sets', { targetSet: 'staging', dryRun }));
      expect(err?.code).toBe('INVALID_OPTION');
      expect(err?.message).toMatch(
        /RsItem's sets root, archive would all be restored into "staging".*sets: \['root'\]/,
      );
    }
    const viaMap = await failure(restoreAllEntities(env.context, 'sets', { setMap: { RsItem: 'staging' } }));
    expect(viaMap?.code).toBe('INVALID_OPTION');
    expect(await items().set('staging').count()).toBe(0);
  });

  it('sets picks archived sets: one of them goes into the target set, exactly', async () => {
    const report = await restoreEntity(env.context, RsItem, 'sets', { sets: ['archive'], targetSet: 'staging' });
    expect(report.entities.map((e) => [e.set, e.targetSet, e.inserted])).toEqual([['archive', 'staging', 1]]);
    expect(await items().set('staging').all()).toEqual([{ id: 1, v: 'archived-1' }]);
    const err = await failure(restoreEntity(env.context, RsItem, 'sets', { sets: ['archiv'] }));
    expect(err?.code).toBe('INVALID_OPTION');
    expect(err?.message).toMatch(/"archiv".*\(root, archive\)/);
  });

  it('a selection that matches no entity set is an error naming what the backup holds', async () => {
    const typo = await failure(restoreAllEntities(env.context, 'sets', { includeEntityTypes: ['RsItme'] }));
    expect(typo?.code).toBe('ENTITY_NOT_FOUND');
    expect(typo?.message).toMatch(/holds RsItem@root, RsItem@archive, RsOther@root|holds .*RsItem@archive/);
    const Absent = defineEntity({ name: 'RsAbsent', key: 'id', source: 'rs_mem', fields: { id: t.integer() } });
    try {
      expect((await failure(restoreEntity(env.context, Absent, 'sets')))?.code).toBe('ENTITY_NOT_FOUND');
    } finally {
      unregisterEntity('RsAbsent');
    }
  });
});

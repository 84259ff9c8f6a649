import { buildSchema, Entity, type FieldsShape, t } from '@koan/data';
import { backupEntity, restoreEntity } from '@koan/data-backup';
import { it } from 'vitest';
import { makeContext } from './helpers.js';
const fields = { id: t.integer(), name: t.string() };
it('dbg', async () => {
  const env = await makeContext({ default: { provider: 'memory' } });
  const P = new Entity(buildSchema({ name: 'P', key: 'id', fields }, 'declared'), fields as typeof fields & FieldsShape).withRuntime(env.context.runtime);
  await P.upsertMany(Array.from({ length: 2500 }, (_, i) => ({ id: i, name: 'x' })));
  console.log('a');
  await backupEntity(env.context, P, 'p', { batchSize: 300 });
  console.log('b');
  await P.removeAll();
  const r = await restoreEntity(env.context, P, 'p');
  console.log('c', r.entities[0]?.inserted, r.entities[0]?.updated, await P.count());
  await env.cleanup();
}, 10000);

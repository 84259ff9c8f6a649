// One backup or restore of the benchmark entity through the full pipeline (adapter -> archive -> local storage),
// in its own process so its peak RSS is its own.
// usage: node bench/_job.mjs backup|restore <work dir> '<source config JSON>'
import { join } from 'node:path';
import { DataRuntime, Entity, t } from '@koan/data';
import { buildSchema } from '@koan/data/adapter-kit';
import { BackupContext, backupEntity, restoreEntity } from '@koan/data-backup';
import { StorageProfiles } from '@koan/storage';

/** ~300 bytes per record as JSON: uuid, name, email, integer, decimal(12,2), datetime, JSON tags, 100-character bio. */
export const fields = {
  id: t.uuid(),
  name: t.string(),
  email: t.string(),
  visits: t.integer(),
  balance: t.decimal(12, 2),
  createdAt: t.datetime(),
  tags: t.json(),
  bio: t.string(),
};
export const schema = buildSchema({ name: 'Person', key: 'id', fields }, 'declared');

/** The library's default batch size (1000) unless BENCH_BATCH says otherwise: the figures are what users get. */
const batchOption = () => (process.env.BENCH_BATCH ? { batchSize: Number(process.env.BENCH_BATCH) } : {});

if (import.meta.url === `file://${process.argv[1]}`) {
  const [, , op, dir, sourceJson] = process.argv;
  const runtime = new DataRuntime({ sources: { default: JSON.parse(sourceJson) }, cwd: dir });
  const storage = await StorageProfiles.load(
    { profiles: { local: { provider: 'local', settings: { root: join(dir, 'backups') } } } },
    { cwd: dir },
  );
  const context = new BackupContext({ runtime, storage });
  const Person = new Entity(schema, fields).withRuntime(runtime);
  const t0 = performance.now();
  let result;
  if (op === 'backup') {
    const m = await backupEntity(context, Person, 'bench', batchOption());
    result = {
      items: m.verification.totalItemCount,
      archiveBytes: m.archive.sizeBytes,
      dataBytes: m.verification.totalSizeBytes,
    };
  } else {
    const r = await restoreEntity(context, Person, 'bench', batchOption());
    result = { items: r.totalRecords, validated: r.validated };
  }
  await context.close();
  console.log(JSON.stringify({ op, ms: performance.now() - t0, ...result }));
}

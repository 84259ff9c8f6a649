/** Exactly one scheduler among 4 processes sharing a PostgreSQL lease store (see lease-processes/suite.ts). */
import { randomBytes } from 'node:crypto';
import { serviceUrls } from '@koan/data/testing';
import pg from 'pg';
import { describeSchedulerScenario } from './lease-processes/suite.js';
import { probeDialect } from './scratch-databases.js';

describeSchedulerScenario('postgres', await probeDialect('postgres'), async () => {
  const suffix = randomBytes(4).toString('hex');
  const namespace = `koan_lease_mp_${suffix}`;
  const runsTable = `koan_lease_runs_${suffix}`;
  const admin = new pg.Client({ connectionString: serviceUrls.postgres });
  await admin.connect();
  await admin.query(`CREATE TABLE ${runsTable} (tick int NOT NULL, token bigint NOT NULL, pid int NOT NULL)`);
  return {
    url: serviceUrls.postgres,
    namespace,
    runsTable,
    readRuns: async () =>
      (await admin.query(`SELECT tick, token, pid FROM ${runsTable} ORDER BY tick, token`)).rows.map((r) => ({
        tick: r.tick,
        token: Number(r.token),
        pid: r.pid,
      })),
    cleanup: async () => {
      await admin.query(`DROP TABLE IF EXISTS ${runsTable}, ${namespace}`);
      await admin.end();
    },
  };
});

/** Exactly one scheduler among 4 processes sharing a Redis lease store (see lease-processes/suite.ts). */
import { randomBytes } from 'node:crypto';
import { serviceUrls } from '@koan/data/testing';
import { Redis } from 'ioredis';
import { describeSchedulerScenario } from './lease-processes/suite.js';
import { deleteRedisKeys, probeRedis } from './scratch-databases.js';

describeSchedulerScenario('redis', await probeRedis(), async (leaseName) => {
  const namespace = `koanleasemp${randomBytes(4).toString('hex')}:`;
  const reader = new Redis(serviceUrls.redis);
  return {
    url: serviceUrls.redis,
    namespace,
    runsTable: '',
    readRuns: async () =>
      (await reader.lrange(`${namespace}{${leaseName}}:runs`, 0, -1))
        .map((run) => JSON.parse(run) as { tick: number; token: number; pid: number })
        .sort((a, b) => a.tick - b.tick || a.token - b.token),
    cleanup: async () => {
      reader.disconnect();
      await deleteRedisKeys(namespace);
    },
  };
});

/**
 * `@koan/data-backup/lease`: named leases with fencing tokens, so that among N instances exactly one runs the schedules,
 * maintenance and retention. The in-process store is the default; `@koan/data-postgres/lease` and
 * `@koan/data-redis/lease` give stores shared by every instance.
 */
export { Leadership, type LeadershipOptions } from './leadership.js';
export { type Lease, LeaseLock, type LeaseRun } from './lock.js';
export { InProcessLeaseStore, type LeaseGrant, type LeaseStore, processLeaseStore } from './store.js';

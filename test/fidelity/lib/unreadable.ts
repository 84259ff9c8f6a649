/**
 * A table the backup cannot read: the source is backed up as a database user that may read every table but one.
 * The backup must fail naming that table; with `--exclude-entity` it must complete and name it in `omitted`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun } from './cli.js';
import type { SourceFixture } from './fixture.js';

interface LimitedUser {
  readonly url: string;
  drop(): Promise<void>;
}

async function limitedUser(f: SourceFixture, unreadable: string): Promise<LimitedUser> {
  const user = `koan_fid_ro_${randomBytes(4).toString('hex')}`;
  const src = f.source;
  const url = new URL(src.url);
  url.username = user;
  url.password = '';
  if (src.provider === 'postgres') {
    const namespaces = [...new Set(f.tables.map((t) => t.namespace ?? 'public'))].map((n) => `"${n}"`).join(', ');
    await src.query(`CREATE ROLE ${user} LOGIN`);
    await src.script(`
      GRANT USAGE ON SCHEMA ${namespaces} TO ${user};
      GRANT SELECT ON ALL TABLES IN SCHEMA ${namespaces} TO ${user};
      GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${namespaces} TO ${user};
      REVOKE SELECT ON ${f.table(unreadable).sql} FROM ${user};`);
    return {
      url: url.toString(),
      drop: async () => {
        await src.script(`DROP OWNED BY ${user};`);
        await src.query(`DROP ROLE ${user}`);
      },
    };
  }
  await src.query(`CREATE USER '${user}'@'%'`);
  const objects = await src.query(`SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()`);
  // MariaDB hides a table from a user with no privilege on it: INSERT alone keeps it visible but unreadable.
  for (const [name] of objects as string[][]) {
    const privileges = name === unreadable ? 'INSERT' : 'SELECT, SHOW VIEW, TRIGGER';
    await src.query(`GRANT ${privileges} ON \`${src.name}\`.\`${name!.replaceAll('`', '``')}\` TO '${user}'@'%'`);
  }
  return { url: url.toString(), drop: () => src.query(`DROP USER '${user}'@'%'`).then(() => undefined) };
}

/**
 * `unreadable` is the table the backup user may not read; `alsoExclude` are entities every backup of this check leaves
 * out (a large table, only to keep the check fast).
 */
export function describeUnreadableTable(
  f: SourceFixture,
  unreadable: string,
  alsoExclude: readonly string[] = [],
  skip?: string,
): void {
  describe.skipIf(Boolean(skip))(`a table the backup user may not read (${unreadable})`, () => {
    let user: LimitedUser | undefined;
    beforeAll(async () => {
      if (f.setupError) throw f.setupError;
      user = await limitedUser(f, unreadable);
    });
    afterAll(async () => {
      await user?.drop();
    });

    it('an --exclude-entity that matches no table is an error naming the known tables', async () => {
      const run = await f.ws.run([
        'backup',
        `${f.backupName}-nonesuch`,
        '--source',
        f.source.url,
        '--exclude-entity',
        [...alsoExclude, 'no_such_table'].join(','),
      ]);
      expect(run.exitCode, describeRun(run)).not.toBe(0);
      expect(run.json?.error?.message ?? '').toMatch(/no_such_table/);
      const known = f.entities[0]?.entityType ?? '';
      expect(run.json?.error?.message ?? '', 'the message names the known entities').toContain(known);
    });

    it('the backup fails (non-zero exit), naming the table', async () => {
      const run = await f.ws.run([
        'backup',
        `${f.backupName}-unreadable`,
        '--source',
        user!.url,
        ...(alsoExclude.length ? ['--exclude-entity', alsoExclude.join(',')] : []),
      ]);
      expect(run.exitCode, describeRun(run)).not.toBe(0);
      const failedEntities = (run.json?.entities ?? []).filter((e) => e.status !== 'Completed');
      const text = JSON.stringify([run.json?.error ?? null, failedEntities]);
      expect(text, describeRun(run)).toMatch(new RegExp(`\\b${unreadable}\\b`));
    });

    it('with --exclude-entity it completes and the manifest names the table in omitted, with a reason', async () => {
      const run = await f.ws.run([
        'backup',
        `${f.backupName}-excluded`,
        '--source',
        user!.url,
        '--exclude-entity',
        [...alsoExclude, unreadable].join(','),
      ]);
      expect(run.exitCode, describeRun(run)).toBe(0);
      const entities = (run.json?.entities ?? []).map((e) => e.entityType);
      // Every other entity of the full backup is there (tables the full backup misses fail their own tests).
      const others = f.entities.map((e) => e.entityType).filter((n) => n !== unreadable && !alsoExclude.includes(n));
      expect([...entities].sort()).toEqual(others.sort());
      const omitted = (run.json?.omitted ?? []).find((o) => o.name.split('.').pop() === unreadable);
      expect(omitted, `omitted: ${JSON.stringify(run.json?.omitted)}`).toBeDefined();
      expect(omitted!.reason.length).toBeGreaterThan(0);
    });
  });
}

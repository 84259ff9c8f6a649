/**
 * One restore direction through the CLI: `restore NAME --target-source URL`, and when the CLI refuses, the refusal is
 * recorded (code, message, the entity it names, what the target holds afterwards) and the restore is run again with
 * that entity excluded, until it completes or nothing more can be learned. So one refused table never hides how every
 * other table of the direction comes back.
 */
import { tablesOf } from './catalog.js';
import { type CliRun, type CliWorkspace, cliError } from './cli.js';
import type { Scratch } from './scratch.js';

export interface Refusal {
  readonly exitCode: number;
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
  /** The entity the refusal names (details, else the message), or undefined when it names none of them. */
  readonly entity?: string;
  /** Entities the run's report shows as not restored, when the run reported per entity instead of refusing. */
  readonly failedEntities: readonly string[];
  /** Tables (with row counts) the target holds after the run that it did not hold before: must be none. */
  readonly leftBehind: readonly string[];
}

export interface RestoreOutcome {
  readonly runs: readonly CliRun[];
  readonly refusals: readonly Refusal[];
  readonly excluded: readonly string[];
  /** The run that restored every entity not excluded (exit 0, status Completed, every entity Restored). */
  readonly completed?: CliRun;
  /** Why no run completed. */
  readonly stuck?: string;
  /** The target the completed run wrote into (a fresh one is made when a refused run left something behind). */
  readonly target: Scratch;
}

/** Every table of the target with its row count: `table=rows`. */
async function targetState(db: Scratch): Promise<string[]> {
  const tables = await tablesOf(db);
  if (!tables.length) return [];
  const counts = await db.query(tables.map((t, i) => `SELECT ${i}, count(*) FROM ${t.sql}`).join(' UNION ALL '));
  return counts.map(([i, n]) => `${tables[Number(i)]!.id}=${n}`).sort();
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The entity a failed run is about: named in the error's details, else first named in its text. */
export function namedEntity(run: CliRun, entities: readonly string[]): string | undefined {
  const e = cliError(run);
  const d = (e?.details ?? {}) as Record<string, unknown>;
  for (const k of ['entity', 'entityType'])
    if (typeof d[k] === 'string' && entities.includes(d[k] as string)) return d[k] as string;
  const text = [e?.message ?? '', ...(Array.isArray(d.problems) ? d.problems.map(String) : [])].join('\n');
  const at = (name: string, re: RegExp) => {
    const m = re.exec(text);
    return m ? { name, index: m.index } : undefined;
  };
  const earliest = (make: (n: string) => RegExp) =>
    entities
      .map((n) => at(n, make(escapeRe(n))))
      .filter((x) => x !== undefined)
      .sort((a, b) => a.index - b.index || b.name.length - a.name.length)[0]?.name;
  // `Entity.field` or `Entity:` is how messages name an entity; a bare mention comes second.
  return (
    earliest((n) => new RegExp(`(?<![\\w.])${n}(?=[.:])`)) ?? earliest((n) => new RegExp(`(?<![\\w.])${n}(?![\\w])`))
  );
}

function failedOf(run: CliRun): string[] {
  return (run.json?.entities ?? []).filter((e) => e.status !== 'Restored').map((e) => e.entityType);
}

/**
 * Restores backup `name` into `target` (made by `makeTarget`, again when a refused run left something behind),
 * excluding refused entities one by one. `entities` are the backup's entity names.
 */
export async function restoreDirection(
  ws: CliWorkspace,
  name: string,
  entities: readonly string[],
  makeTarget: () => Promise<Scratch>,
): Promise<RestoreOutcome> {
  let target = await makeTarget();
  const runs: CliRun[] = [];
  const refusals: Refusal[] = [];
  const excluded: string[] = [];
  for (let attempt = 0; attempt <= entities.length; attempt++) {
    const before = await targetState(target);
    const args = ['restore', name, '--target-source', target.url];
    if (excluded.length) args.push('--exclude-entity', excluded.join(','));
    const run = await ws.run(args);
    runs.push(run);
    const failedEntities = failedOf(run);
    if (run.exitCode === 0 && run.json?.status === 'Completed' && failedEntities.length === 0)
      return { runs, refusals, excluded, completed: run, target };
    const after = await targetState(target);
    const leftBehind = after.filter((t) => !before.includes(t));
    const e = cliError(run);
    const entity = failedEntities[0] ?? namedEntity(run, entities);
    refusals.push({
      exitCode: run.exitCode,
      code: e?.code ?? `(no error; status ${run.json?.status})`,
      message: e?.message ?? (run.stderr || run.stdout).slice(0, 2000),
      ...(e?.details ? { details: e.details } : {}),
      ...(entity ? { entity } : {}),
      failedEntities,
      leftBehind,
    });
    const next = failedEntities.length ? failedEntities : entity ? [entity] : [];
    if (!next.length || next.some((n) => excluded.includes(n)))
      return { runs, refusals, excluded, stuck: 'the failed run names no entity that is not excluded yet', target };
    excluded.push(...next);
    if (leftBehind.length) {
      await target.drop();
      target = await makeTarget();
    }
  }
  return { runs, refusals, excluded, stuck: 'every entity was excluded', target };
}

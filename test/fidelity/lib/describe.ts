/**
 * The suite's tests, registered per source fixture and per restore direction: one `it` per table and check, so a
 * failure names the table and what differs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRun } from './cli.js';
import { countRows } from './compare.js';
import { Direction, type DirectionSpec, type TableOutcome } from './direction.js';
import type { SourceFixture } from './fixture.js';

const SETUP_TIMEOUT = 600_000;

/** Registers setup/teardown of a fixture and the checks of its backup. */
export function describeBackup(f: SourceFixture): void {
  const ids = Object.keys(f.spec.expectations);
  beforeAll(() => f.setup(), SETUP_TIMEOUT);
  afterAll(() => f.teardown(), SETUP_TIMEOUT);

  it('the source holds the tables this suite describes', () => {
    expect(f.tables.map((t) => t.id).sort()).toEqual([...ids].sort());
  });

  it('backup --source exits 0 with status Completed', () => {
    expect(f.backup?.exitCode, describeRun(f.backup!)).toBe(0);
    expect(f.backup?.json?.status).toBe('Completed');
  });

  it.for(ids)('%s is backed up whole: one entity, every row, Completed', async (id) => {
    const entity = f.entityOf(id);
    const known = f.entities.map((e) => e.entityType).join(', ');
    const omitted = f.omitted.find((o) => o.name.endsWith(id));
    expect(entity, `no entity for ${id} (entities: ${known}; omitted: ${JSON.stringify(omitted)})`).toBeDefined();
    const e = f.entities.find((x) => x.entityType === entity)!;
    expect({ status: e.status, items: e.itemCount }).toEqual({
      status: 'Completed',
      items: await countRows(f.source, f.table(id)),
    });
  });

  if (f.spec.notData.length)
    it.for(f.spec.notData.map((o) => [o.name, o.kind] as const))(
      "%s (%s, not data) is named in the manifest's omitted, with a reason",
      ([name, kind]) => {
        const hit = f.omitted.find(
          (o) =>
            o.name
              .replace(/\(.*\)$/, '')
              .split('.')
              .pop() === name,
        );
        expect(hit, `omitted: ${JSON.stringify(f.omitted)}`).toBeDefined();
        expect(hit!.kind.toLowerCase()).toBe(kind);
        expect(hit!.reason.length).toBeGreaterThan(0);
      },
    );
}

function explain(o: TableOutcome | undefined): string {
  if (!o) return 'not judged';
  if (o.kind === 'wrong') return `values differ:\n  ${o.differences.join('\n  ')}`;
  if (o.kind === 'failed') return o.why;
  if (o.kind === 'refused') return `refused: ${o.refusal.code}: ${o.refusal.message}`;
  return `identical (${o.rows} rows)`;
}

/** Registers one restore direction of a fixture: the restore, then one check per table and per kind of structure. */
export function describeDirection(f: SourceFixture, spec: DirectionSpec, skip?: string): void {
  const d = new Direction(f, spec);
  const ids = Object.keys(f.spec.expectations);
  describe.skipIf(Boolean(skip))(d.label, () => {
    beforeAll(async () => {
      if (f.setupError) throw f.setupError;
      await d.run();
    }, SETUP_TIMEOUT);

    it('the restore completes, once the refused tables are excluded', () => {
      const r = d.result!;
      const last = r.runs.at(-1)!;
      expect(r.completed ? 'completed' : `stuck: ${r.stuck}`, describeRun(last)).toBe('completed');
      if (d.same) expect(r.refusals.map((x) => `${x.entity}: ${x.code}: ${x.message}`)).toEqual([]);
    });

    it.for(ids)('%s: values', (id) => {
      const o = d.outcomes.get(id);
      const exp = f.spec.expectations[id]!;
      const mandated = exp.refuse?.[spec.to];
      if (mandated) {
        expect(o?.kind, `${id} must be refused: ${explain(o)}`).toBe('refused');
      } else if (d.same || exp.exact.includes(spec.to)) {
        expect(o?.kind, `${id} must come back identical: ${explain(o)}`).toBe('identical');
      } else {
        expect(['identical', 'refused'], `${id} must come back identical or be refused: ${explain(o)}`).toContain(
          o?.kind,
        );
      }
    });

    if (!d.same) {
      it.for(ids)('%s: primary key columns as in the source', (id, ctx) => {
        const [source, restored] = d.keys.get(id) ?? [[], undefined];
        const kind = d.outcomes.get(id)?.kind;
        if (kind === 'refused' || kind === 'failed') return ctx.skip(`${id} was not restored (see its values test)`);
        expect(restored, `${id} is not in the target`).toBeDefined();
        expect(restored).toEqual(source);
      });
      return;
    }

    it.for(ids)('%s: structure identical to the source', (id) => {
      expect(d.structure.get(id)).toEqual([]);
    });

    it('objects of no single table (schemas, types, domains, functions, views, partitions): identical or named as omitted', () => {
      expect(d.structure.get('')).toEqual([]);
    });

    it('the restored structure carries no koan: comments', () => {
      expect(d.koanComments).toEqual([]);
    });

    it('structure counts equal the source, except objects the backup names as omitted', () => {
      const { source, restored } = d.counts!;
      const lenient = d.spec.existingSchema ? [] : d.omittedKinds();
      const differing = Object.keys(source)
        .filter((k) => source[k] !== restored[k] && !(lenient.includes(k) && restored[k]! < source[k]!))
        .map((k) => `${k}: source ${source[k]}, restored ${restored[k]}`);
      expect(differing).toEqual([]);
    });

    if (!spec.existingSchema)
      it('sequence and AUTO_INCREMENT positions equal the source', () => {
        expect(d.counters!.restored).toEqual(d.counters!.source);
      });

    const probes = ids.filter((id) => f.spec.expectations[id]!.probe);
    if (probes.length)
      it.for(probes)('%s: an insert with a default id succeeds', (id) => {
        expect(d.probes.get(id)).toBeUndefined();
      });
  });
}

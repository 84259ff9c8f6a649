/**
 * A source database of the suite and its backup through the CLI: made, loaded with native tools, backed up with
 * `backup NAME --source URL --json`, and described (tables, structure) for the restore directions that follow.
 */

import type { TableExpectation } from '../tables.js';
import { type Table, tablesOf } from './catalog.js';
import { type CliJson, type CliRun, type CliWorkspace, cliWorkspace, staleBuild } from './cli.js';
import type { SourceRowsCache } from './compare.js';
import { Report } from './report.js';
import { createScratch, dropAll, PROVIDER_LABEL, type Provider, type Scratch } from './scratch.js';

export interface FixtureSpec {
  /** Short name: backup name, report file name, scratch labels. */
  readonly key: string;
  readonly provider: Provider;
  readonly load: (db: Scratch) => Promise<void>;
  readonly expectations: Readonly<Record<string, TableExpectation>>;
  /** Objects that are not data, which a backup must name in `omitted`. */
  readonly notData: readonly { readonly name: string; readonly kind: string }[];
}

export interface Omitted {
  readonly source: string;
  readonly name: string;
  readonly kind: string;
  readonly reason: string;
}

const sanitized = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

/** The name of `names` that stands for source table `id` (same, unqualified, sanitized, any case). */
export function matchName(id: string, names: readonly string[]): string | undefined {
  const bare = id.includes('.') ? id.slice(id.indexOf('.') + 1) : id;
  const candidates = [id, sanitized(id), bare, sanitized(bare)];
  for (const c of candidates) if (names.includes(c)) return c;
  for (const c of candidates) {
    const hit = names.find((n) => n.toLowerCase() === c.toLowerCase());
    if (hit) return hit;
  }
  return undefined;
}

export class SourceFixture {
  readonly spec: FixtureSpec;
  readonly report: Report;
  ws!: CliWorkspace;
  source!: Scratch;
  tables: Table[] = [];
  backup?: CliRun;
  /** The backup's entities as its manifest lists them. */
  entities: NonNullable<CliJson['entities']> = [];
  omitted: readonly Omitted[] = [];
  /** The source's canonical rows, read once for every cross-provider target. */
  readonly sourceRows: SourceRowsCache = new Map();
  /** Milliseconds spent loading the source and backing it up, for the report. */
  readonly timings = { load: 0, backup: 0 };
  /** Why setup failed, when it did: every test then fails with it. */
  setupError?: Error;

  constructor(spec: FixtureSpec) {
    this.spec = spec;
    this.report = new Report(spec.key, `${PROVIDER_LABEL[spec.provider]} source (${spec.key})`);
  }

  get backupName(): string {
    return `fidelity-${this.spec.key}`;
  }

  get label(): string {
    return PROVIDER_LABEL[this.spec.provider];
  }

  /** The backup entity that holds source table `id`. */
  entityOf(id: string): string | undefined {
    return matchName(
      id,
      this.entities.map((e) => e.entityType),
    );
  }

  table(id: string): Table {
    const t = this.tables.find((x) => x.id === id);
    if (!t) throw new Error(`the source has no table ${id} (it has ${this.tables.map((x) => x.id).join(', ')})`);
    return t;
  }

  async setup(): Promise<void> {
    try {
      const stale = staleBuild();
      if (stale) throw new Error(`The fidelity suite runs the built CLI: ${stale}`);
      this.ws = cliWorkspace(this.spec.key);
      const started = performance.now();
      this.source = await createScratch(this.spec.provider, `${this.spec.key.slice(0, 8)}_src`);
      await this.spec.load(this.source);
      this.tables = await tablesOf(this.source);
      this.timings.load = performance.now() - started;
      this.backup = await this.ws.run(['backup', this.backupName, '--source', this.source.url]);
      this.timings.backup = performance.now() - started - this.timings.load;
      this.entities = this.backup.json?.entities ?? [];
      this.omitted = this.backup.json?.omitted ?? [];
      this.report.backup(this);
    } catch (e) {
      this.setupError = e as Error;
      throw e;
    }
  }

  async teardown(): Promise<void> {
    try {
      const path = this.report.write();
      console.log(`[fidelity] report for ${this.spec.key}: ${path}`);
    } finally {
      await dropAll();
      this.ws?.remove();
    }
  }
}

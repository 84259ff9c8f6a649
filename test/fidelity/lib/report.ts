/**
 * The fidelity report: per source, the backup (entities, omitted objects) and per restore direction how many tables
 * came back identical, were refused (and why) or came back wrong (and what differs), the structure counts of source
 * and target, sequence positions and default-id inserts. Written as Markdown (and JSON) to
 * `$KOAN_FIDELITY_REPORT_DIR` (default: `<tmpdir>/koan-fidelity-report`), one file per source.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Direction, TableOutcome } from './direction.js';
import type { SourceFixture } from './fixture.js';

export const REPORT_DIR = process.env.KOAN_FIDELITY_REPORT_DIR ?? join(tmpdir(), 'koan-fidelity-report');

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ⏎ ');
const clip = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n - 3)}...` : s);

function outcomeText(o: TableOutcome | undefined): [string, string] {
  if (!o) return ['?', 'not judged'];
  switch (o.kind) {
    case 'identical':
      return ['identical', `${o.rows} rows`];
    case 'refused':
      return ['refused', `${o.refusal.code}: ${clip(o.refusal.message)}`];
    case 'wrong':
      return ['WRONG', clip(o.differences.join('; '), 600)];
    case 'failed':
      return ['FAILED', clip(o.why, 600)];
  }
}

export class Report {
  private readonly lines: string[] = [];
  private readonly data: Record<string, unknown>[] = [];

  constructor(
    private readonly key: string,
    title: string,
  ) {
    this.lines.push(`# Fidelity report: ${title}`, '', `Generated ${new Date().toISOString()}.`, '');
  }

  backup(f: SourceFixture): void {
    const b = f.backup!;
    this.lines.push(
      `## Backup \`${f.backupName}\` (${f.tables.length} source tables)`,
      '',
      `\`koan-backup ${b.args.join(' ')}\` → exit ${b.exitCode}${b.json?.error ? `, ${b.json.error.code}: ${cell(b.json.error.message)}` : `, status ${b.json?.status}`} (source loaded in ${(f.timings.load / 1000).toFixed(1)} s, backed up in ${(f.timings.backup / 1000).toFixed(1)} s)`,
      '',
      '| source table | entity | items (source rows) | key type |',
      '|---|---|---|---|',
    );
    for (const t of f.tables) {
      const name = f.entityOf(t.id);
      const e = f.entities.find((x) => x.entityType === name);
      this.lines.push(`| ${cell(t.id)} | ${name ?? '**absent**'} | ${e ? e.itemCount : '-'} | ${e?.keyType ?? '-'} |`);
    }
    this.lines.push('', '**Omitted** (as the manifest lists them):', '');
    for (const o of f.omitted) this.lines.push(`- ${o.kind} \`${o.name}\`: ${cell(o.reason)}`);
    if (!f.omitted.length) this.lines.push('- (none)');
    this.lines.push('');
  }

  direction(d: Direction): void {
    const r = d.result!;
    const tally = { identical: 0, refused: 0, wrong: 0, failed: 0 };
    for (const o of d.outcomes.values()) tally[o.kind]++;
    this.lines.push(
      `## ${d.label}`,
      '',
      `Tables: **${tally.identical} identical, ${tally.refused} refused, ${tally.wrong} wrong, ${tally.failed} failed** (of ${d.outcomes.size}).`,
      '',
      `Runs: ${r.runs.map((x) => `exit ${x.exitCode}${x.json?.error ? ` ${x.json.error.code}` : ''}`).join(', ')}${r.completed ? '' : ` — never completed: ${r.stuck}`} (restore ${(d.timings.restore / 1000).toFixed(1)} s, checks ${(d.timings.judge / 1000).toFixed(1)} s)`,
      '',
    );
    if (r.refusals.length) {
      this.lines.push('Refusals, in order:', '');
      for (const x of r.refusals)
        this.lines.push(
          `- entity \`${x.entity ?? '?'}\`: exit ${x.exitCode}, ${x.code}: ${cell(clip(x.message, 500))}${x.leftBehind.length ? ` — **left behind: ${x.leftBehind.join(', ')}**` : ''}`,
        );
      this.lines.push('');
    }
    this.lines.push('| table | outcome | detail |', '|---|---|---|');
    for (const [id, o] of d.outcomes) {
      const [what, detail] = outcomeText(o);
      this.lines.push(`| ${cell(id)} | ${what} | ${cell(detail)} |`);
    }
    this.lines.push('', '| structure | source | restored |', '|---|---|---|');
    const counts = d.counts!;
    for (const k of new Set([...Object.keys(counts.source), ...Object.keys(counts.restored)]))
      this.lines.push(`| ${k} | ${counts.source[k] ?? '-'} | ${counts.restored[k] ?? '-'} |`);
    this.lines.push('');
    const structure = [...d.structure].filter(([, v]) => v.length);
    if (d.same) {
      this.lines.push(`Structure differences (${structure.reduce((n, [, v]) => n + v.length, 0)}):`, '');
      for (const [t, v] of structure)
        for (const l of v) this.lines.push(`- ${t || '(no table)'}: ${cell(clip(l, 800))}`);
      if (d.koanComments.length) this.lines.push(`- koan: comments: ${d.koanComments.length}`);
      if (d.nativeRoundTrip.length)
        this.lines.push(
          '',
          `Differ from the source exactly as \`pg_dump --schema-only | psql\` of the source makes them differ (PostgreSQL re-parses them to another tree): ${d.nativeRoundTrip.join(', ')}`,
        );
      this.lines.push('', 'Inserts with a default id:', '');
      for (const [t, e] of d.probes) this.lines.push(`- ${t}: ${e ? `**fails**: ${cell(clip(e))}` : 'ok'}`);
      this.lines.push('');
    }
    this.data.push({
      direction: d.label,
      runs: r.runs.map((x) => ({ args: x.args, exitCode: x.exitCode, error: x.json?.error })),
      refusals: r.refusals,
      tables: Object.fromEntries(d.outcomes),
      counts,
      counters: d.counters,
      structure: Object.fromEntries(structure),
      probes: Object.fromEntries(d.probes),
    });
  }

  /** Free text (Chinook's summary). */
  note(markdown: string): void {
    this.lines.push(markdown, '');
  }

  write(): string {
    mkdirSync(REPORT_DIR, { recursive: true });
    const path = join(REPORT_DIR, `${this.key}.md`);
    writeFileSync(path, `${this.lines.join('\n')}\n`);
    writeFileSync(join(REPORT_DIR, `${this.key}.json`), `${JSON.stringify(this.data, null, 2)}\n`);
    return path;
  }
}

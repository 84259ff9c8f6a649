/**
 * The dashboard: one self-contained page (inline CSS and script, no build step, nothing fetched from elsewhere).
 * Every piece of catalog data is put in the page with `textContent`; the script never assigns HTML.
 */

import { backupStatuses } from '@koan/data-backup/catalog';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export function dashboardHtml(options: { basePath: string; nonce: string; authRequired: boolean }): string {
  const nonce = escapeHtml(options.nonce);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="koan-base" content="${escapeHtml(options.basePath)}">
<meta name="koan-auth" content="${options.authRequired ? 'required' : 'none'}">
<title>Koan backups</title>
<style nonce="${nonce}">${CSS}</style>
</head>
<body>
<header>
  <h1>Koan backups</h1>
  <form id="token-form" hidden>
    <label>API token <input id="token" type="password" autocomplete="off" placeholder="Bearer token"></label>
    <button type="submit">Use</button>
  </form>
  <button id="refresh" type="button">Refresh</button>
</header>
<main>
  <section class="cards" aria-label="Catalog statistics">
    <div class="card"><span class="label">Backups</span><span class="value" id="stat-total">–</span></div>
    <div class="card"><span class="label">Healthy</span><span class="value ok" id="stat-healthy">–</span></div>
    <div class="card"><span class="label">Needing attention</span><span class="value warn" id="stat-attention">–</span></div>
    <div class="card"><span class="label">Total size</span><span class="value" id="stat-size">–</span></div>
    <div class="card"><span class="label">Monitor</span><span class="value" id="monitor">–</span></div>
  </section>
  <div id="unavailable" class="banner" role="alert" hidden></div>
  <ul id="monitor-problems" class="problems" aria-label="Monitor problems"></ul>
  <p id="message" role="status"></p>
  <section class="panel">
    <h2>Back up now</h2>
    <form id="backup-form" class="row">
      <label>Name <input name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,127}" placeholder="nightly"></label>
      <label>Description <input name="description" placeholder="optional"></label>
      <label>Tags <input name="tags" placeholder="daily, manual"></label>
      <button type="submit">Back up</button>
    </form>
  </section>
  <section class="panel">
    <h2>Jobs</h2>
    <table><thead><tr><th>Kind</th><th>Backup</th><th>Status</th><th>Progress</th><th>Started</th><th></th></tr></thead>
    <tbody id="jobs"></tbody></table>
  </section>
  <section class="panel">
    <h2>Backups</h2>
    <form id="filters" class="row">
      <label>Search <input name="searchTerm" type="search" placeholder="name, description, tag, entity"></label>
      <label>Tag <input name="tags" placeholder="tag"></label>
      <label>Status <select name="statuses">
        <option value="">any</option>${backupStatuses.map((s) => `<option>${escapeHtml(s)}</option>`).join('')}
      </select></label>
      <button type="submit">Filter</button>
    </form>
    <table><thead><tr><th>Name</th><th>Created</th><th>Status</th><th>Health</th><th>Size</th><th>Records</th><th>Entities</th><th>Tags</th><th></th></tr></thead>
    <tbody id="backups"></tbody></table>
    <p id="backup-count" class="muted"></p>
  </section>
</main>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>`;
}

const CSS = `
:root{--bg:#f6f7f9;--fg:#1d232b;--muted:#66707c;--card:#fff;--line:#dde1e6;--ok:#1c7c3c;--warn:#a65b00;--bad:#b42318;--acc:#2457c5}
@media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e7eaee;--muted:#98a2ae;--card:#1e2227;--line:#2e343b;--ok:#4cc47a;--warn:#f0a53c;--bad:#ff6b5e;--acc:#7aa2ff}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;gap:1rem;align-items:center;padding:.75rem 1.25rem;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:1.1rem;margin:0 auto 0 0}main{padding:1rem 1.25rem;max-width:1400px;margin:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:.75rem}
.card,.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.75rem 1rem}
.panel{margin-top:1rem}.panel h2{font-size:1rem;margin:0 0 .5rem}
.label{display:block;color:var(--muted);font-size:.8rem}.value{font-size:1.6rem;font-weight:600}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}.muted{color:var(--muted)}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:.5rem}label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted)}
input,select,button{font:inherit;padding:.3rem .5rem;border:1px solid var(--line);border-radius:5px;background:var(--bg);color:var(--fg)}
button{cursor:pointer;background:var(--acc);color:#fff;border-color:var(--acc)}button.secondary{background:transparent;color:var(--acc)}
button.danger{background:transparent;color:var(--bad);border-color:var(--bad)}button:disabled{opacity:.5;cursor:default}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.75rem;color:var(--muted);font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 .45rem;border-radius:999px;font-size:.75rem;border:1px solid currentColor}
.tag{display:inline-block;margin:0 .25rem .15rem 0;padding:0 .35rem;border-radius:4px;background:var(--bg);border:1px solid var(--line);font-size:.75rem}
.actions{white-space:nowrap}.actions button{margin-left:.25rem;padding:.15rem .45rem}
progress{width:140px;vertical-align:middle}#message{min-height:1.2em}#message.error{color:var(--bad)}
.desc{color:var(--muted);font-size:.8rem}
.banner{margin-top:1rem;padding:.6rem 1rem;border:1px solid var(--warn);border-radius:8px;background:var(--card);color:var(--warn)}
.banner div+div{margin-top:.3rem}
.problems{margin:.5rem 0 0;padding-left:1.25rem;color:var(--bad)}.problems:empty{display:none}
`;

// Plain browser JavaScript (ES2020). Untrusted text only ever reaches the page through text nodes (el()).
const SCRIPT = `
'use strict';
const base = document.querySelector('meta[name="koan-base"]').content;
const authRequired = document.querySelector('meta[name="koan-auth"]').content === 'required';
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('koan-backup-token') || '';
const streams = new Map();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'onclick') node.addEventListener('click', v);
    else if (k === 'className') node.className = v;
    else node.setAttribute(k, String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function say(text, isError) {
  const m = $('message');
  m.textContent = text || '';
  m.className = isError ? 'error' : '';
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) $('token-form').hidden = false;
  if (!res.ok) {
    const e = new Error((data.error && data.error.message) || res.status + ' ' + res.statusText);
    e.code = data.error && data.error.code;
    e.details = data.error && data.error.details;
    throw e;
  }
  return data;
}

const bytes = (n) => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
};
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const STATUS_CLASS = { Completed: 'ok', PartiallyCompleted: 'warn', InProgress: 'muted', Failed: 'bad', Cancelled: 'muted',
  Healthy: 'ok', Warning: 'warn', Critical: 'bad', Unknown: 'muted',
  queued: 'muted', running: 'warn', succeeded: 'ok', failed: 'bad', cancelled: 'muted' };
const badge = (text) => el('span', { className: 'badge ' + (STATUS_CLASS[text] || '') }, text);

// Storage profiles a listing or a lookup could not read (\`unavailableProfiles\`), by the answer that reported them:
// the banner stays while the latest such answer still reports them, since the page may miss backups (or a newer one).
const unavailable = new Map();
const missing = (profiles, what) => (profiles || []).map((u) => ({ ...u, what }));
function reportUnavailable(from, entries) {
  unavailable.set(from, entries);
  const byProfile = new Map();
  for (const u of [...unavailable.values()].flat()) {
    const seen = byProfile.get(u.profile);
    if (!seen) byProfile.set(u.profile, { ...u, what: [u.what] });
    else if (!seen.what.includes(u.what)) seen.what.push(u.what);
  }
  const lines = [...byProfile.values()].map((u) =>
    el('div', {}, 'Storage profile ', el('strong', {}, u.profile), ' could not be read (' + u.code + ': ' + u.message + '). ' + u.what.join(' ')));
  $('unavailable').replaceChildren(...lines);
  $('unavailable').hidden = lines.length === 0;
}

async function loadStats() {
  const s = await api('GET', '/stats');
  reportUnavailable('stats', missing(s.unavailableProfiles, 'Its backups are not counted in the statistics.'));
  $('stat-total').textContent = String(s.totalBackups);
  $('stat-healthy').textContent = String(s.healthyBackups);
  $('stat-attention').textContent = String(s.backupsRequiringAttention);
  $('stat-size').textContent = bytes(s.totalSizeBytes);
}

// GET /health answers 503 with the same document when unhealthy: both are results, not errors.
async function loadMonitor() {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  const res = await fetch(base + '/health', { method: 'GET', headers });
  if (res.status === 401) $('token-form').hidden = false;
  const r = await res.json().catch(() => ({}));
  if (res.status !== 200 && res.status !== 503) throw new Error('Monitor: ' + ((r.error && r.error.message) || res.status + ' ' + res.statusText));
  const m = $('monitor');
  const n = r.problems.length;
  m.textContent = r.healthy ? 'Healthy' : n + ' problem' + (n === 1 ? '' : 's');
  m.className = 'value ' + (r.healthy ? 'ok' : 'bad');
  m.title = r.targets.length ? r.targets.map((t) => (t.scope === 'tag' ? 'tag ' : '') + t.target).join(', ') : 'Nothing watched: add Koan.Backup.Monitor.Targets';
  $('monitor-problems').replaceChildren(...r.problems.map((p) => el('li', { title: p.hint }, p.check + ': ' + p.message)));
}

async function loadBackups() {
  const form = new FormData($('filters'));
  const q = new URLSearchParams();
  for (const [k, v] of form) if (String(v).trim()) q.set(k, String(v).trim());
  q.set('take', '200');
  const r = await api('GET', '/backups?' + q);
  reportUnavailable('backups', missing(r.unavailableProfiles, 'Its backups are missing from the list below.'));
  const rows = r.backups.map((b) => el('tr', {},
    el('td', {}, el('strong', {}, b.name), el('div', { className: 'desc' }, b.description || ''), el('div', { className: 'desc' }, b.id)),
    el('td', {}, when(b.createdAt)),
    el('td', {}, badge(b.status)),
    el('td', {}, badge(b.healthStatus), el('div', { className: 'desc' }, b.lastValidatedAt ? 'validated ' + when(b.lastValidatedAt) : 'never validated')),
    el('td', { className: 'num' }, bytes(b.sizeBytes)),
    el('td', { className: 'num' }, b.itemCount.toLocaleString()),
    el('td', {}, b.entityTypes.join(', '), b.omitted ? el('div', { className: 'desc', title: b.omitted.map((o) => o.name + ' (' + o.kind + '): ' + o.reason).join('\\n') }, b.omitted.length + ' left out (hover for why)') : null),
    el('td', {}, ...b.tags.map((t) => el('span', { className: 'tag' }, t))),
    el('td', { className: 'actions' },
      el('button', { className: 'secondary', onclick: () => validate(b) }, 'Validate'),
      b.restorable ? el('button', { className: 'secondary', onclick: () => restore(b) }, 'Restore…') : null,
      el('button', { className: 'danger', onclick: () => remove(b) }, 'Delete…'))));
  $('backups').replaceChildren(...rows);
  $('backup-count').textContent = r.totalCount + ' backup' + (r.totalCount === 1 ? '' : 's') + ' match';
}

function jobRow(job) {
  const p = job.progress;
  let progress = '';
  if (job.status === 'running' && p) {
    const bar = el('progress', p.overallTotalRecords ? { max: p.overallTotalRecords, value: p.overallRecords } : {});
    progress = el('span', {}, bar, ' ', p.overallRecords.toLocaleString() + ' records' + (p.entity ? ' · ' + p.entity : ''));
  } else if (job.error) progress = el('span', { className: 'bad' }, job.error.code + ': ' + job.error.message);
  else if (job.status === 'succeeded') progress = summary(job);
  return el('tr', {},
    el('td', {}, job.kind + (job.request && job.request.dryRun ? ' (dry run)' : '')),
    el('td', {}, job.backup),
    el('td', {}, badge(job.status)),
    el('td', {}, progress),
    el('td', {}, when(job.startedAt || job.createdAt)),
    el('td', { className: 'actions' }, job.status === 'queued' || job.status === 'running'
      ? el('button', { className: 'danger', onclick: () => cancel(job) }, 'Cancel') : null));
}

function summary(job) {
  const r = job.result || {};
  if (job.kind === 'backup') return r.status + ' · ' + (r.verification ? r.verification.totalItemCount : '?') + ' records';
  if (job.kind === 'validate') return r.isValid ? 'valid (' + r.checkedLines + ' lines)' : 'INVALID: ' + (r.issues || []).join('; ');
  if (job.kind === 'restore') {
    const created = (r.createdTables || []).reduce((n, c) => n + c.tables.length, 0);
    return r.status + ' · ' + (r.dryRun ? 'would restore ' : 'restored ') + r.totalRecords + ' records' + (created ? ' · ' + created + ' tables created' : '');
  }
  if (job.kind === 'copy') return 'copied ' + bytes(r.bytes || 0) + ' to ' + r.to;
  return 'done';
}

async function loadJobs() {
  const r = await api('GET', '/jobs');
  $('jobs').replaceChildren(...r.jobs.slice(0, 20).map(jobRow));
  // A restore by name allowed past unreachable profiles (allowUnreachableProfiles) took the newest of the others.
  reportUnavailable('jobs', r.jobs.slice(0, 20).flatMap((job) => missing(job.result && job.result.unavailableProfiles,
    'The ' + job.kind + ' job for ' + job.backup + ' used the newest backup of the other profiles; this one may hold a newer one.')));
  for (const job of r.jobs) if ((job.status === 'queued' || job.status === 'running') && !streams.has(job.id)) watch(job.id);
}

// Server-sent events over fetch (EventSource cannot send the Authorization header).
function watch(jobId, onDone) {
  const controller = new AbortController();
  streams.set(jobId, controller);
  const headers = { accept: 'text/event-stream' };
  if (token) headers.authorization = 'Bearer ' + token;
  let finished = null;
  (async () => {
    const res = await fetch(base + '/jobs/' + encodeURIComponent(jobId) + '/events', { headers, signal: controller.signal });
    if (!res.ok || !res.body) throw new Error('events: ' + res.status);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let lastPaint = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf('\\n\\n')) !== -1) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = 'message';
        const data = [];
        for (const line of chunk.split('\\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (event === 'done') finished = JSON.parse(data.join('\\n'));
        else if (event === 'progress' && Date.now() - lastPaint > 300) { lastPaint = Date.now(); loadJobs().catch(() => {}); }
      }
    }
  })().catch((e) => { if (e.name !== 'AbortError') say(e.message, true); })
    .finally(() => {
      streams.delete(jobId);
      refresh();
      if (finished && onDone) onDone(finished);
    });
}

// A message stays until the user acts again: only explicit actions clear it, never a refresh (so "Deleted ..., freed
// ..." and a finished job's outcome are not wiped by the reload that follows them).
async function run(action, keepMessage) {
  try { if (!keepMessage) say(''); await action(); } catch (e) { say(e.message, true); }
}

function startJob(path, body, onDone) {
  return run(async () => {
    const r = await api('POST', path, body);
    say('Started ' + r.job.kind + ' job for ' + r.job.backup);
    watch(r.jobId, onDone);
    await loadJobs();
  });
}

function validate(b) {
  startJob('/backups/' + encodeURIComponent(b.id) + '/validate', {}, (job) =>
    say(job.status === 'succeeded' ? 'Validation of ' + b.name + ': ' + summary(job) : 'Validation ' + job.status, job.status !== 'succeeded' || !job.result.isValid));
}

function restore(b) {
  const path = '/backups/' + encodeURIComponent(b.id) + '/restore';
  startJob(path, { dryRun: true }, (job) => {
    if (job.status !== 'succeeded') { say('Dry run ' + job.status + (job.error ? ': ' + job.error.message : ''), true); return; }
    const r = job.result;
    const lines = r.entities.map((e) => e.entityType + '@' + e.targetSet + ': ' + e.inserted + ' new, ' + e.updated + ' replaced' + (e.error ? ' — ' + e.error : ''));
    const ok = window.confirm('Dry run of ' + b.name + ' (' + b.id + '):\\n' + lines.join('\\n') + '\\n\\nRestore ' + r.totalRecords + ' records for real?');
    if (ok) startJob(path, {}, (real) => say('Restore ' + real.status + (real.error ? ': ' + real.error.message : ''), real.status !== 'succeeded'));
  });
}

function remove(b) {
  if (!window.confirm('Delete backup ' + b.name + ' created ' + when(b.createdAt) + ' (' + b.id + ')? This cannot be undone.')) return;
  run(async () => {
    const receipt = await api('DELETE', '/backups/' + encodeURIComponent(b.id) + '?confirm=' + encodeURIComponent(b.id));
    say('Deleted ' + receipt.name + ', freed ' + bytes(receipt.freedBytes));
    await refresh();
  });
}

function cancel(job) {
  if (!window.confirm('Cancel the ' + job.kind + ' job for ' + job.backup + '?')) return;
  run(async () => { await api('DELETE', '/jobs/' + encodeURIComponent(job.id)); await loadJobs(); });
}

async function refresh() {
  await run(() => Promise.all([loadStats(), loadBackups(), loadJobs(), loadMonitor()]), true);
}

$('backup-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const body = { name: String(f.get('name')).trim() };
  const description = String(f.get('description') || '').trim();
  const tags = String(f.get('tags') || '').split(',').map((t) => t.trim()).filter(Boolean);
  if (description) body.description = description;
  if (tags.length) body.tags = tags;
  startJob('/backups', body, (job) => say('Backup ' + job.backup + ' ' + job.status + (job.error ? ': ' + job.error.message : ''), job.status !== 'succeeded'));
});
$('filters').addEventListener('submit', (ev) => { ev.preventDefault(); run(loadBackups); });
$('refresh').addEventListener('click', () => { say(''); refresh(); });
$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('koan-backup-token', token);
  $('token-form').hidden = true;
  refresh();
});
if (authRequired && !token) $('token-form').hidden = false;
refresh();
`;

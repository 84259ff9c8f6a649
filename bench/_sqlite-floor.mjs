// The floor of any SQLite restore: the rows already in memory as arrays, inserted with one prepared
// statement in one transaction into a fresh WAL database with the same table. No archive, no JSON.
// usage: node bench/_sqlite-floor.mjs <source.db> <target.db>   (prints the insert+commit time only)
import Database from 'better-sqlite3';

const [, , from, to] = process.argv;
const src = new Database(from, { readonly: true });
const ddl = src.prepare("SELECT sql FROM sqlite_master WHERE name = 'Person'").pluck().get();
const cols = src.prepare('SELECT * FROM "Person" LIMIT 1').columns().length;
const rows = src.prepare('SELECT * FROM "Person"').raw(true).all();
src.close();
const db = new Database(to);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec(ddl);
const insert = db.prepare(`INSERT INTO "Person" VALUES (${Array(cols).fill('?').join(', ')})`);
const t0 = performance.now();
db.exec('BEGIN IMMEDIATE');
for (const r of rows) insert.run(r);
db.exec('COMMIT');
db.close();
console.log(JSON.stringify({ insertSeconds: (performance.now() - t0) / 1000, rows: rows.length }));

// The floor of any SQLite restore: the rows already in memory as arrays, inserted in one transaction into a fresh WAL
// database with the same table, 100 rows per prepared INSERT (as the adapter binds them). No archive, no JSON.
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
const one = `(${Array(cols).fill('?').join(', ')})`;
const PER = 100;
const insert = db.prepare(`INSERT INTO "Person" VALUES ${one}`);
const insertMany = db.prepare(`INSERT INTO "Person" VALUES ${Array(PER).fill(one).join(', ')}`);
const params = new Array(PER * cols);
const t0 = performance.now();
db.exec('BEGIN IMMEDIATE');
let i = 0;
for (; i + PER <= rows.length; i += PER) {
  for (let j = 0; j < PER; j++) for (let c = 0; c < cols; c++) params[j * cols + c] = rows[i + j][c];
  insertMany.run(params);
}
for (; i < rows.length; i++) insert.run(rows[i]);
db.exec('COMMIT');
db.close();
console.log(JSON.stringify({ insertSeconds: (performance.now() - t0) / 1000, rows: rows.length }));

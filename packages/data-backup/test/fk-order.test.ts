/**
 * Foreign-key-aware restore into databases that enforce the constraints: the target tables already exist with
 * FOREIGN KEYs (as a migrated application database would), and the archive is restored into them.
 *
 * - Parents are restored before children (Employee, Customer, Invoice, InvoiceLine), one transaction per source.
 * - Employee.reportsTo is a self-reference to a *later* row, and Department <-> Person is a genuine two-table
 *   cycle: restore defers the checks to the commit (SQLite `defer_foreign_keys`; PostgreSQL DEFERRABLE constraints;
 *   MySQL checks off, then an explicit check before COMMIT).
 * - A child whose parent is missing fails the restore naming the entity, the record key and the constraint, and
 *   the whole source is rolled back.
 */
import { join } from 'node:path';
import { defineEntity, t } from '@koan/data';
import { backupAllEntities, restoreAllEntities } from '@koan/data-backup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeContext } from './helpers.js';
import { createScratch, DIALECTS, type Dialect, probeDialect, type ScratchDatabase } from './scratch-databases.js';

const app = { source: 'app' } as const;
const Employee = defineEntity({
  name: 'Employee',
  key: 'id',
  ...app,
  fields: { id: t.integer(), name: t.string(), reportsTo: t.integer().nullable().references('Employee') },
});
const Customer = defineEntity({
  name: 'Customer',
  key: 'id',
  ...app,
  fields: { id: t.integer(), name: t.string(), supportRepId: t.integer().nullable().references('Employee') },
});
const Invoice = defineEntity({
  name: 'Invoice',
  key: 'id',
  ...app,
  fields: { id: t.integer(), customerId: t.integer().references('Customer'), total: t.decimal(10, 2) },
});
const InvoiceLine = defineEntity({
  name: 'InvoiceLine',
  key: 'id',
  ...app,
  fields: { id: t.integer(), invoiceId: t.integer().references('Invoice'), quantity: t.integer() },
});
const Department = defineEntity({
  name: 'Department',
  key: 'id',
  ...app,
  fields: { id: t.integer(), name: t.string(), managerId: t.integer().nullable().references('Person') },
});
const Person = defineEntity({
  name: 'Person',
  key: 'id',
  ...app,
  fields: { id: t.integer(), name: t.string(), departmentId: t.integer().references('Department') },
});

/** Target tables with enforced foreign keys, per dialect. The cycle's constraints are DEFERRABLE where that exists. */
const DDL: Readonly<Record<Dialect, string>> = {
  sqlite: `
    CREATE TABLE "Employee" (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "reportsTo" INTEGER REFERENCES "Employee" (id));
    CREATE TABLE "Customer" (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "supportRepId" INTEGER REFERENCES "Employee" (id));
    CREATE TABLE "Invoice" (id INTEGER PRIMARY KEY, "customerId" INTEGER NOT NULL REFERENCES "Customer" (id), total DECIMAL_TEXT NOT NULL);
    CREATE TABLE "InvoiceLine" (id INTEGER PRIMARY KEY, "invoiceId" INTEGER NOT NULL REFERENCES "Invoice" (id), quantity INTEGER NOT NULL);
    CREATE TABLE "Department" (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "managerId" INTEGER REFERENCES "Person" (id));
    CREATE TABLE "Person" (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "departmentId" INTEGER NOT NULL REFERENCES "Department" (id));`,
  postgres: `
    CREATE TABLE "Employee" (id bigint PRIMARY KEY, name text NOT NULL, "reportsTo" bigint CONSTRAINT employee_reports_to_fk REFERENCES "Employee" (id));
    CREATE TABLE "Customer" (id bigint PRIMARY KEY, name text NOT NULL, "supportRepId" bigint CONSTRAINT customer_support_rep_fk REFERENCES "Employee" (id));
    CREATE TABLE "Invoice" (id bigint PRIMARY KEY, "customerId" bigint NOT NULL CONSTRAINT invoice_customer_fk REFERENCES "Customer" (id), total numeric(10,2) NOT NULL);
    CREATE TABLE "InvoiceLine" (id bigint PRIMARY KEY, "invoiceId" bigint NOT NULL CONSTRAINT invoice_line_invoice_fk REFERENCES "Invoice" (id), quantity bigint NOT NULL);
    CREATE TABLE "Department" (id bigint PRIMARY KEY, name text NOT NULL, "managerId" bigint);
    CREATE TABLE "Person" (id bigint PRIMARY KEY, name text NOT NULL, "departmentId" bigint NOT NULL CONSTRAINT person_department_fk REFERENCES "Department" (id) DEFERRABLE);
    ALTER TABLE "Department" ADD CONSTRAINT department_manager_fk FOREIGN KEY ("managerId") REFERENCES "Person" (id) DEFERRABLE;`,
  mariadb: `
    CREATE TABLE Employee (id BIGINT PRIMARY KEY, name LONGTEXT NOT NULL, reportsTo BIGINT, CONSTRAINT employee_reports_to_fk FOREIGN KEY (reportsTo) REFERENCES Employee (id)) ENGINE=InnoDB;
    CREATE TABLE Customer (id BIGINT PRIMARY KEY, name LONGTEXT NOT NULL, supportRepId BIGINT, CONSTRAINT customer_support_rep_fk FOREIGN KEY (supportRepId) REFERENCES Employee (id)) ENGINE=InnoDB;
    CREATE TABLE Invoice (id BIGINT PRIMARY KEY, customerId BIGINT NOT NULL, total DECIMAL(10,2) NOT NULL, CONSTRAINT invoice_customer_fk FOREIGN KEY (customerId) REFERENCES Customer (id)) ENGINE=InnoDB;
    CREATE TABLE InvoiceLine (id BIGINT PRIMARY KEY, invoiceId BIGINT NOT NULL, quantity BIGINT NOT NULL, CONSTRAINT invoice_line_invoice_fk FOREIGN KEY (invoiceId) REFERENCES Invoice (id)) ENGINE=InnoDB;
    CREATE TABLE Department (id BIGINT PRIMARY KEY, name LONGTEXT NOT NULL, managerId BIGINT) ENGINE=InnoDB;
    CREATE TABLE Person (id BIGINT PRIMARY KEY, name LONGTEXT NOT NULL, departmentId BIGINT NOT NULL, CONSTRAINT person_department_fk FOREIGN KEY (departmentId) REFERENCES Department (id)) ENGINE=InnoDB;
    ALTER TABLE Department ADD CONSTRAINT department_manager_fk FOREIGN KEY (managerId) REFERENCES Person (id);`,
};

/** How each dialect names the InvoiceLine -> Invoice constraint in errors (SQLite has no constraint names). */
const INVOICE_LINE_CONSTRAINT: Readonly<Record<Dialect, string>> = {
  sqlite: 'FOREIGN KEY (invoiceId) REFERENCES Invoice (id)',
  postgres: 'invoice_line_invoice_fk',
  mariadb: 'invoice_line_invoice_fk',
};

const unavailable = Object.fromEntries(
  await Promise.all(DIALECTS.map(async (d) => [d, await probeDialect(d)] as const)),
) as Record<Dialect, string | undefined>;

let origin: Awaited<ReturnType<typeof makeContext>>;
const scratches: ScratchDatabase[] = [];

beforeAll(async () => {
  origin = await makeContext({ app: { provider: 'memory' } });
  const runtime = origin.context.runtime;
  // Rows that need the order (children after parents) and deferral: employee 2 reports to the later employee 3,
  // and department 1 and person 1 point at each other.
  await Employee.withRuntime(runtime).upsertMany([
    { id: 1, name: 'Andrew', reportsTo: null },
    { id: 2, name: 'Nancy', reportsTo: 3 },
    { id: 3, name: 'Jane', reportsTo: 1 },
  ]);
  await Customer.withRuntime(runtime).upsertMany([{ id: 10, name: 'Luís', supportRepId: 2 }]);
  await Invoice.withRuntime(runtime).upsertMany([{ id: 100, customerId: 10, total: '3.96' }]);
  await InvoiceLine.withRuntime(runtime).upsertMany([{ id: 1000, invoiceId: 100, quantity: 4 }]);
  await Department.withRuntime(runtime).upsertMany([{ id: 1, name: 'Sales', managerId: 1 }]);
  await Person.withRuntime(runtime).upsertMany([{ id: 1, name: 'Ana', departmentId: 1 }]);
  await backupAllEntities(origin.context, 'fk-good');
  await InvoiceLine.withRuntime(runtime).upsertMany([{ id: 1001, invoiceId: 999, quantity: 1 }]);
  await backupAllEntities(origin.context, 'fk-orphan');
});

afterAll(async () => {
  await origin?.cleanup();
  for (const db of scratches) await db.drop().catch(() => undefined);
});

/** An application environment whose `app` source is a fresh `dialect` database with the constrained tables. */
async function constrainedTarget(dialect: Dialect) {
  const db = await createScratch(dialect, `fk_${dialect.slice(0, 2)}`);
  scratches.push(db);
  await db.exec(DDL[dialect]);
  const env = await makeContext(
    { app: db.source },
    { profiles: { local: { provider: 'local', settings: { root: join(origin.dir, 'backups') } } } },
  );
  return env;
}

describe.each(DIALECTS)('foreign-key-aware restore into %s with enforced constraints', (dialect) => {
  it('restores parents before children, a self-reference to a later row and a two-table cycle', async (ctx) => {
    if (unavailable[dialect]) return ctx.skip(unavailable[dialect]);
    const env = await constrainedTarget(dialect);
    try {
      const report = await restoreAllEntities(env.context, 'fk-good');
      const order = report.entities.map((e) => e.entityType);
      expect(report.entities.every((e) => e.status === 'Restored')).toBe(true);
      expect(order.indexOf('Employee')).toBeLessThan(order.indexOf('Customer'));
      expect(order.indexOf('Customer')).toBeLessThan(order.indexOf('Invoice'));
      expect(order.indexOf('Invoice')).toBeLessThan(order.indexOf('InvoiceLine'));
      const runtime = env.context.runtime;
      expect(await Employee.withRuntime(runtime).all()).toEqual([
        { id: 1, name: 'Andrew', reportsTo: null },
        { id: 2, name: 'Nancy', reportsTo: 3 },
        { id: 3, name: 'Jane', reportsTo: 1 },
      ]);
      expect(await Department.withRuntime(runtime).all()).toEqual([{ id: 1, name: 'Sales', managerId: 1 }]);
      expect(await Person.withRuntime(runtime).all()).toEqual([{ id: 1, name: 'Ana', departmentId: 1 }]);
      expect(await InvoiceLine.withRuntime(runtime).count()).toBe(1);
    } finally {
      await env.cleanup();
    }
  });

  it('a child whose parent is missing fails naming the entity, the record key and the constraint; nothing is kept', async (ctx) => {
    if (unavailable[dialect]) return ctx.skip(unavailable[dialect]);
    const env = await constrainedTarget(dialect);
    try {
      const failure = await restoreAllEntities(env.context, 'fk-orphan').then(
        () => undefined,
        (e: Error) => e,
      );
      expect(failure?.message).toContain('InvoiceLine record "1001"');
      expect(failure?.message).toContain(`constraint ${INVOICE_LINE_CONSTRAINT[dialect]}`);
      expect(failure?.message).toMatch(/999/);
      const cause = failure?.cause as { code?: string; details?: Record<string, unknown> } | undefined;
      expect(cause?.code).toBe('FOREIGN_KEY_VIOLATION');
      expect(cause?.details).toMatchObject({
        entity: 'InvoiceLine',
        key: '1001',
        constraint: INVOICE_LINE_CONSTRAINT[dialect],
      });
      // One transaction per source: the parents written before the failure were rolled back too.
      expect(await Employee.withRuntime(env.context.runtime).count()).toBe(0);
      expect(await InvoiceLine.withRuntime(env.context.runtime).count()).toBe(0);
    } finally {
      await env.cleanup();
    }
  });
});

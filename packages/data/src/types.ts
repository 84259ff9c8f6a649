/** A record in its runtime form (see the value table in `fields.ts`). */
export type DataRecord = Record<string, unknown>;
/** A key value: a string (string, uuid, decimal, date and datetime keys), a number (integer keys) or a bigint. */
export type KeyValue = string | number | bigint;

/**
 * The demo application: three entities across two providers with the field types that are hard to
 * round-trip (uuid, exact decimals, datetimes with microseconds, JSON, booleans, nullable/optional,
 * dates, doubles), and a deterministic generator, so every run seeds the same records.
 */
import { defineEntity, type InputOf, t } from '@koan/data';

export const DEMO_SQL_SOURCE = 'demo';
export const DEMO_JSON_SOURCE = 'demoJson';

export const Customer = defineEntity({
  name: 'Customer',
  key: 'id',
  source: DEMO_SQL_SOURCE,
  fields: {
    id: t.uuid(),
    name: t.string(),
    email: t.string(),
    tier: t.string(),
    creditLimit: t.decimal(12, 2),
    createdAt: t.datetime(),
    active: t.boolean(),
    preferences: t.json(),
    notes: t.string().optional().nullable(),
  },
});

export const Order = defineEntity({
  name: 'Order',
  key: 'id',
  source: DEMO_SQL_SOURCE,
  fields: {
    id: t.integer(),
    customerId: t.uuid().references('Customer'),
    total: t.decimal(12, 2),
    placedAt: t.datetime(),
    shippedAt: t.datetime().nullable(),
    status: t.string(),
    lines: t.json(),
    giftWrap: t.boolean(),
    loyaltyPoints: t.bigint(),
  },
});

export const Product = defineEntity({
  name: 'Product',
  key: 'sku',
  source: DEMO_JSON_SOURCE,
  fields: {
    sku: t.string(),
    title: t.string(),
    price: t.decimal(10, 2),
    stock: t.integer(),
    weightKg: t.number(),
    releasedOn: t.date(),
    attributes: t.json(),
    discontinued: t.boolean(),
    barcode: t.string().optional(),
  },
});

export const DEMO_ENTITIES = [Customer, Order, Product] as const;

/** mulberry32: small, fast, and the same sequence on every platform. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DemoData {
  readonly customers: InputOf<typeof Customer>[];
  readonly orders: InputOf<typeof Order>[];
  readonly products: InputOf<typeof Product>[];
}

const FIRST = [
  'Ada',
  'Grace',
  'Alan',
  'Edsger',
  'Barbara',
  'Donald',
  'Margaret',
  'Ken',
  'Frances',
  'Niklaus',
  'Radia',
  'Linus',
];
const LAST = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Hamilton',
  'Thompson',
  'Allen',
  'Wirth',
  'Perlman',
  'Torvalds',
];
const TIERS = ['free', 'pro', 'enterprise'];
const STATUSES = ['placed', 'paid', 'shipped', 'delivered', 'returned'];
const COLOURS = ['red', 'green', 'blue', 'black', 'white', 'über-grün', '深蓝'];

export function generateDemoData(counts = { customers: 500, orders: 2500, products: 300 }, seed = 20241217): DemoData {
  const r = random(seed);
  const int = (min: number, max: number) => min + Math.floor(r() * (max - min + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const money = (min: number, max: number) => {
    const cents = int(min * 100, max * 100);
    return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
  };
  const uuid = () => {
    const b = Array.from({ length: 16 }, () => int(0, 255));
    b[6] = (b[6]! & 0x0f) | 0x40;
    b[8] = (b[8]! & 0x3f) | 0x80;
    const h = b.map((x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };
  const start = Date.UTC(2023, 0, 1);
  const datetime = (fromMs = start, spanDays = 700) => {
    const ms = fromMs + Math.floor(r() * spanDays * 86_400_000);
    return `${new Date(ms).toISOString().slice(0, 23)}${String(int(0, 999)).padStart(3, '0')}Z`; // microseconds
  };

  const customers: InputOf<typeof Customer>[] = [];
  for (let i = 0; i < counts.customers; i++) {
    const first = pick(FIRST);
    const last = pick(LAST);
    customers.push({
      id: uuid(),
      name: `${first} ${last}`,
      email: `${first}.${last}.${i}@example.com`.toLowerCase(),
      tier: pick(TIERS),
      creditLimit: money(0, 50_000),
      createdAt: datetime(),
      active: r() > 0.2,
      preferences: {
        newsletter: r() > 0.5,
        language: pick(['en', 'fr', 'de', 'ja']),
        favouriteColours: [pick(COLOURS), pick(COLOURS)],
      },
      ...(i % 3 === 0
        ? { notes: null }
        : i % 3 === 1
          ? { notes: `Customer since ${2020 + (i % 4)}; "quoted", newline\nand tab\t` }
          : {}),
    });
  }
  const products: InputOf<typeof Product>[] = [];
  for (let i = 0; i < counts.products; i++) {
    products.push({
      sku: `SKU-${String(i + 1).padStart(5, '0')}`,
      title: `${pick(['Compact', 'Deluxe', 'Eco', 'Heavy-duty', 'Smart'])} ${pick(['kettle', 'lamp', 'chair', 'backpack', 'keyboard'])} ${i + 1}`,
      price: money(1, 2_000),
      stock: int(0, 5_000),
      weightKg: Math.round(r() * 250_000) / 1000,
      releasedOn: new Date(start + int(0, 700) * 86_400_000).toISOString().slice(0, 10),
      attributes: {
        colour: pick(COLOURS),
        dimensionsCm: [int(5, 200), int(5, 200), int(5, 200)],
        certified: r() > 0.5,
      },
      discontinued: r() > 0.9,
      ...(i % 2 === 0 ? { barcode: String(4_000_000_000_000 + i * 7919) } : {}),
    });
  }
  const orders: InputOf<typeof Order>[] = [];
  for (let i = 0; i < counts.orders; i++) {
    const customer = pick(customers);
    const lines = Array.from({ length: int(1, 4) }, () => {
      const product = pick(products);
      return { sku: product.sku, quantity: int(1, 5), unitPrice: product.price };
    });
    const placedAt = datetime();
    const shipped = r() > 0.3;
    orders.push({
      id: i + 1,
      customerId: customer.id,
      total: money(5, 10_000),
      placedAt,
      shippedAt: shipped ? datetime(Date.parse(placedAt.slice(0, 23) + 'Z'), 10) : null,
      status: pick(STATUSES),
      lines,
      giftWrap: r() > 0.85,
      loyaltyPoints: BigInt(int(0, 8_000_000)) * 1_000_000_007_000n, // up to 8e18, beyond 2^53: must not pass through a double
    });
  }
  return { customers, orders, products };
}

/** The one date rule of `BackupQuery`, the HTTP API and the CLI. */

const ISO_DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;
const DAY_MS = 86_400_000;

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/**
 * The instant an ISO-8601 date (`2024-12-17`, midnight UTC) or date-time (`2024-12-17T08:00:00Z`; without an offset,
 * local time) names, or why it names none: an impossible date is refused with the reason, never rolled over
 * (`Date.parse` reads 2024-02-30 as March 1st). With `endOfDay`, a date-only text is the last millisecond of that day
 * (an inclusive upper bound). The one rule of `BackupQuery`, the HTTP API and the CLI.
 */
export function parseIsoInstant(
  text: string,
  options: { endOfDay?: boolean } = {},
): { readonly time: number } | { readonly problem: string } {
  const m = ISO_DATE.exec(text.trim());
  if (!m) return { problem: 'not an ISO-8601 date' };
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((x) => (x === undefined ? 0 : Number(x))) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12) return { problem: `there is no month ${m[2]}` };
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > days) return { problem: `${MONTHS[month - 1]} ${m[1]} has ${days} days` };
  if (hour > 23 || minute > 59 || second > 59)
    return { problem: `${m[4]}:${m[5]}${m[6] === undefined ? '' : `:${m[6]}`} is not a time of day` };
  if (m[4] === undefined) {
    const midnight = Date.UTC(year, month - 1, day);
    return { time: options.endOfDay ? midnight + DAY_MS - 1 : midnight };
  }
  const time = Date.parse(text.trim());
  return Number.isNaN(time) ? { problem: 'not an ISO-8601 date' } : { time };
}

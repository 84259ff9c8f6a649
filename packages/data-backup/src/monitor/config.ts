/**
 * `Koan.Backup.Monitor` in koan.config.json: what the backup monitor watches and the rules each watched target must
 * meet. A target is a backup name or a tag; its rules are the `Defaults` with its own settings on top; each target is
 * checked in every storage profile it names (`StorageProfiles`, default: every configured profile).
 *
 * @example
 * "Monitor": {
 *   "Defaults": { "MaxAgeHours": 26, "MinCount": 7, "MustBeValidatedWithinDays": 7 },
 *   "Targets": [
 *     { "Name": "nightly" },
 *     { "Name": "weekly", "MaxAgeHours": 170, "MinCount": 4 },
 *     { "Tag": "critical", "MaxAgeHours": 2, "StorageProfiles": ["offsite"] }
 *   ]
 * }
 *
 * Targets are a list, not an object keyed by name: the loader matches object keys ignoring case, and backup names are
 * case-sensitive storage prefixes.
 */
import { z } from 'zod';
import { assertBackupName } from '../manifest.js';

/** The rules a target can set (each also in `Defaults`); a rule left unset is not checked. */
export const MONITOR_RULES = ['MaxAgeHours', 'MinCount', 'MaxStorageMB', 'MustBeValidatedWithinDays'] as const;
export type MonitorRuleName = (typeof MONITOR_RULES)[number];

/** Bytes in one MB of `MaxStorageMB` (a mebibyte, as the dashboard and the CLI show sizes). */
export const BYTES_PER_MB = 1024 * 1024;

const rulesShape = {
  maxAgeHours: z
    .number()
    .positive()
    .optional()
    .describe(
      'The newest healthy completed backup (status Completed, not found invalid) is at most this many hours old',
    ),
  minCount: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('At least this many restorable backups (Completed or PartiallyCompleted, not found invalid)'),
  maxStorageMB: z
    .number()
    .positive()
    .optional()
    .describe("The target's archives take at most this many MB in the profile (1 MB = 1,048,576 bytes)"),
  mustBeValidatedWithinDays: z
    .number()
    .positive()
    .optional()
    .describe('A backup of the target passed validation within the last N days (koan-backup validate)'),
  storageProfiles: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .describe('Storage profiles where the target is checked (default: every configured profile)'),
};

export const monitorRulesSchema = z
  .object(rulesShape)
  .strict()
  .describe('Rules every target gets unless it sets its own: MaxAgeHours, MinCount, MaxStorageMB, ...');

const backupName = z.string().superRefine((value, ctx) => {
  try {
    assertBackupName(value);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

export const monitorTargetSchema = z
  .object({
    name: backupName.optional().describe('A backup name (exact, case-sensitive): its backups are checked'),
    tag: z.string().min(1).optional().describe('A tag (any case): the backups carrying it are checked together'),
    ...rulesShape,
  })
  .strict()
  .superRefine((target, ctx) => {
    if ((target.name === undefined) === (target.tag === undefined))
      ctx.addIssue({
        code: 'custom',
        path: target.name === undefined ? ['name'] : ['tag'],
        message:
          target.name === undefined
            ? 'is required: give each target a Name (a backup name) or a Tag'
            : 'cannot be given with Name: a target is one backup name or one tag; list them as two targets',
      });
  });

/** `Koan.Backup.Monitor`. */
export const monitorConfigSchema = z
  .object({
    defaults: monitorRulesSchema.default({}),
    targets: z
      .array(monitorTargetSchema)
      .default([])
      .describe('What is watched: each entry is { "Name": ... } or { "Tag": ... }, with rules that replace Defaults'),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Map<string, number>();
    for (const [i, t] of config.targets.entries()) {
      const key = t.name !== undefined ? `name:${t.name}` : `tag:${t.tag?.toLowerCase()}`;
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: ['targets', i, t.name !== undefined ? 'name' : 'tag'],
          message: `repeats Targets.${first}: give each name or tag once, with all its rules`,
        });
    }
  })
  .describe(
    'Backup health rules checked by koan-backup monitor, GET /health and monitorBackups: per backup name or tag and storage profile',
  );

export type MonitorConfig = z.output<typeof monitorConfigSchema>;
export type MonitorConfigInput = z.input<typeof monitorConfigSchema>;
export type MonitorRules = z.output<typeof monitorRulesSchema>;

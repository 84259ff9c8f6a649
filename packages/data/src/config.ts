/**
 * `Koan.Data`, the section this package reads. The loader of `koan.config.json` and its validation rules live in
 * @koan/core (every section shares them) and are re-exported here (`@koan/data/config`) for the users of `@koan/data`.
 */
import { z } from 'zod';

export {
  type ConfigProblem,
  conformToSchema,
  describeGiven,
  formatProblem,
  KOAN_SECTIONS,
  type LoadConfigOptions,
  type LoadedConfig,
  loadKoanConfig,
  parseConfigSection,
  validateConfig,
  valueAs,
} from '@koan/core';

/** `Koan.Data`: the data sources. */
export const dataConfigSchema = z
  .object({
    sources: z
      .record(
        z.string(),
        z
          .object({
            provider: z
              .string()
              .min(1)
              .describe('Provider kind: sqlite, postgres, mysql, mariadb, redis, lancedb, json, memory'),
            settings: z
              .record(z.string(), z.unknown())
              .optional()
              .describe('Provider settings (see the provider package README)'),
          })
          .strict(),
      )
      .optional()
      .describe('Data sources by name; entities without a source use "default"'),
  })
  .strict();

export type DataConfig = z.infer<typeof dataConfigSchema>;

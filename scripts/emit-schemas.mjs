// Writes the published JSON Schemas from the zod schemas (run after `npm run build`).
// test/schema-files.test.ts fails when the committed files drift from the code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { configJsonSchema, manifestJsonSchemas } from '../packages/data-backup/dist/index.js';
import { notificationEventJsonSchema } from '../packages/data-backup/dist/notify/events.js';
import * as azure from '../packages/storage-azure/dist/index.js';
import * as s3 from '../packages/storage-s3/dist/index.js';

// Each storage provider package exports its `provider` and the `settingsSchema` of its profiles' Settings.
const storageProviders = Object.fromEntries([s3, azure].map((p) => [p.provider.name, p.settingsSchema]));
const config = configJsonSchema({ storageProviders });

const dir = new URL('../schema/', import.meta.url);
mkdirSync(dir, { recursive: true });
const { manifest, sidecar } = manifestJsonSchemas();
writeFileSync(new URL('manifest.v2.schema.json', dir), `${JSON.stringify(manifest, null, 2)}\n`);
writeFileSync(new URL('sidecar.v2.schema.json', dir), `${JSON.stringify(sidecar, null, 2)}\n`);
writeFileSync(new URL('koan.config.schema.json', dir), `${JSON.stringify(config, null, 2)}\n`);
writeFileSync(
  new URL('notification-event.v1.schema.json', dir),
  `${JSON.stringify(notificationEventJsonSchema(), null, 2)}\n`,
);
// The CLI package ships the config schema, so editors validate koan.config.json from the project's node_modules.
writeFileSync(
  new URL('../packages/cli/koan.config.schema.json', import.meta.url),
  `${JSON.stringify(config, null, 2)}\n`,
);
console.log(
  'wrote schema/manifest.v2.schema.json, schema/sidecar.v2.schema.json, schema/koan.config.schema.json, schema/notification-event.v1.schema.json, packages/cli/koan.config.schema.json',
);

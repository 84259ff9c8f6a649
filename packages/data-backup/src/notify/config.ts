/**
 * `Koan.Backup.Notifications` in koan.config.json: webhooks by name and the heartbeat. URLs and secrets may be written
 * as `${env:NAME}` (resolved when the notifiers are made) or set with `Koan__Backup__Notifications__...` environment
 * variables, so no secret needs to be in the file. A Slack webhook URL is a secret too.
 */
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${env:NAME} is the setting syntax this module reads and documents
import { ConfigError } from '@koan/data';
import { z } from 'zod';
import { EVENT_PATTERNS } from './events.js';
import type { HeartbeatOptions } from './heartbeat.js';
import { SECRET_ADVICE, secretProblem } from './signature.js';
import type { WebhookOptions } from './webhook.js';

const ENV_REFERENCE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;
const URL_OR_REFERENCE = /^(?:https?:\/\/\S+|.*\$\{env:[A-Za-z_][A-Za-z0-9_]*\}.*)$/;

const urlSetting = z
  .string()
  .regex(URL_OR_REFERENCE, 'expected an http(s) URL, or ${env:NAME} naming the environment variable that holds it');

const SECRET_REQUIRED = `is required when Format is "json", since receivers check the signature with it: ${SECRET_ADVICE}, given as \${env:NAME} rather than written in the file`;

export const webhookConfigSchema = z
  .object({
    url: urlSetting.describe('Where events are POSTed: https://..., or ${env:NAME} (a Slack webhook URL is a secret)'),
    secret: z
      .string()
      .min(1)
      .optional()
      .describe(
        'HMAC-SHA256 signing secret (Standard Webhooks headers): ${env:NAME}, or set Koan__Backup__Notifications__Webhooks__<name>__Secret. Required for Format json',
      ),
    events: z
      .array(z.enum(EVENT_PATTERNS as [string, ...string[]]))
      .min(1)
      .default(['*'])
      .describe('Which events: * (all), a family such as restore.*, or event types such as backup.failed'),
    format: z
      .enum(['json', 'slack'])
      .default('json')
      .describe('json: the documented event (schema/notification-event.v1.schema.json); slack: { text, blocks }'),
    maxAttempts: z.number().int().min(1).max(20).default(5).describe('Attempts per event, the first included'),
    timeoutSeconds: z.number().positive().max(300).default(10).describe('Time limit of each request'),
    maxQueueEvents: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Events waiting at most; beyond it the oldest is dropped (and counted)'),
    maxQueueBytes: z
      .number()
      .int()
      .min(1024)
      .default(8 * 1024 * 1024)
      .describe('Bytes of waiting bodies at most; beyond it the oldest are dropped'),
  })
  .strict()
  .superRefine((webhook, ctx) => {
    if (webhook.format === 'json' && webhook.secret === undefined)
      ctx.addIssue({ code: 'custom', path: ['secret'], message: SECRET_REQUIRED });
  });

export const heartbeatConfigSchema = z
  .object({
    url: urlSetting.describe('Pinged after each successful scheduled run: https://hc-ping.com/<uuid>, or ${env:NAME}'),
    method: z.enum(['GET', 'POST']).default('GET').describe('POST sends a JSON summary of the run as the body'),
    maxAttempts: z.number().int().min(1).max(10).default(3).describe('Attempts per ping, the first included'),
    timeoutSeconds: z.number().positive().max(300).default(10).describe('Time limit of each request'),
  })
  .strict();

/** `Koan.Backup.Notifications`. */
export const notificationsConfigSchema = z
  .object({
    app: z
      .string()
      .min(1)
      .optional()
      .describe('Names the application or environment in every event (source.app) and Slack message'),
    webhooks: z
      .record(z.string(), webhookConfigSchema)
      .default({})
      .describe('Webhooks by name; each gets the events its Events filter lets through'),
    heartbeat: heartbeatConfigSchema.optional(),
  })
  .strict()
  .describe('Webhook notifications of backups, restores, health, drills and retention, and the heartbeat URL');

export type NotificationsConfig = z.output<typeof notificationsConfigSchema>;
export type NotificationsConfigInput = z.input<typeof notificationsConfigSchema>;

/** What a config section makes: the options of each notifier, URLs and secrets resolved and checked. */
export interface ResolvedNotifications {
  readonly app: string | undefined;
  readonly webhooks: readonly (WebhookOptions & { readonly name: string })[];
  readonly heartbeat: HeartbeatOptions | undefined;
}

function resolveReferences(value: string, path: string, env: Readonly<Record<string, string | undefined>>): string {
  return value.replace(ENV_REFERENCE, (_, name: string) => {
    const v = env[name];
    if (v === undefined || v === '')
      throw new ConfigError(
        'CONFIG_INVALID',
        `${path} references environment variable ${name}, which is not set. Set ${name}, or change ${path}.`,
        { details: { path, variable: name } },
      );
    return v;
  });
}

function resolvedUrl(value: string, path: string, env: Readonly<Record<string, string | undefined>>): string {
  const url = resolveReferences(value, path, env);
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {}
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:'))
    throw new ConfigError(
      'CONFIG_INVALID',
      `${path} is not an http(s) URL once resolved (text of ${url.length} characters, not shown). Set it to a URL such as https://hooks.example.com/koan.`,
      { details: { path } },
    );
  return parsed.href;
}

/**
 * The notifier options of a parsed `Koan.Backup.Notifications` section: `${env:NAME}` resolved from `env`, URLs and
 * secrets checked. Errors are `ConfigError`s naming the key path and the fix.
 */
export function resolveNotificationsConfig(
  config: NotificationsConfig,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ResolvedNotifications {
  const base = 'Koan.Backup.Notifications';
  const webhooks = Object.entries(config.webhooks).map(([name, w]) => {
    // Spelled as the config loader's own errors spell it (its keys are matched ignoring case).
    const label = name.charAt(0).toUpperCase() + name.slice(1);
    const path = `${base}.Webhooks.${label}`;
    const secret = w.secret === undefined ? undefined : resolveReferences(w.secret, `${path}.Secret`, env);
    const problem = secret === undefined ? undefined : secretProblem(secret);
    if (problem)
      throw new ConfigError(
        'CONFIG_INVALID',
        `${path}.Secret cannot sign: ${problem}. Use ${SECRET_ADVICE}, given as \${env:NAME} or with Koan__Backup__Notifications__Webhooks__${label}__Secret.`,
        { details: { path: `${path}.Secret` } },
      );
    return {
      name,
      url: resolvedUrl(w.url, `${path}.Url`, env),
      ...(secret === undefined ? {} : { secret }),
      events: w.events,
      format: w.format,
      maxAttempts: w.maxAttempts,
      timeoutMs: Math.round(w.timeoutSeconds * 1000),
      maxQueueEvents: w.maxQueueEvents,
      maxQueueBytes: w.maxQueueBytes,
    };
  });
  const h = config.heartbeat;
  const heartbeat = h && {
    url: resolvedUrl(h.url, `${base}.Heartbeat.Url`, env),
    method: h.method,
    maxAttempts: h.maxAttempts,
    timeoutMs: Math.round(h.timeoutSeconds * 1000),
  };
  return { app: config.app, webhooks, heartbeat };
}

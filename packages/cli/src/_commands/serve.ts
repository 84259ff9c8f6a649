import { bearerToken, serve } from '@koan/backup-http';
import { entityArgs, globalArgs } from '../_args.js';
import { defineCliCommand } from '../_command.js';
import { importEntityModules, withContext } from '../_context.js';
import { usageError } from '../_errors.js';

export default defineCliCommand({
  meta: {
    name: 'serve',
    description: 'Serve the HTTP API and the web dashboard (binds 127.0.0.1; stops on Ctrl-C, cancelling running jobs)',
  },
  args: {
    ...globalArgs,
    ...entityArgs,
    port: { type: 'string', description: 'Port (default 8787; 0 picks a free one)' },
    host: { type: 'string', description: 'Address to bind (default 127.0.0.1; anything else needs a token)' },
    'base-path': { type: 'string', description: 'Mount the API under this path, e.g. /admin/backups' },
    'token-env': {
      type: 'string',
      description:
        'Name of the env var holding the bearer token clients must send (read from the environment, never from argv)',
    },
    'max-jobs': { type: 'string', description: 'Backup/restore jobs that run at once (default 1; the rest queue)' },
  },
  examples: [
    '# The dashboard on http://127.0.0.1:8787/',
    'koan-backup serve --import ./dist/entities.js',
    '# Behind a token, on all interfaces',
    'KOAN_BACKUP_TOKEN=s3cret koan-backup serve --host 0.0.0.0 --token-env KOAN_BACKUP_TOKEN',
  ],
  async run(args, session, rawArgs) {
    const port = args.port === undefined ? 8787 : Number(args.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw usageError(`--port ${args.port}: give a port number from 0 to 65535.`);
    const maxJobs = args['max-jobs'] === undefined ? 1 : Number(args['max-jobs']);
    if (!Number.isInteger(maxJobs) || maxJobs < 1)
      throw usageError(`--max-jobs ${args['max-jobs']}: give a whole number of 1 or more.`);
    let auth: ReturnType<typeof bearerToken> | undefined;
    if (args['token-env']) {
      const token = session.env[args['token-env']];
      if (!token) throw usageError(`--token-env ${args['token-env']}: that environment variable is empty or not set.`);
      auth = bearerToken(token);
    }
    await importEntityModules(session, args, rawArgs);
    return withContext(session, args, async (context) => {
      const server = await serve(context, {
        port,
        hostname: args.host ?? '127.0.0.1',
        maxConcurrentJobs: maxJobs,
        ...(args['base-path'] ? { basePath: args['base-path'] } : {}),
        ...(auth ? { auth } : {}),
      });
      if (session.json) session.printJson({ url: server.url, port: server.port, hostname: server.hostname });
      else
        session.print(
          `Serving the backup API and dashboard at ${server.url} (Ctrl-C stops; running jobs are cancelled).`,
        );
      const signal = session.io.signal;
      if (signal && !signal.aborted)
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await server.close();
      session.note('Stopped.');
      return 0;
    });
  },
});

import { bearerToken, MIN_TOKEN_LENGTH, serve } from '@koan/backup-http';
import { KoanError } from '@koan/data';
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
    const tokenHint = `Put a random token of at least ${MIN_TOKEN_LENGTH} characters in an environment variable and name it: KOAN_BACKUP_TOKEN=$(openssl rand -hex 24) koan-backup serve --host ${args.host ?? '0.0.0.0'} --token-env KOAN_BACKUP_TOKEN`;
    let auth: ReturnType<typeof bearerToken> | undefined;
    if (args['token-env']) {
      const name = args['token-env'];
      const token = session.env[name];
      if (!token) throw usageError(`--token-env ${name}: that environment variable is empty or not set.`, tokenHint);
      try {
        auth = bearerToken(token);
      } catch (e) {
        if (!(e instanceof KoanError && e.code === 'INVALID_OPTION')) throw e;
        throw usageError(
          `--token-env ${name}: the token is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH}.`,
          tokenHint,
        );
      }
    }
    await importEntityModules(session, args, rawArgs);
    return withContext(session, args, async (context) => {
      let server: Awaited<ReturnType<typeof serve>>;
      try {
        server = await serve(context, {
          port,
          hostname: args.host ?? '127.0.0.1',
          maxConcurrentJobs: maxJobs,
          ...(args['base-path'] ? { basePath: args['base-path'] } : {}),
          ...(auth ? { auth } : {}),
        });
      } catch (e) {
        // The library names its own options (auth, allowUnauthenticated); name the command line's instead.
        if (e instanceof KoanError && e.code === 'INVALID_OPTION' && e.details.option === 'auth')
          throw usageError(
            `--host ${args.host}: serving beyond this machine needs a bearer token (anyone on the network could read, restore and delete backups).`,
            `${tokenHint}. Or leave out --host to serve on 127.0.0.1 only.`,
          );
        throw e;
      }
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

// Runs s3rver in its own process: it needs `--openssl-legacy-provider` for paged listings,
// which a vitest worker cannot turn on. Prints one JSON line with the port, then serves until
// stdin closes (the parent exiting closes it, so no server outlives its test run).
const S3rver = require('s3rver');

const [directory, buckets] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: buckets.split(',').map((name) => ({ name })),
});
server.run().then(
  (address) => process.stdout.write(`${JSON.stringify({ port: address.port })}\n`),
  (error) => {
    process.stderr.write(String(error?.stack ?? error));
    process.exit(1);
  },
);
process.stdin.resume();
process.stdin.on('end', () => server.close().finally(() => process.exit(0)));

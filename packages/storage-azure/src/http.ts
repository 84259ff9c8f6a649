/**
 * Timeouts for the Azure SDK's requests. Its own `tryTimeoutInMs` only asks the server to give up (a `timeout` query
 * parameter): an endpoint that accepts the connection and never answers would hold a request forever. So the driver
 * gives the SDK an agent whose sockets time out: connecting takes at most `connectionTimeoutMs`, and a socket that
 * sends and receives nothing for `requestTimeoutMs` (an idle time: a long transfer that keeps moving is never cut) is
 * destroyed with a `RequestTimeoutError`, which the SDK reports as its `RestError` (code `ETIMEDOUT`).
 *
 * The SDK sends requests through the proxy named by `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` only when no agent is
 * given; so with one of those set there is no agent (the proxy keeps working) and the driver warns that the timeouts
 * do not apply.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Socket } from 'node:net';
import { RequestTimeoutError, type Timeouts } from '@koan/storage';

/** An agent for `serviceUrl` (http or https, keep-alive) whose sockets time out as above. */
export function timeoutAgent(serviceUrl: string, timeouts: Timeouts): HttpAgent {
  const { protocol, host } = new URL(serviceUrl);
  const options = { keepAlive: true, timeout: timeouts.requestTimeoutMs };
  const agent = protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (connect, callback) => {
    const socket = create(connect, callback);
    if (socket instanceof Socket) guard(socket, host, timeouts);
    return socket;
  };
  return agent;
}

function guard(socket: Socket, host: string, timeouts: Timeouts): void {
  // The agent's `timeout` makes every socket (in use or kept alive) idle-time out; one in use is destroyed here,
  // with an error naming the timeout (a kept-alive one the agent destroys itself).
  socket.on('timeout', () => socket.destroy(new RequestTimeoutError('request', timeouts.requestTimeoutMs, host)));
  if (!socket.connecting) return;
  const timer = setTimeout(
    () => socket.destroy(new RequestTimeoutError('connection', timeouts.connectionTimeoutMs, host)),
    timeouts.connectionTimeoutMs,
  );
  timer.unref();
  socket.once('connect', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}

const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'HTTP_PROXY', 'http_proxy'];

/** The environment variable that sends the SDK's requests through a proxy, if one is set. */
export function proxyVariable(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return PROXY_VARIABLES.find((name) => env[name]);
}

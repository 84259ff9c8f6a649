/**
 * The job routes: the list, one job, cancelling one, and its progress as server-sent events (resumable with
 * `Last-Event-ID`, with a heartbeat, and bounded for a client that stops reading).
 */
import type { Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { JobEvent, JobQueue } from '../_jobs.js';
import { queryParams } from '../_requests.js';
import type { ApiScope } from './scope.js';

const SSE_BUFFER = 1000;
const HEARTBEAT_MS = 15_000;

export function jobRoutes(app: Hono, api: ApiScope): void {
  const { jobs } = api;
  app.get('/jobs', (c) => {
    queryParams(c, []);
    return c.json({ jobs: jobs.list() });
  });
  app.get('/jobs/:id', (c) => c.json(jobs.get(c.req.param('id'))));
  app.delete('/jobs/:id', (c) => c.json(jobs.cancel(c.req.param('id')), 202));

  app.get('/jobs/:id/events', (c) => {
    const id = c.req.param('id');
    jobs.get(id); // 404 before the stream starts
    const lastEventId = Number.parseInt(c.req.header('last-event-id') ?? '0', 10) || 0;
    return streamJobEvents(c, jobs, id, lastEventId);
  });
}

/** Streams the events of job `id` after `lastEventId` until its `done` event, or until the client goes away. */
function streamJobEvents(c: Context, jobs: JobQueue, id: string, lastEventId: number): Response {
  return streamSSE(c, async function jobEvents(stream) {
    const pending: JobEvent[] = [];
    let wake: (() => void) | undefined;
    let stopped = false;
    const stop = () => {
      stopped = true;
      wake?.();
    };
    const request = c.req.raw.signal;
    request.addEventListener('abort', stop, { once: true });
    stream.onAbort(stop);
    const unsubscribe = jobs.subscribe(
      id,
      (event) => {
        // A client that stops reading must not grow memory: keep the newest events.
        if (pending.length >= SSE_BUFFER) pending.splice(0, pending.length - SSE_BUFFER + 1);
        pending.push(event);
        wake?.();
      },
      lastEventId,
    );
    const heartbeat = setInterval(() => void stream.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    try {
      while (!stopped && !request.aborted) {
        const event = pending.shift();
        if (!event) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        await stream.writeSSE({ id: String(event.id), event: event.type, data: JSON.stringify(event.data) });
        if (event.type === 'done') break;
      }
    } finally {
      unsubscribe();
      clearInterval(heartbeat);
      request.removeEventListener('abort', stop);
    }
  });
}

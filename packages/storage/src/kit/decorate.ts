/**
 * The driver kit: layers that wrap any `StorageDriver` and are one themselves (as restic stacks its backends), so a
 * remote driver is only its SDK calls and the layers add what every driver needs once:
 *
 *   validated(mapErrors(prefixed(withRetry(backend, classify), prefix), map))
 *
 * `decorate` is what each layer is built with: the inner driver with some operations replaced.
 */
import type { ListOptions, ListPage, ListPageOptions, ObjectInfo, StorageDriver } from '../driver.js';
import { StorageError } from '../driver.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The operations a layer replaces; the others stay the inner driver's. `provider` and `flags` are never replaced. */
export type DriverLayer = { readonly [K in Exclude<keyof StorageDriver, 'provider' | 'flags'>]?: StorageDriver[K] };

/**
 * `inner` with `layer`'s operations in place of its own. An optional operation (`listPage`, `listIncomplete`,
 * `abortIncomplete`, `sha256`, `close`) exists only where `inner` has it. When the layer replaces `listPage` and not
 * `list`, `list` is read from the layer's pages, so what the layer does to a page it does to every listing.
 */
export function decorate(inner: StorageDriver, layer: DriverLayer): StorageDriver {
  const listPage = inner.listPage && (layer.listPage ?? inner.listPage.bind(inner));
  const out: Mutable<StorageDriver> = {
    provider: inner.provider,
    flags: inner.flags,
    put: layer.put ?? inner.put.bind(inner),
    get: layer.get ?? inner.get.bind(inner),
    head: layer.head ?? inner.head.bind(inner),
    list:
      layer.list ??
      (layer.listPage && listPage
        ? (prefix: string, options?: ListOptions) => pagedList(listPage, prefix, options)
        : inner.list.bind(inner)),
    delete: layer.delete ?? inner.delete.bind(inner),
  };
  if (listPage) out.listPage = listPage;
  if (inner.listIncomplete) out.listIncomplete = layer.listIncomplete ?? inner.listIncomplete.bind(inner);
  if (inner.abortIncomplete) out.abortIncomplete = layer.abortIncomplete ?? inner.abortIncomplete.bind(inner);
  if (inner.sha256) out.sha256 = layer.sha256 ?? inner.sha256.bind(inner);
  if (inner.close) out.close = layer.close ?? inner.close.bind(inner);
  return out;
}

/**
 * A listing read page by page from `listPage`: each page is requested once the previous one has been consumed (so a
 * consumer that stops early stops the paging), and a signal aborted between pages stops it with the signal's reason.
 * A backend that hands back the token it was given would page forever: that is an `IO` error.
 */
export async function* pagedList(
  listPage: (prefix: string, options: ListPageOptions) => Promise<ListPage>,
  prefix: string,
  options: ListOptions = {},
): AsyncGenerator<ObjectInfo> {
  let token: string | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const page = await listPage(prefix, { ...options, token });
    yield* page.objects;
    if (page.next === undefined || page.next === '') return;
    if (page.next === token)
      throw new StorageError(
        'IO',
        `[storage] Listing ${JSON.stringify(prefix)}: the backend returned the same continuation token twice`,
        { key: prefix },
      );
    token = page.next;
  }
}

/** The items of `source`, each failure replaced by `fix(failure)`; stopping early stops `source`. */
export async function* mapIteration<T>(source: AsyncIterable<T>, fix: (error: unknown) => unknown): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<T>;
      try {
        next = await it.next();
      } catch (e) {
        throw fix(e);
      }
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await it.return?.();
  }
}

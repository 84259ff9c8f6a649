/**
 * s3rver answers ListMultipartUploads with 501 and AbortMultipartUpload with 405, so this suite
 * puts a proxy in front of it that fakes those two calls from the uploads it saw s3rver create and
 * complete. Everything else is real s3rver. With that, the whole conformance suite runs with
 * `multipartManagement` on, including cleanup of failed and aborted multipart puts.
 */
import { CreateMultipartUploadCommand } from '@aws-sdk/client-s3';
import { describeStorageConformance, patternBody } from '@koan/storage/testing';
import { expect, it } from 'vitest';
import { createS3Storage, type S3Storage } from '../src/index.js';
import { type FaultProxy, type ProxyRequest, startFaultProxy } from './fault-proxy.js';
import { type S3rverHandle, startS3rver } from './s3rver-harness.js';

const MiB = 1024 * 1024;
const PAGE = 2;

interface OpenUpload {
  key: string;
  id: string;
  initiated: Date;
}

function fakeMultipartManagement(bucket: string) {
  const open = new Map<string, OpenUpload>();
  const aborts: string[] = [];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parse = (req: ProxyRequest) => {
    const url = new URL(req.url, 'http://x');
    const [, b, ...rest] = url.pathname.split('/');
    return { url, bucket: b, key: decodeURIComponent(rest.join('/')) };
  };
  return {
    open,
    aborts,
    answer(req: ProxyRequest) {
      const { url, bucket: b, key } = parse(req);
      if (b !== bucket) return undefined;
      if (req.method === 'GET' && url.searchParams.has('uploads') && !key) {
        const prefix = url.searchParams.get('prefix') ?? '';
        const km = url.searchParams.get('key-marker') ?? '';
        const um = url.searchParams.get('upload-id-marker') ?? '';
        const all = [...open.values()]
          .filter((u) => u.key.startsWith(prefix) && (u.key > km || (u.key === km && u.id > um)))
          .sort((a, c) => (a.key === c.key ? (a.id < c.id ? -1 : 1) : a.key < c.key ? -1 : 1));
        const page = all.slice(0, PAGE);
        const last = page[page.length - 1];
        const truncated = all.length > PAGE;
        const body =
          `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
          `<Bucket>${bucket}</Bucket><MaxUploads>${PAGE}</MaxUploads><IsTruncated>${truncated}</IsTruncated>` +
          (truncated && last
            ? `<NextKeyMarker>${esc(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.id}</NextUploadIdMarker>`
            : '') +
          page
            .map(
              (u) =>
                `<Upload><Key>${esc(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
            )
            .join('') +
          `</ListMultipartUploadsResult>`;
        return { status: 200, headers: { 'content-type': 'application/xml' }, body };
      }
      const uploadId = url.searchParams.get('uploadId');
      if (req.method === 'DELETE' && uploadId) {
        aborts.push(uploadId);
        if (!open.delete(uploadId))
          return {
            status: 404,
            headers: { 'content-type': 'application/xml' },
            body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message>no such upload</Message></Error>',
          };
        return { status: 204 };
      }
      return undefined;
    },
    observe(req: ProxyRequest, status: number, body: Buffer) {
      const { url, key } = parse(req);
      if (req.method !== 'POST' || status !== 200) return;
      if (url.searchParams.has('uploads')) {
        const id = /<UploadId>([^<]+)<\/UploadId>/.exec(body.toString())?.[1];
        if (id) open.set(id, { key, id, initiated: new Date() });
      } else if (url.searchParams.get('uploadId')) open.delete(url.searchParams.get('uploadId')!);
    },
  };
}

let server: S3rverHandle;
let proxy: FaultProxy;
let fake: ReturnType<typeof fakeMultipartManagement>;

describeStorageConformance({
  name: 's3 (s3rver + multipart-management fake)',
  create: async () => {
    server = await startS3rver('mpu');
    fake = fakeMultipartManagement('mpu');
    proxy = await startFaultProxy({ target: server.endpoint, answer: fake.answer, observe: fake.observe });
    return createS3Storage({
      ...server.settings,
      endpoint: proxy.url,
      profile: 's3-mpu',
      prefix: 'root/',
      partSizeBytes: 5 * MiB,
      conditionalPut: false,
      retryBaseDelayMs: 10,
    });
  },
  destroy: async () => {
    await proxy?.stop();
    await server?.stop();
  },
  largeBytes: 11 * MiB,
  failAfterBytes: 6 * MiB,
  unorderedListing: "s3rver sorts 'a/b' before 'a-'; S3 lists in UTF-8 byte order",
  additionalTests: ({ driver, prefix }) => {
    it('lists uploads left by a crash page by page and aborts them', async () => {
      const s3 = driver() as S3Storage;
      const keys = ['c/1', 'c/2', 'c/2', 'c/3', 'c/4'].map((k) => `${prefix}${k}`);
      for (const k of keys)
        await s3.getInstance().send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key: `root/${k}` }));
      const found = [];
      for await (const u of s3.listIncomplete!()) if (u.key.startsWith(`${prefix}c/`)) found.push(u);
      expect(found.map((u) => u.key)).toEqual(keys);
      expect(new Set(found.map((u) => u.handle)).size).toBe(5);
      for (const u of found) await s3.abortIncomplete!(u);
      await s3.abortIncomplete!(found[0]!); // already gone: NoSuchUpload is fine
      const left = [];
      for await (const u of s3.listIncomplete!()) left.push(u);
      expect(left).toEqual([]);
    });

    it('sends AbortMultipartUpload when a multipart put fails or is aborted', async () => {
      const before = fake.aborts.length;
      async function* failing() {
        yield* patternBody(11 * MiB);
        throw new Error('source broke');
      }
      await expect(driver().put(`${prefix}mpu/fail.bin`, failing())).rejects.toMatchObject({ code: 'IO' });
      const controller = new AbortController();
      async function* aborting() {
        yield* patternBody(11 * MiB);
        controller.abort(new Error('stop'));
        yield* patternBody(MiB);
      }
      await expect(
        driver().put(`${prefix}mpu/abort.bin`, aborting(), { signal: controller.signal }),
      ).rejects.toMatchObject({
        code: 'ABORTED',
      });
      expect(fake.aborts.length - before).toBeGreaterThanOrEqual(2);
      expect([...fake.open.values()].filter((u) => u.key.includes('/mpu/'))).toEqual([]);
    });
  },
});

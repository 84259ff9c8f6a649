/**
 * The one place that reads private fields of `Upload` from @aws-sdk/lib-storage (pinned in package.json), which has
 * no public way to tell three things a failed or aborted put needs:
 *
 * - `singleUploadResult`: a body of one part is sent as one PutObject, which an abort does not cancel; if it landed,
 *   the object is published and put has succeeded, late abort or not.
 * - `concurrentUploaders`: the part uploads still in flight, to let them settle before the upload is aborted (a part
 *   that lands after AbortMultipartUpload is kept, and billed, until a lifecycle rule removes it).
 * - `uploadId`: the multipart upload to abort.
 *
 * test/lib-storage.test.ts runs real uploads against s3rver and fails, naming the field, when an SDK bump renames or
 * retypes one of them: bump the pin only with that test green.
 */
import type { Upload } from '@aws-sdk/lib-storage';

interface UploadInternals {
  readonly singleUploadResult?: { readonly ETag?: string };
  readonly concurrentUploaders?: readonly Promise<unknown>[];
  readonly uploadId?: string;
}

const internals = (upload: Upload) => upload as unknown as UploadInternals;

/** The PutObject answer of a one-part upload that completed (its ETag), if it did. */
export function singlePartResult(upload: Upload): { readonly ETag?: string } | undefined {
  return internals(upload).singleUploadResult;
}

/** The part uploads started so far (each settles when its part is stored or has failed). */
export function partUploads(upload: Upload): readonly Promise<unknown>[] {
  const uploaders = internals(upload).concurrentUploaders;
  return Array.isArray(uploaders) ? uploaders : [];
}

/** The id of the multipart upload this `Upload` created, if it created one. */
export function multipartUploadId(upload: Upload): string | undefined {
  const id = internals(upload).uploadId;
  return typeof id === 'string' ? id : undefined;
}

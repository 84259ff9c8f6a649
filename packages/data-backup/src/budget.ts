import { formatByteSize, MAX_BATCH_BYTES, parseByteSize } from '@koan/data/adapter-kit';
import { invalidOption } from './errors.js';

/** What a byte budget may be given as: a number of bytes, or a size such as `"8MiB"`, `"512 KiB"`, `"64KB"`. */
export type ByteSize = number | string;

/**
 * The byte budget of a backup's or restore's batches: `batchBytes` as given (a number of bytes or a size such as
 * `"8MiB"`), else `fallback` (Koan.Backup.DefaultBatchBytes). Refuses anything but 1 byte to 1 GiB, naming the option.
 */
export function batchBytesOption(value: ByteSize | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const bytes = parseByteSize(value);
  if (bytes === undefined || !Number.isInteger(bytes) || bytes < 1 || bytes > MAX_BATCH_BYTES)
    throw invalidOption(
      'batchBytes',
      value,
      `a size from 1 byte to ${formatByteSize(MAX_BATCH_BYTES)}: a number of bytes or a text such as "8MiB", "512KiB", "64KB" (default ${formatByteSize(fallback)}, Koan.Backup.DefaultBatchBytes)`,
    );
  return bytes;
}

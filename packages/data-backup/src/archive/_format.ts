/**
 * ZIP record layouts (PKWARE APPNOTE 6.3.x) used by the writer and the reader.
 * Only what Koan archives need: STORE/DEFLATE, UTF-8 names, data descriptors, ZIP64.
 */

export const SIG_LOCAL = 0x04034b50;
export const SIG_CENTRAL = 0x02014b50;
export const SIG_DESCRIPTOR = 0x08074b50;
export const SIG_EOCD = 0x06054b50;
export const SIG_ZIP64_EOCD = 0x06064b50;
export const SIG_ZIP64_LOCATOR = 0x07064b50;

export const LOCAL_HEADER_SIZE = 30;
export const CENTRAL_HEADER_SIZE = 46;
export const EOCD_SIZE = 22;
export const ZIP64_EOCD_SIZE = 56;
export const ZIP64_LOCATOR_SIZE = 20;
export const MAX_COMMENT = 0xffff;

export const FLAG_DATA_DESCRIPTOR = 1 << 3;
export const FLAG_UTF8 = 1 << 11;
export const FLAG_ENCRYPTED = 1;

export const METHOD_STORE = 0;
export const METHOD_DEFLATE = 8;

export const U16_MAX = 0xffff;
export const U32_MAX = 0xffffffff;
export const ZIP64_EXTRA_ID = 0x0001;

const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
/** Upper byte 3 = Unix, so external attributes carry a regular file mode. */
const MADE_BY = (3 << 8) | VERSION_ZIP64;
const UNIX_FILE_MODE = 0o100644;

export interface DosDateTime {
  readonly date: number;
  readonly time: number;
}

export function toDosDateTime(d: Date): DosDateTime {
  const year = d.getFullYear();
  if (year < 1980) return { date: (1 << 5) | 1, time: 0 };
  return {
    date: (((Math.min(year, 2107) - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate()) & 0xffff,
    time: ((d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1)) & 0xffff,
  };
}

/** What the central directory needs to know about one written entry. */
export interface CentralRecord {
  readonly nameBytes: Buffer;
  readonly flags: number;
  readonly method: number;
  readonly dos: DosDateTime;
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly localHeaderOffset: number;
  readonly zip64Local: boolean;
}

function zip64Extra(values: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(4 + 8 * values.length);
  b.writeUInt16LE(ZIP64_EXTRA_ID, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => {
    b.writeBigUInt64LE(BigInt(v), 4 + 8 * i);
  });
  return b;
}

/**
 * Local file header. `known` sizes are written for entries whose bytes exist already (spools);
 * otherwise flag bit 3 is set and the sizes follow in a ZIP64 data descriptor, because a streamed
 * entry may grow past 4 GiB and the local header cannot be rewritten once sent.
 */
export function localHeader(
  nameBytes: Buffer,
  method: number,
  dos: DosDateTime,
  known: { crc32: number; compressedSize: number; uncompressedSize: number } | undefined,
  forceZip64: boolean,
): { header: Buffer; flags: number; zip64: boolean } {
  const zip64 =
    known === undefined || forceZip64 || known.compressedSize >= U32_MAX || known.uncompressedSize >= U32_MAX;
  const flags = FLAG_UTF8 | (known === undefined ? FLAG_DATA_DESCRIPTOR : 0);
  const extra = zip64 ? zip64Extra([known?.uncompressedSize ?? 0, known?.compressedSize ?? 0]) : Buffer.alloc(0);
  const h = Buffer.allocUnsafe(LOCAL_HEADER_SIZE + nameBytes.length + extra.length);
  h.writeUInt32LE(SIG_LOCAL, 0);
  h.writeUInt16LE(zip64 ? VERSION_ZIP64 : VERSION_DEFAULT, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt16LE(method, 8);
  h.writeUInt16LE(dos.time, 10);
  h.writeUInt16LE(dos.date, 12);
  h.writeUInt32LE(known?.crc32 ?? 0, 14);
  h.writeUInt32LE(zip64 ? U32_MAX : (known?.compressedSize ?? 0), 18);
  h.writeUInt32LE(zip64 ? U32_MAX : (known?.uncompressedSize ?? 0), 22);
  h.writeUInt16LE(nameBytes.length, 26);
  h.writeUInt16LE(extra.length, 28);
  nameBytes.copy(h, LOCAL_HEADER_SIZE);
  extra.copy(h, LOCAL_HEADER_SIZE + nameBytes.length);
  return { header: h, flags, zip64 };
}

/** ZIP64 data descriptor: signature, CRC-32, 8-byte compressed and uncompressed sizes. */
export function dataDescriptor64(crc32: number, compressedSize: number, uncompressedSize: number): Buffer {
  const b = Buffer.allocUnsafe(24);
  b.writeUInt32LE(SIG_DESCRIPTOR, 0);
  b.writeUInt32LE(crc32 >>> 0, 4);
  b.writeBigUInt64LE(BigInt(compressedSize), 8);
  b.writeBigUInt64LE(BigInt(uncompressedSize), 16);
  return b;
}

export function centralHeader(r: CentralRecord, forceZip64: boolean): Buffer {
  const bigUncompressed = forceZip64 || r.uncompressedSize >= U32_MAX;
  const bigCompressed = forceZip64 || r.compressedSize >= U32_MAX;
  const bigOffset = forceZip64 || r.localHeaderOffset >= U32_MAX;
  const values: number[] = [];
  if (bigUncompressed) values.push(r.uncompressedSize);
  if (bigCompressed) values.push(r.compressedSize);
  if (bigOffset) values.push(r.localHeaderOffset);
  const extra = values.length > 0 ? zip64Extra(values) : Buffer.alloc(0);
  const zip64 = values.length > 0 || r.zip64Local;
  const h = Buffer.allocUnsafe(CENTRAL_HEADER_SIZE + r.nameBytes.length + extra.length);
  h.writeUInt32LE(SIG_CENTRAL, 0);
  h.writeUInt16LE(MADE_BY, 4);
  h.writeUInt16LE(zip64 ? VERSION_ZIP64 : VERSION_DEFAULT, 6);
  h.writeUInt16LE(r.flags, 8);
  h.writeUInt16LE(r.method, 10);
  h.writeUInt16LE(r.dos.time, 12);
  h.writeUInt16LE(r.dos.date, 14);
  h.writeUInt32LE(r.crc32 >>> 0, 16);
  h.writeUInt32LE(bigCompressed ? U32_MAX : r.compressedSize, 20);
  h.writeUInt32LE(bigUncompressed ? U32_MAX : r.uncompressedSize, 24);
  h.writeUInt16LE(r.nameBytes.length, 28);
  h.writeUInt16LE(extra.length, 30);
  h.writeUInt16LE(0, 32); // comment length
  h.writeUInt16LE(0, 34); // disk number start
  h.writeUInt16LE(0, 36); // internal attributes
  h.writeUInt32LE((UNIX_FILE_MODE << 16) >>> 0, 38);
  h.writeUInt32LE(bigOffset ? U32_MAX : r.localHeaderOffset, 42);
  r.nameBytes.copy(h, CENTRAL_HEADER_SIZE);
  extra.copy(h, CENTRAL_HEADER_SIZE + r.nameBytes.length);
  return h;
}

/** ZIP64 end record + locator (when needed) followed by the classic end-of-central-directory record. */
export function endOfCentralDirectory(count: number, cdOffset: number, cdSize: number, forceZip64: boolean): Buffer {
  const zip64 = forceZip64 || count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
  const parts: Buffer[] = [];
  if (zip64) {
    const z = Buffer.allocUnsafe(ZIP64_EOCD_SIZE);
    z.writeUInt32LE(SIG_ZIP64_EOCD, 0);
    z.writeBigUInt64LE(BigInt(ZIP64_EOCD_SIZE - 12), 4);
    z.writeUInt16LE(MADE_BY, 12);
    z.writeUInt16LE(VERSION_ZIP64, 14);
    z.writeUInt32LE(0, 16); // this disk
    z.writeUInt32LE(0, 20); // disk with central directory
    z.writeBigUInt64LE(BigInt(count), 24);
    z.writeBigUInt64LE(BigInt(count), 32);
    z.writeBigUInt64LE(BigInt(cdSize), 40);
    z.writeBigUInt64LE(BigInt(cdOffset), 48);
    const l = Buffer.allocUnsafe(ZIP64_LOCATOR_SIZE);
    l.writeUInt32LE(SIG_ZIP64_LOCATOR, 0);
    l.writeUInt32LE(0, 4);
    l.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
    l.writeUInt32LE(1, 16); // total disks
    parts.push(z, l);
  }
  const e = Buffer.allocUnsafe(EOCD_SIZE);
  e.writeUInt32LE(SIG_EOCD, 0);
  e.writeUInt16LE(0, 4);
  e.writeUInt16LE(0, 6);
  const c16 = forceZip64 || count >= U16_MAX ? U16_MAX : count;
  e.writeUInt16LE(c16, 8);
  e.writeUInt16LE(c16, 10);
  e.writeUInt32LE(forceZip64 || cdSize >= U32_MAX ? U32_MAX : cdSize, 12);
  e.writeUInt32LE(forceZip64 || cdOffset >= U32_MAX ? U32_MAX : cdOffset, 16);
  e.writeUInt16LE(0, 20);
  parts.push(e);
  return Buffer.concat(parts);
}

// WAL file names as PostgreSQL archives them, and their order. A segment name is
// TTTTTTTTXXXXXXXXYYYYYYYY (timeline, log, segment in hex); the archive also holds timeline
// history files (TTTTTTTT.history), backup history files and .partial segments.
const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const ARCHIVABLE = /^[0-9A-F]{8}(?:[0-9A-F]{16}(?:\.partial|\.[0-9A-F]{8}\.backup)?|\.history)$/;

export const DEFAULT_WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

export function isArchivableWalName(name: string): boolean {
  return ARCHIVABLE.test(name);
}

export function isSegmentName(name: string): boolean {
  return SEGMENT.test(name);
}

/** The position of a segment (log, seg) without its timeline, as one comparable number. */
export function segmentPosition(name: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): bigint | null {
  const m = /^[0-9A-F]{8}([0-9A-F]{8})([0-9A-F]{8})/.exec(name);
  if (!m) return null;
  const perLog = 0x1_0000_0000n / BigInt(segmentBytes);
  return BigInt(`0x${m[1]}`) * perLog + BigInt(`0x${m[2]}`);
}

/** Parses an LSN 'X/Y' into a bigint. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new Error(`invalid LSN '${lsn}'`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** The name of the WAL segment holding `lsn` on `timeline` (PostgreSQL's XLogFileName). */
export function walFileNameOf(timeline: number, lsn: string, segmentBytes = DEFAULT_WAL_SEGMENT_BYTES): string {
  const segno = parseLsn(lsn) / BigInt(segmentBytes);
  const perLog = 0x1_0000_0000n / BigInt(segmentBytes);
  const hex = (n: bigint | number) => n.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segno / perLog)}${hex(segno % perLog)}`;
}

// Retention: delete whole segments, oldest first, whose last record is older than the cut. The
// active segment is never deleted. Each remaining segment keeps its checkpoint file, which begins
// with the segment's opening checkpoint: signed, it carries the Merkle frontier and the hash of
// the record before the segment, so verification resumes there. A segment is deleted before its
// checkpoint file, so a crash in between leaves only an orphan checkpoint file (removed next time).
import { stat, unlink } from 'node:fs/promises';
import { parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { checkpointsName, checkpointsPath, readLayout, segmentName, segmentPath } from './files.js';
import type { AuditIo } from './io.js';
import { readFirstLine, readLastLine } from './lines.js';
import { maxCheckpointBytes } from './recover.js';
import { seqPrefix } from './record.js';

export interface RetentionResult {
  /** Base names of the deleted files. */
  readonly deleted: readonly string[];
  /** First record still held, undefined when the remaining segments hold none. */
  readonly firstSeq: number | undefined;
  /** The checkpoint verification now starts from (the first remaining segment's opening). */
  readonly anchor: Checkpoint | undefined;
}

export async function deleteOldSegments(dir: string, active: number, olderThan: Date, maxRecordBytes: number, io: AuditIo): Promise<RetentionResult> {
  const cut = olderThan.getTime();
  if (!Number.isFinite(cut)) throw new RangeError('olderThan is not a valid date');
  const layout = await readLayout(dir);
  const deleted: string[] = [];
  let firstKept = active;
  for (const n of layout.segments) {
    if (n >= active) break;
    if ((await stat(segmentPath(dir, n))).size > 0) {
      // Keep the segment (and all after it) unless its last record is readable and older than the cut.
      const last = await readLastLine(segmentPath(dir, n), maxRecordBytes + 512);
      const time = last === undefined ? undefined : /^\{"seq":\d+,"time":"([^"]+)"/.exec(last)?.[1];
      if (time === undefined || !(Date.parse(time) < cut)) {
        firstKept = n;
        break;
      }
    }
    await unlink(segmentPath(dir, n));
    deleted.push(segmentName(n));
  }
  for (const n of layout.checkpoints) {
    if (n >= firstKept) break;
    await unlink(checkpointsPath(dir, n));
    deleted.push(checkpointsName(n));
  }
  if (deleted.length > 0) await io.syncDirectory(dir);
  const anchorLine = await readFirstLine(checkpointsPath(dir, firstKept), maxCheckpointBytes(maxRecordBytes)).catch(() => undefined);
  const parsed = anchorLine === undefined ? undefined : parseCheckpoint(anchorLine);
  const firstLine = layout.segments.includes(firstKept)
    ? await readFirstLine(segmentPath(dir, firstKept), maxRecordBytes + 512).catch(() => undefined)
    : undefined;
  return {
    deleted,
    firstSeq: firstLine === undefined ? undefined : seqPrefix(firstLine),
    anchor: parsed?.ok ? parsed.checkpoint : undefined,
  };
}

// Opening an existing store directory: find where the writer left off. The writer state (seq,
// last hash, Merkle frontier) comes from the last checkpoint, then the records written after it
// are replayed. A torn tail (a partial or unparseable last write after a crash) is cut off, but
// only when nothing valid follows it, so recovery never deletes evidence: damage in the middle
// of a file, or a checkpoint that covers records the store no longer holds, refuses the open.
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { checkpointHash, checkpointSignatureValid, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { AuditCorruptError, AuditKeyError } from './errors.js';
import { checkpointsName, checkpointsPath, readLayout, segmentName, segmentPath } from './files.js';
import { readLastLine, readLines } from './lines.js';
import { opensSealed, readSealed } from './seal.js';
import { storeKeyOf } from './seal-keys.js';
import { MerkleFrontier } from './merkle.js';
import { parseRecordLine, seqPrefix, ZERO_HASH } from './record.js';
import type { SigningKey } from './signing-key.js';

export interface TruncatedTail {
  /** Base name of the file that was cut. */
  readonly file: string;
  /** The file's new length, i.e. where the torn bytes started. */
  readonly offset: number;
  readonly bytes: number;
  /** 1-based line at which the torn part began. */
  readonly line: number;
}

export interface RecoveryReport {
  /** A new store was created (the directory held no segments). */
  readonly fresh: boolean;
  /** Torn tails removed from the active segment and checkpoint files. */
  readonly truncated: readonly TruncatedTail[];
  /** Records written after the last checkpoint (a checkpoint covering them is written at open). */
  readonly uncheckpointedRecords: number;
  readonly lastSeq: number;
}

export interface RecoveredState {
  readonly active: number;
  readonly seq: number;
  readonly lastHash: string;
  readonly frontier: MerkleFrontier;
  readonly segmentBytes: number;
  readonly segmentFirstTimeMs: number | undefined;
  /** The last checkpoint and its line; undefined only for a fresh store. */
  readonly lastCheckpoint: { readonly checkpoint: Checkpoint; readonly text: string } | undefined;
  readonly checkpointBytes: number;
  /** checkpoints-<active> lacks its opening checkpoint. */
  readonly needsOpening: boolean;
  readonly report: RecoveryReport;
}

export async function recoverStore(dir: string, key: SigningKey, maxRecordBytes: number): Promise<RecoveredState> {
  const layout = await readLayout(dir);
  const lastSeg = layout.segments.at(-1) ?? 0;
  const lastCk = layout.checkpoints.at(-1) ?? 0;
  const active = Math.max(lastSeg, lastCk, 1);
  const truncated: TruncatedTail[] = [];

  // The last checkpoint: in checkpoints-<active>, or before the opening was written, in the one before.
  let last: { checkpoint: Checkpoint; text: string; fileNo: number } | undefined;
  let checkpointBytes = 0;
  for (const n of [active, active - 1]) {
    if (!layout.checkpoints.includes(n)) continue;
    const found = await lastCheckpointIn(dir, n, n === active ? truncated : undefined, maxCheckpointBytes(maxRecordBytes));
    if (n === active) checkpointBytes = found.bytes;
    if (found.last) {
      last = { ...found.last, fileNo: n };
      break;
    }
  }
  const needsOpening = checkpointBytes === 0;
  if (last && last.checkpoint.keyId !== key.keyId) {
    throw new AuditKeyError(`checkpoint ${last.checkpoint.index} was signed by key ${last.checkpoint.keyId}, not by this store's key ${key.keyId}`);
  }
  if (last && !checkpointSignatureValid(last.checkpoint, key.publicKey)) {
    throw new AuditCorruptError(`the signature of checkpoint ${last.checkpoint.index} does not verify`, checkpointsName(last.fileNo));
  }
  if (!last && (layout.segments.length > 1 || lastCk > 1)) {
    throw new AuditCorruptError('no checkpoint found to continue the store from', checkpointsName(active));
  }

  // Replay the records after the last checkpoint.
  let seq = last?.checkpoint.size ?? 0;
  let lastHash = last?.checkpoint.lastHash ?? ZERO_HASH;
  const frontier = last ? MerkleFrontier.from(last.checkpoint.size, last.checkpoint.frontier) : MerkleFrontier.empty();
  let segmentBytes = 0;
  let segmentFirstTimeMs: number | undefined;
  let replayed = 0;
  const firstScanned = last?.fileNo ?? 1;
  const checkpointSize = seq;
  // The record the checkpoint ends at must still be there: as the checkpoint's lastHash.
  let anchorSeen = checkpointSize === 0;
  for (const n of layout.segments.filter((s) => s >= firstScanned)) {
    const isActive = n === active;
    const file = segmentName(n);
    let torn: { offset: number; line: number } | undefined;
    let bytes = 0;
    // A sealed segment is cut at a frame (torn frames only at its end), before its lines are read.
    const sealed = isActive ? await repairSealedTail(segmentPath(dir, n), truncated) : false;
    for await (const line of readLines(segmentPath(dir, n), maxRecordBytes + 512)) {
      if (torn) {
        const p = line.complete && line.text !== undefined ? parseRecordLine(line.text) : undefined;
        if (p?.ok) throw new AuditCorruptError(`line ${torn.line} is damaged but valid records follow it`, file, torn.line);
        continue;
      }
      const prefix = line.text === undefined ? undefined : seqPrefix(line.text);
      if (line.complete && replayed === 0 && prefix !== undefined && prefix <= checkpointSize) {
        if (isActive && segmentFirstTimeMs === undefined) segmentFirstTimeMs = firstTime(line.text);
        if (prefix === checkpointSize) anchorSeen = checkAnchor(line.text!, last!.checkpoint, file, line.lineNo);
        bytes = line.offset + line.bytes;
        continue;
      }
      const p = line.complete && line.text !== undefined ? parseRecordLine(line.text) : undefined;
      if (!p?.ok || p.record.seq !== seq + 1 || p.record.prev !== lastHash) {
        // In a sealed frame that opened, it is not a write cut short: the writer wrote it so.
        if (!isActive || sealed) throw new AuditCorruptError(`line ${line.lineNo} does not continue the chain at seq ${seq}`, file, line.lineNo);
        torn = { offset: line.offset, line: line.lineNo };
        continue;
      }
      if (isActive && segmentFirstTimeMs === undefined) segmentFirstTimeMs = Date.parse(p.record.time);
      seq = p.record.seq;
      lastHash = p.record.hash;
      frontier.append(p.hashBytes);
      replayed++;
      bytes = line.offset + line.bytes;
    }
    if (isActive) {
      segmentBytes = bytes;
      if (torn) truncated.push(await truncateFile(segmentPath(dir, n), torn.offset, torn.line));
    }
  }

  if (last && !anchorSeen && replayed === 0) {
    // An opening checkpoint: the record it ends at is the last one of the segment before.
    const before = layout.segments.filter((n) => n < firstScanned).at(-1);
    const text = before === undefined ? undefined : await readLastLine(segmentPath(dir, before), maxRecordBytes + 512);
    if (text !== undefined && seqPrefix(text) === checkpointSize) anchorSeen = checkAnchor(text, last.checkpoint, segmentName(before!), 0);
  }
  if (last && !anchorSeen && replayed === 0) {
    throw new AuditCorruptError(
      `checkpoint ${last.checkpoint.index} covers ${last.checkpoint.size} records but the store does not hold record ${last.checkpoint.size}`,
    );
  }
  if (needsOpening && segmentBytes > 0) {
    // The opening checkpoint is written before its segment is created: records without one are not ours.
    throw new AuditCorruptError(`segment ${active} holds records but has no opening checkpoint`, checkpointsName(active));
  }
  return {
    active,
    seq,
    lastHash,
    frontier,
    segmentBytes,
    segmentFirstTimeMs,
    lastCheckpoint: last ? { checkpoint: last.checkpoint, text: last.text } : undefined,
    checkpointBytes,
    needsOpening,
    report: {
      fresh: layout.segments.length === 0 && layout.checkpoints.length === 0,
      truncated,
      uncheckpointedRecords: seq - (last?.checkpoint.size ?? 0),
      lastSeq: seq,
    },
  };
}

export const maxCheckpointBytes = (maxRecordBytes: number): number => Math.max(64 * 1024, Math.min(maxRecordBytes, 1 << 20));

async function lastCheckpointIn(
  dir: string,
  n: number,
  truncated: TruncatedTail[] | undefined,
  maxBytes: number,
): Promise<{ last: { checkpoint: Checkpoint; text: string } | undefined; bytes: number }> {
  const file = checkpointsPath(dir, n);
  let last: { checkpoint: Checkpoint; text: string } | undefined;
  let bytes = 0;
  let torn: { offset: number; line: number } | undefined;
  for await (const line of readLines(file, maxBytes)) {
    const p = line.complete && line.text !== undefined ? parseCheckpoint(line.text) : undefined;
    if (torn) {
      if (p?.ok) throw new AuditCorruptError(`checkpoint line ${torn.line} is damaged but valid checkpoints follow it`, checkpointsName(n), torn.line);
      continue;
    }
    if (!p?.ok || (last && p.checkpoint.prev !== checkpointHash(last.checkpoint))) {
      if (!truncated) throw new AuditCorruptError(`checkpoint line ${line.lineNo} is damaged`, checkpointsName(n), line.lineNo);
      torn = { offset: line.offset, line: line.lineNo };
      continue;
    }
    last = { checkpoint: p.checkpoint, text: line.text! };
    bytes = line.offset + line.bytes;
  }
  if (torn && truncated) truncated.push(await truncateFile(file, torn.offset, torn.line));
  return { last, bytes };
}

/** Cuts a sealed file's torn last frame off (refusing damage, which is not a torn write);
 * false when the file is not sealed. */
async function repairSealedTail(file: string, truncated: TruncatedTail[]): Promise<boolean> {
  const handle = await open(file, 'r');
  let cut: { offset: number; line: number } | undefined;
  try {
    if (!(await opensSealed(handle))) return false;
    let lines = 0;
    for await (const piece of readSealed(handle, storeKeyOf(file), file)) {
      if (piece.kind === 'plain') {
        for (let at = piece.data.indexOf(10); at !== -1; at = piece.data.indexOf(10, at + 1)) lines++;
      } else if (piece.kind === 'torn') {
        cut = { offset: piece.offset, line: lines + 1 };
      } else {
        throw new AuditCorruptError(`${piece.reason}: the sealed segment is damaged`, path.basename(file), lines + 1);
      }
    }
  } finally {
    await handle.close();
  }
  if (cut) truncated.push(await truncateFile(file, cut.offset, cut.line));
  return true;
}

async function truncateFile(file: string, offset: number, line: number): Promise<TruncatedTail> {
  const size = (await stat(file)).size;
  const handle = await open(file, 'r+');
  try {
    await handle.truncate(offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { file: file.slice(file.lastIndexOf('/') + 1), offset, bytes: size - offset, line };
}

function checkAnchor(text: string, cp: Checkpoint, file: string, line: number): true {
  const p = parseRecordLine(text);
  if (!p.ok || p.record.hash !== cp.lastHash) {
    throw new AuditCorruptError(`record ${cp.size} does not match checkpoint ${cp.index}`, file, line);
  }
  return true;
}

function firstTime(text: string | undefined): number | undefined {
  const m = text === undefined ? null : /^\{"seq":\d+,"time":"([^"]+)"/.exec(text);
  return m ? Date.parse(m[1]!) : undefined;
}

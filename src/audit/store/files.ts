// File names of a store directory: segment-NNNNNN.log holds records, checkpoints-NNNNNN.log the
// checkpoints made while segment NNNNNN was the active one, starting with its opening checkpoint
// (which seals everything before the segment's first record).
import { readdir } from 'node:fs/promises';
import path from 'node:path';

const SEGMENT = /^segment-(\d{6,})\.log$/;
const CHECKPOINTS = /^checkpoints-(\d{6,})\.log$/;

export const segmentName = (n: number): string => `segment-${String(n).padStart(6, '0')}.log`;
export const checkpointsName = (n: number): string => `checkpoints-${String(n).padStart(6, '0')}.log`;
export const LOCK_NAME = 'LOCK';

export interface StoreLayout {
  /** Segment numbers present, ascending. */
  readonly segments: number[];
  /** Checkpoint file numbers present, ascending. */
  readonly checkpoints: number[];
}

export async function readLayout(dir: string): Promise<StoreLayout> {
  const segments: number[] = [];
  const checkpoints: number[] = [];
  for (const name of await readdir(dir)) {
    const s = SEGMENT.exec(name);
    if (s) segments.push(Number(s[1]));
    const c = CHECKPOINTS.exec(name);
    if (c) checkpoints.push(Number(c[1]));
  }
  const asc = (a: number, b: number): number => a - b;
  return { segments: segments.sort(asc), checkpoints: checkpoints.sort(asc) };
}

export const segmentPath = (dir: string, n: number): string => path.join(dir, segmentName(n));
export const checkpointsPath = (dir: string, n: number): string => path.join(dir, checkpointsName(n));

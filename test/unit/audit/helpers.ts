// Shared pieces of the audit store tests: temp dirs, events, a counting/failing wrapper of the
// store's file operations, and editing store files the way an attacker would.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { createHash } from 'node:crypto';
import { nodeIo, type AppendFile, type AuditIo } from '../../../src/audit/store/io.js';
import { leafHash, nodeHash } from '../../../src/audit/store/merkle.js';
import { openAuditStore } from '../../../src/audit/store/open-store.js';
import type { AuditStore } from '../../../src/audit/store/store.js';
import type { AuditStoreOptions } from '../../../src/audit/store/options.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh temp dir holding `store/` and `keys/`, removed after the test file. */
export function tempRoot(): { root: string; dir: string; keyFile: string } {
  const root = mkdtempSync(path.join(tmpdir(), 'pgwarden-audit-'));
  dirs.push(root);
  return { root, dir: path.join(root, 'store'), keyFile: path.join(root, 'keys', 'audit-signing.pem') };
}

export function event(i: number): Record<string, unknown> {
  return {
    type: 'statement',
    time: new Date(Date.UTC(2025, 0, 1, 0, 0, 0, i)).toISOString(),
    connection: { connId: `c${i % 7}`, clientAddress: '10.0.0.5', clientPort: 40000 + i, listener: 'public' },
    server: 'srv1',
    user: `u${i}`,
    statement: { class: 'READ', tag: 'SELECT', rows: i },
  };
}

export async function openStore(dir: string, keyFile: string, extra: Partial<AuditStoreOptions> = {}): Promise<AuditStore> {
  return openAuditStore({ dir, keyFile, durability: 'batched', fsyncIntervalMs: 20, checkpointIntervalMs: 60_000, ...extra });
}

/** A run of records as the native relay hands them: each as its length (u32 LE) and its text. */
export function recordRun(...texts: string[]): Buffer {
  return Buffer.concat(
    texts.flatMap((t) => {
      const b = Buffer.from(t);
      const n = Buffer.alloc(4);
      n.writeUInt32LE(b.length);
      return [n, b];
    }),
  );
}

export async function appendMany(store: AuditStore, from: number, count: number): Promise<void> {
  await Promise.all(Array.from({ length: count }, (_, k) => store.append(event(from + k))));
}

/**
 * Wraps the real file operations: counts writes and fdatasyncs per file, knows which writes have
 * been followed by an fdatasync, and can make the next writes fail (with part of the data written).
 * A mock only of the failure: the kernel will not fail a write on demand here.
 */
export class RecordingIo implements AuditIo {
  writes = 0;
  syncs = 0;
  /** Segment writes not yet followed by an fdatasync of that file. */
  unsyncedSegmentWrites = 0;
  failWrites: { code: string; partial: boolean } | undefined;
  readonly log: string[] = [];

  async openAppend(file: string): Promise<AppendFile> {
    const real = await nodeIo.openAppend(file);
    const name = path.basename(file);
    const isSegment = name.startsWith('segment-');
    return {
      append: async (data) => {
        if (this.failWrites) {
          if (this.failWrites.partial) await real.append(data.subarray(0, Math.floor(data.length / 2)));
          const err = Object.assign(new Error(`${this.failWrites.code}: injected`), { code: this.failWrites.code });
          throw err;
        }
        await real.append(data);
        this.writes++;
        if (isSegment) this.unsyncedSegmentWrites++;
        this.log.push(`write ${name}`);
      },
      datasync: async () => {
        await real.datasync();
        this.syncs++;
        if (isSegment) this.unsyncedSegmentWrites = 0;
        this.log.push(`sync ${name}`);
      },
      truncate: (length) => real.truncate(length),
      close: () => real.close(),
    };
  }

  syncDirectory(dir: string): Promise<void> {
    return nodeIo.syncDirectory(dir);
  }
}

// ---- files as an attacker edits them ----

export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('segment-'))
    .sort();
}

export function checkpointFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.startsWith('checkpoints-'))
    .sort();
}

export function fileLines(dir: string, name: string): string[] {
  const text = readFileSync(path.join(dir, name), 'utf8');
  return text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
}

export function writeFileLines(dir: string, name: string, lines: readonly string[]): void {
  writeFileSync(path.join(dir, name), lines.length ? `${lines.join('\n')}\n` : '');
}

/** Where record `seq` is: segment file name and 1-based line. */
export function locate(dir: string, seq: number): { file: string; line: number } {
  for (const file of segmentFiles(dir)) {
    const i = fileLines(dir, file).findIndex((l) => l.startsWith(`{"seq":${seq},`));
    if (i !== -1) return { file, line: i + 1 };
  }
  throw new Error(`seq ${seq} not found`);
}

export function editLine(dir: string, file: string, line: number, edit: (text: string) => string): void {
  const lines = fileLines(dir, file);
  lines[line - 1] = edit(lines[line - 1]!);
  writeFileLines(dir, file, lines);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** RFC 6962 §2.1 Merkle Tree Hash, written the way the RFC states it. */
export function mth(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest();
  if (leaves.length === 1) return leafHash(leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

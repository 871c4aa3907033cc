// verifyStore: proves the records and checkpoints in a store directory are as written. It walks
// every record in order checking its canonical form, hash, seq and link to the one before;
// folds the hashes into the Merkle tree; and checks each checkpoint, as soon as the walk reaches
// its size, for form, signature, chain link to the checkpoint before, and root. A checkpoint held
// off the host (lastKnownCheckpoint) is checked the same way and shows a cut-off tail.
// The walk stops at the first problem and names it: file, line, seq, reason.
import { createHash, type KeyObject } from 'node:crypto';
import { checkpointSignatureValid, checkpointText, checkpointTreeConsistent, parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { checkpointsName, checkpointsPath, readLayout, segmentName, segmentPath, type StoreLayout } from './files.js';
import { readFirstLine, readLines, type FileLine } from './lines.js';
import { MerkleFrontier } from './merkle.js';
import { parseRecordLine, seqPrefix } from './record.js';
import { keyIdOf, toPublicKey } from './signing-key.js';
import type { VerifyFailure, VerifyOptions, VerifyReport } from './verify-types.js';

export type { VerifyFailure, VerifyOptions, VerifyReason, VerifyReport } from './verify-types.js';

interface CheckpointItem {
  readonly fileNo: number;
  readonly file: string;
  readonly line: number;
  readonly first: boolean;
  readonly parsed: { readonly checkpoint: Checkpoint; readonly text: string } | { readonly error: string };
}

class Stop extends Error {
  constructor(readonly failure: VerifyFailure) {
    super(failure.message);
  }
}

const hashText = (text: string): string => createHash('sha256').update(text).digest('hex');

export async function verifyStore(dir: string, options: VerifyOptions): Promise<VerifyReport> {
  const v = new Verifier(dir, options);
  try {
    await v.run();
  } catch (err) {
    if (err instanceof Stop) return v.report(err.failure);
    throw err;
  }
  return v.report(undefined);
}

class Verifier {
  private readonly key: KeyObject;
  private readonly keyId: string;
  private readonly maxLine: number;
  private readonly warnings: string[] = [];
  private items: CheckpointItem[] = [];
  private next = 0;
  private seq = 0;
  private lastHash = '';
  private frontier = MerkleFrontier.empty();
  private cpIndex = -1;
  private cpText = '';
  private anchor: Checkpoint | undefined;
  private lastCheckpoint: Checkpoint | undefined;
  private witness: Checkpoint | undefined;
  private witnessChecked = false;
  private firstSeq: number | undefined;
  private records = 0;
  private checkpoints = 0;
  private lastPlace = { file: '', line: 0 };

  constructor(
    private readonly dir: string,
    private readonly options: VerifyOptions,
  ) {
    this.key = toPublicKey(options.publicKey);
    this.keyId = keyIdOf(this.key);
    this.maxLine = options.maxLineBytes ?? 1024 * 1024 + 512;
  }

  report(failure: VerifyFailure | undefined): VerifyReport {
    return {
      ok: failure === undefined,
      ...(failure ? { failure } : {}),
      firstSeq: this.firstSeq,
      lastSeq: this.seq,
      records: this.records,
      checkpoints: this.checkpoints,
      ...(this.anchor ? { anchor: this.anchor } : {}),
      ...(this.lastCheckpoint ? { lastCheckpoint: this.lastCheckpoint } : {}),
      warnings: this.warnings,
    };
  }

  async run(): Promise<void> {
    const layout = await readLayout(this.dir);
    const base = layout.segments[0] ?? layout.checkpoints[0];
    if (base === undefined) this.fail('no-anchor', this.dir, 0, 'the directory holds no audit segments or checkpoints');
    for (const n of layout.checkpoints.filter((c) => c < base)) {
      this.warnings.push(`${checkpointsName(n)} belongs to a segment no longer present (ignored)`);
    }
    await this.loadCheckpoints(layout, base);
    this.witness = this.callerCheckpoint(this.options.lastKnownCheckpoint, 'witness');
    const fromFirst = await this.chooseAnchor(base);
    const start = fromFirst ? base : await this.segmentHolding(layout, this.seq + 1);
    await this.walk(layout, start, !fromFirst);
    this.finish(layout);
  }

  private fail(reason: VerifyFailure['reason'], file: string, line: number, message: string, extra: { seq?: number; checkpoint?: number } = {}): never {
    throw new Stop({ reason, file, line, ...extra, message });
  }

  private async loadCheckpoints(layout: StoreLayout, base: number): Promise<void> {
    const files = layout.checkpoints.filter((c) => c >= base);
    for (const n of files) {
      const file = checkpointsName(n);
      for await (const l of readLines(checkpointsPath(this.dir, n), 1 << 20)) {
        if (!l.complete && n === files.at(-1)) {
          this.warnings.push(`${file} line ${l.lineNo}: incomplete last line ignored (the writer stopped mid-write)`);
          break;
        }
        const p = l.complete && l.text !== undefined ? parseCheckpoint(l.text) : { ok: false as const, message: 'incomplete line' };
        this.items.push({
          fileNo: n,
          file,
          line: l.lineNo,
          first: l.lineNo === 1,
          parsed: p.ok ? { checkpoint: p.checkpoint, text: l.text! } : { error: p.message },
        });
      }
    }
  }

  /** A checkpoint the caller gives: parsed and signature-checked, or the verification fails. */
  private callerCheckpoint(input: VerifyOptions['lastKnownCheckpoint'], file: string): Checkpoint | undefined {
    if (input === undefined) return undefined;
    const raw = 'format' in input && 'checkpoint' in input ? input.checkpoint : input;
    const p = parseCheckpoint(raw);
    if (!p.ok) this.fail('checkpoint-bad-line', file, 0, `the ${file} checkpoint is malformed: ${p.message}`);
    const cp = p.checkpoint;
    if (cp.keyId !== this.keyId || !checkpointSignatureValid(cp, this.key) || !checkpointTreeConsistent(cp)) {
      this.fail('checkpoint-signature', file, 0, `the ${file} checkpoint ${cp.index} is not validly signed by the given key`, { checkpoint: cp.index });
    }
    return cp;
  }

  /** Sets the starting state; returns true when it is the first checkpoint held (walk every record). */
  private async chooseAnchor(base: number): Promise<boolean> {
    const from = this.options.fromCheckpoint;
    let anchorAt: number;
    let cp: Checkpoint;
    let text: string;
    if (from === undefined) {
      anchorAt = 0;
      const first = this.items[0];
      if (!first || first.fileNo !== base || !first.first) {
        this.fail('no-anchor', checkpointsName(base), 1, `${checkpointsName(base)} with the opening checkpoint of ${segmentName(base)} is missing`);
      }
      cp = this.checkItemForm(first);
      text = checkpointText(cp);
      this.checkSignature(cp, first.file, first.line);
    } else if (typeof from === 'number') {
      anchorAt = this.items.findIndex((i) => 'checkpoint' in i.parsed && i.parsed.checkpoint.index === from);
      if (anchorAt === -1) this.fail('checkpoint-missing', this.dir, 0, `the store holds no checkpoint ${from}`, { checkpoint: from });
      const item = this.items[anchorAt]!;
      cp = this.checkItemForm(item);
      text = checkpointText(cp);
      this.checkSignature(cp, item.file, item.line);
    } else {
      cp = this.callerCheckpoint(from, 'from-checkpoint')!;
      text = checkpointText(cp);
      anchorAt = this.items.findIndex((i) => 'checkpoint' in i.parsed && i.parsed.checkpoint.index === cp.index);
      if (anchorAt !== -1 && (this.items[anchorAt]!.parsed as { text: string }).text !== text) {
        const item = this.items[anchorAt]!;
        this.fail('checkpoint-mismatch', item.file, item.line, `checkpoint ${cp.index} differs from the one given to start from`, { checkpoint: cp.index });
      }
      if (anchorAt === -1) anchorAt = this.items.findIndex((i) => 'checkpoint' in i.parsed && i.parsed.checkpoint.index > cp.index) - 1;
      if (anchorAt < -1) anchorAt = this.items.length - 1;
    }
    if (!checkpointTreeConsistent(cp)) {
      this.fail(
        'checkpoint-bad-line',
        this.items[anchorAt]?.file ?? 'from-checkpoint',
        this.items[anchorAt]?.line ?? 0,
        `checkpoint ${cp.index}'s frontier does not fold to its root`,
        { checkpoint: cp.index },
      );
    }
    this.anchor = cp;
    this.lastCheckpoint = cp;
    this.checkpoints = 1;
    this.seq = cp.size;
    this.lastHash = cp.lastHash;
    this.frontier = MerkleFrontier.from(cp.size, cp.frontier);
    this.cpIndex = cp.index;
    this.cpText = text;
    this.next = anchorAt + 1;
    this.checkCheckpoints(); // those of the same size as the anchor
    return from === undefined;
  }

  private checkItemForm(item: CheckpointItem): Checkpoint {
    if ('error' in item.parsed) this.fail('checkpoint-bad-line', item.file, item.line, `checkpoint line: ${item.parsed.error}`);
    return item.parsed.checkpoint;
  }

  private checkSignature(cp: Checkpoint, file: string, line: number): void {
    if (cp.keyId !== this.keyId || !checkpointSignatureValid(cp, this.key)) {
      const why = cp.keyId !== this.keyId ? 'is signed by another key' : 'has a signature that does not verify';
      this.fail('checkpoint-signature', file, line, `checkpoint ${cp.index} ${why}`, { checkpoint: cp.index, seq: cp.size });
    }
  }

  /** The segment whose first record is the last one at or before seq. */
  private async segmentHolding(layout: StoreLayout, seq: number): Promise<number> {
    let found = layout.segments[0] ?? 0;
    for (const n of layout.segments) {
      const first = await readFirstLine(segmentPath(this.dir, n), this.maxLine);
      const s = first === undefined ? undefined : seqPrefix(first);
      if (s !== undefined && s <= seq) found = n;
      if (s !== undefined && s > seq) break;
    }
    return found;
  }

  private async walk(layout: StoreLayout, start: number, skipCovered: boolean): Promise<void> {
    const segments = layout.segments.filter((n) => n >= start);
    const skipTo = this.seq;
    for (let si = 0; si < segments.length; si++) {
      const n = segments[si]!;
      const file = segmentName(n);
      if (si > 0) this.enterSegment(segments[si - 1]!, n);
      const lines = readLines(segmentPath(this.dir, n), this.maxLine)[Symbol.asyncIterator]();
      try {
        for (let next = await lines.next(); !next.done; next = await lines.next()) {
          const l = next.value;
          if (!l.complete) {
            // readLines yields an incomplete line only at the end of a file.
            if (si === segments.length - 1) {
              this.warnings.push(`${file} line ${l.lineNo}: incomplete last line ignored (the writer stopped mid-write)`);
              break;
            }
            this.fail('bad-line', file, l.lineNo, 'incomplete line', { ...seqOf(l) });
          }
          if (l.text === undefined) this.fail('bad-line', file, l.lineNo, l.damage ?? `not UTF-8 or longer than ${this.maxLine} bytes`);
          if (skipCovered) {
            const s = seqPrefix(l.text);
            if (s !== undefined && s <= skipTo && this.records === 0) continue;
          }
          const p = parseRecordLine(l.text);
          if (!p.ok) this.fail(p.problem, file, l.lineNo, p.message, p.seq === undefined ? {} : { seq: p.seq });
          const r = p.record;
          const expected = this.seq + 1;
          if (r.seq !== expected) {
            if (r.seq > expected) {
              const peek = await lines.next();
              const after = peek.done || peek.value.text === undefined ? undefined : seqPrefix(peek.value.text);
              if (after === expected) {
                this.fail('reordered', file, l.lineNo, `seq ${r.seq} comes before seq ${expected} (line ${l.lineNo + 1})`, { seq: r.seq });
              }
              this.fail('seq-gap', file, l.lineNo, `expected seq ${expected}, found ${r.seq}: ${r.seq - expected} record(s) missing`, { seq: r.seq });
            }
            this.fail('reordered', file, l.lineNo, `seq ${r.seq} comes after seq ${this.seq}`, { seq: r.seq });
          }
          if (r.prev !== this.lastHash) {
            this.fail('prev-mismatch', file, l.lineNo, `record ${r.seq} does not link to the hash of record ${this.seq}`, { seq: r.seq });
          }
          this.frontier.append(p.hashBytes);
          this.seq = r.seq;
          this.lastHash = r.hash;
          this.firstSeq ??= r.seq;
          this.records++;
          this.lastPlace = { file, line: l.lineNo };
          this.checkCheckpoints();
        }
      } finally {
        await lines.return(undefined);
      }
      if (this.lastPlace.file !== file) this.lastPlace = { file, line: 0 };
    }
    this.checkCheckpoints();
  }

  /** Moving from segment `prev` to `n`: no segment may be missing between them. */
  private enterSegment(prev: number, n: number): void {
    if (n !== prev + 1) {
      this.fail('segment-missing', segmentName(prev + 1), 0, `${segmentName(prev + 1)} is missing: the records after seq ${this.seq} are gone`, {
        seq: this.seq + 1,
      });
    }
  }

  /** Checks every checkpoint the walk has reached (size <= seq). */
  private checkCheckpoints(): void {
    for (; this.next < this.items.length; this.next++) {
      const item = this.items[this.next]!;
      if ('error' in item.parsed) this.fail('checkpoint-bad-line', item.file, item.line, `checkpoint line: ${item.parsed.error}`);
      const { checkpoint: cp, text } = item.parsed;
      if (cp.size > this.seq) break;
      this.checkSignature(cp, item.file, item.line);
      if (cp.index !== this.cpIndex + 1 || cp.prev !== hashText(this.cpText)) {
        const why = cp.index !== this.cpIndex + 1 ? `index ${cp.index} follows ${this.cpIndex}` : `it does not link to checkpoint ${this.cpIndex}`;
        this.fail('checkpoint-chain', item.file, item.line, `checkpoint chain broken: ${why} (a checkpoint line was removed, moved or inserted)`, {
          checkpoint: cp.index,
          seq: cp.size,
        });
      }
      if (cp.size < this.seq) {
        this.fail('checkpoint-chain', item.file, item.line, `checkpoint ${cp.index} (size ${cp.size}) comes after records up to seq ${this.seq}`, {
          checkpoint: cp.index,
          seq: cp.size,
        });
      }
      if (cp.root !== this.frontier.root().toString('hex') || cp.lastHash !== this.lastHash) {
        this.fail(
          'root-mismatch',
          item.file,
          item.line,
          `records ${this.lastCheckpoint!.size + 1}..${cp.size} do not match checkpoint ${cp.index}'s Merkle root`,
          {
            checkpoint: cp.index,
            seq: cp.size,
          },
        );
      }
      if (this.witness && cp.index === this.witness.index && text !== checkpointText(this.witness)) {
        this.fail('checkpoint-mismatch', item.file, item.line, `checkpoint ${cp.index} differs from the witness's copy`, {
          checkpoint: cp.index,
          seq: cp.size,
        });
      }
      this.cpIndex = cp.index;
      this.cpText = text;
      this.lastCheckpoint = cp;
      this.checkpoints++;
    }
    this.checkWitnessAt();
  }

  private checkWitnessAt(): void {
    const w = this.witness;
    if (!w || this.witnessChecked || w.size !== this.seq) return;
    this.witnessChecked = true;
    if (w.root !== this.frontier.root().toString('hex') || w.lastHash !== this.lastHash) {
      this.fail('root-mismatch', 'witness', 0, `records 1..${w.size} do not match the witness checkpoint ${w.index}'s Merkle root`, {
        checkpoint: w.index,
        seq: w.size,
      });
    }
  }

  private finish(layout: StoreLayout): void {
    const place = this.lastPlace.file ? this.lastPlace : { file: segmentName(layout.segments.at(-1) ?? 1), line: 0 };
    const item = this.items[this.next];
    if (item && 'checkpoint' in item.parsed) {
      const cp = item.parsed.checkpoint;
      this.fail('truncated', place.file, place.line + 1, `checkpoint ${cp.index} covers ${cp.size} records but the store ends at seq ${this.seq}`, {
        seq: this.seq + 1,
        checkpoint: cp.index,
      });
    }
    const w = this.witness;
    if (!w) return;
    if (w.size > this.seq) {
      this.fail('truncated', place.file, place.line + 1, `the witness checkpoint ${w.index} covers ${w.size} records but the store ends at seq ${this.seq}`, {
        seq: this.seq + 1,
        checkpoint: w.index,
      });
    }
    if (w.size < this.anchor!.size) {
      this.warnings.push(`the witness checkpoint ${w.index} (size ${w.size}) predates the verified range (from seq ${this.anchor!.size + 1}); not compared`);
      return;
    }
    if (w.index > this.cpIndex) {
      const lastFile = checkpointsName(layout.checkpoints.at(-1) ?? 1);
      this.fail('checkpoint-missing', lastFile, 0, `the witness holds checkpoint ${w.index} but the store's checkpoints end at ${this.cpIndex}`, {
        checkpoint: this.cpIndex + 1,
        seq: w.size,
      });
    }
  }
}

function seqOf(l: FileLine): { seq?: number } {
  const s = l.text === undefined ? undefined : seqPrefix(l.text);
  return s === undefined ? {} : { seq: s };
}

// Reading records in order, for search and export. Each line is checked for form and its own
// hash (not the chain: that is verifyStore's job); a damaged line throws AuditCorruptError
// naming it. A torn last line (a write in progress or a crash) ends the iteration.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { JsonObject } from './canonical-json.js';
import { AuditCorruptError } from './errors.js';
import { readLayout, segmentName, segmentPath } from './files.js';
import { readFirstLine, readLines } from './lines.js';
import { parseRecordLine, seqPrefix, type AuditRecord } from './record.js';
import { sealedPlaintext } from './seal.js';
import { startsSealed } from './sealed-file.js';
import { storeKeyOf } from './seal-keys.js';

export interface ReadRecordsOptions {
  /** First record to yield. Default 1 (or the first one held). */
  readonly fromSeq?: number;
  /** Longest record line accepted. Default 1 MiB + 512. */
  readonly maxLineBytes?: number;
}

export async function* readRecords(dir: string, options: ReadRecordsOptions = {}): AsyncGenerator<AuditRecord<JsonObject>> {
  const fromSeq = options.fromSeq ?? 1;
  const maxLine = options.maxLineBytes ?? 1024 * 1024 + 512;
  const { segments } = await readLayout(dir);
  let start = 0;
  for (let i = 0; i < segments.length; i++) {
    const first = await readFirstLine(segmentPath(dir, segments[i]!), maxLine);
    const s = first === undefined ? undefined : seqPrefix(first);
    if (s !== undefined && s <= fromSeq) start = i;
    if (s !== undefined && s > fromSeq) break;
  }
  for (const n of segments.slice(start)) {
    for await (const l of readLines(segmentPath(dir, n), maxLine)) {
      if (!l.complete) return;
      if (l.text !== undefined && (seqPrefix(l.text) ?? fromSeq) < fromSeq) continue;
      const p = l.text === undefined ? undefined : parseRecordLine(l.text);
      if (!p?.ok) throw new AuditCorruptError(`damaged record line: ${p?.message ?? l.damage ?? 'not UTF-8 or too long'}`, segmentName(n), l.lineNo);
      yield p.record;
    }
  }
}

/** A store file as FORMAT.md's version 1 has it: a file in clear as it is on disk, a sealed
 * segment as the plaintext of its whole frames (what a witness or a platform copies to verify). */
export async function storeFileStream(file: string): Promise<Readable> {
  if (!startsSealed(file)) return createReadStream(file);
  return Readable.from([sealedPlaintext(await readFile(file), storeKeyOf(file), file)]);
}

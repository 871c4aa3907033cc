// The operator's lists of suspicious addresses (threat intelligence, Tor exits): one address or
// CIDR per line, `#` comments. Reloaded when a file changes; a file that cannot be read or has
// bad lines keeps what was loaded before for the unreadable file, and reports the bad lines.
import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import path from 'node:path';
import { parseCidr, parseIp, cidrContains, type Cidr } from '../../network/address.js';
import type { IpListSource } from '../detectors/login-anomaly.js';

export interface ParsedList {
  readonly entries: readonly { readonly cidr: Cidr; readonly text: string }[];
  readonly errors: readonly { readonly line: number; readonly text: string }[];
}

/** Never throws: bad lines are returned with their numbers. */
export function parseIpList(text: string): ParsedList {
  const entries: { cidr: Cidr; text: string }[] = [];
  const errors: { line: number; text: string }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const spec = line.includes('/') ? line : parseIp(line)?.family === 6 ? `${line}/128` : `${line}/32`;
    const cidr = parseCidr(spec);
    if (typeof cidr === 'string') errors.push({ line: i + 1, text: raw.slice(0, 200) });
    else entries.push({ cidr, text: line });
  });
  return { entries, errors };
}

export class IpLists implements IpListSource {
  private readonly lists = new Map<string, ParsedList>();

  constructor(
    private readonly files: readonly string[],
    private readonly onProblem: (file: string, message: string) => void,
  ) {
    for (const f of files) {
      this.load(f);
      watchFile(f, { interval: 1000, persistent: false }, () => this.load(f));
    }
  }

  match(address: string): { list: string; entry: string } | null {
    const ip = parseIp(address);
    if (!ip) return null;
    for (const [file, list] of this.lists) {
      for (const e of list.entries) if (cidrContains(e.cidr, ip)) return { list: path.basename(file), entry: e.text };
    }
    return null;
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      this.onProblem(file, `cannot read it (${(err as Error).message}); keeping the list loaded before`);
      return;
    }
    const parsed = parseIpList(text);
    for (const e of parsed.errors.slice(0, 10)) this.onProblem(file, `line ${e.line} is not an address or CIDR: ${e.text}`);
    this.lists.set(file, parsed);
  }

  close(): void {
    for (const f of this.files) unwatchFile(f);
  }
}

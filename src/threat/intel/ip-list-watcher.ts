// Keeps the operator's address lists loaded and current: reads each file, compiles all of them
// into one matcher, and reloads a file when it changes (fs.watch on its directory, which also
// sees editors and feed updaters that replace the file by renaming, plus a stat poll as a
// safety net, and alone where fs.watch is unavailable; changes are debounced).
//
// Bad input never silently drops a list: a file that cannot be read, is too large, or has bad
// lines keeps the list loaded before, and the problem is reported with the line numbers. Only
// on the very first load of a file with bad lines are its valid lines used (there is nothing
// older to keep); that is reported too. An empty file is a valid, empty list.

import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseIpList, type IpListLineError, type ParsedIpList } from './ip-list.js';
import { compileIpLists, type IpListMatch, type IpMatcher } from './ip-matcher.js';

export interface IpListFile {
  readonly path: string;
  /** Shown in alerts as the list's name; default: the file name without its extension. */
  readonly name?: string;
}

export interface IpListWatcherOptions {
  readonly files: readonly (string | IpListFile)[];
  readonly onProblem?: (problem: IpListProblem) => void;
  /** After every load that changed what is matched (initial loads included). */
  readonly onLoad?: (loaded: IpListLoaded) => void;
  /** Quiet time after the last change before reloading; default 200 ms. */
  readonly debounceMs?: number;
  /** Stat poll interval; default 5000 ms. */
  readonly pollIntervalMs?: number;
  /** 'auto' (default): fs.watch plus the poll; 'poll': the poll only; 'off': load once. */
  readonly watch?: 'auto' | 'poll' | 'off';
  /** Larger files are refused (the previous list stays); default 64 MiB. */
  readonly maxFileBytes?: number;
}

export interface IpListProblem {
  readonly list: string;
  readonly file: string;
  readonly kind: 'unreadable' | 'too-large' | 'bad-lines' | 'watch-failed';
  /** Whole sentence for the operator, naming the file, the first bad lines and what is in use. */
  readonly message: string;
  readonly errors: readonly IpListLineError[];
  readonly errorCount: number;
  /** What is matched for this list now. */
  readonly inUse: 'previous' | 'valid-lines' | 'none';
}

export interface IpListLoaded {
  readonly list: string;
  readonly file: string;
  readonly entries: number;
}

export interface IpListStatus {
  readonly list: string;
  readonly file: string;
  readonly entries: number;
  /** ISO time of the load in use, or null when nothing could be loaded yet. */
  readonly loadedAt: string | null;
}

export class IpListConfigError extends Error {
  override readonly name = 'IpListConfigError';
}

const MAX_LINES_IN_MESSAGE = 5;

interface FileState {
  readonly file: string;
  readonly name: string;
  list: ParsedIpList | null;
  loadedAt: string | null;
  digest: string | null;
  timer: NodeJS.Timeout | null;
  loading: boolean;
  again: boolean;
  watcher: FSWatcher | null;
  poller: NodeJS.Timeout | null;
  /** Identity of the file as last seen (inode, size, mtime), or 'missing'. */
  seen: string | null;
}

function identityOf(st: { ino: number; size: number; mtimeMs: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

async function identity(file: string): Promise<string> {
  try {
    return identityOf(await stat(file));
  } catch {
    return 'missing';
  }
}

export class IpListWatcher {
  private matcher: IpMatcher = compileIpLists([]);
  private closed = false;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxFileBytes: number;

  private constructor(
    private readonly states: FileState[],
    private readonly options: IpListWatcherOptions,
  ) {
    this.debounceMs = options.debounceMs ?? 200;
    this.pollIntervalMs = options.pollIntervalMs ?? 5000;
    this.maxFileBytes = options.maxFileBytes ?? 64 * 1024 * 1024;
  }

  /**
   * Starts watching and loads every file once; file problems go to onProblem, never thrown.
   * Throws IpListConfigError for two lists with one name or out-of-range intervals.
   */
  static async open(options: IpListWatcherOptions): Promise<IpListWatcher> {
    for (const [k, min] of [['debounceMs', 0], ['pollIntervalMs', 10], ['maxFileBytes', 1]] as const) {
      const v = options[k];
      if (v !== undefined && !(Number.isFinite(v) && v >= min)) throw new IpListConfigError(`${k} must be a number ≥ ${min}, not ${v}`);
    }
    const seen = new Set<string>();
    const states = options.files.map((f): FileState => {
      const spec = typeof f === 'string' ? { path: f } : f;
      const file = path.resolve(spec.path);
      const name = spec.name ?? path.basename(file, path.extname(file));
      if (name === '') throw new IpListConfigError(`the IP list ${file} needs a name`);
      if (seen.has(name)) throw new IpListConfigError(`two IP lists are named "${name}": give each file its own name`);
      seen.add(name);
      return { file, name, list: null, loadedAt: null, digest: null, timer: null, loading: false, again: false, watcher: null, poller: null, seen: null };
    });
    const w = new IpListWatcher(states, options);
    // Watch first, so that a change made while the first load runs is not missed.
    if ((options.watch ?? 'auto') !== 'off') for (const s of states) w.startWatching(s);
    for (const s of states) await w.reload(s);
    return w;
  }

  match(address: string): IpListMatch | null {
    return this.matcher.match(address);
  }

  status(): IpListStatus[] {
    return this.states.map((s) => ({ list: s.name, file: s.file, entries: s.list?.entries.length ?? 0, loadedAt: s.loadedAt }));
  }

  close(): void {
    this.closed = true;
    for (const s of this.states) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      s.watcher?.close();
      s.watcher = null;
      if (s.poller) clearInterval(s.poller);
      s.poller = null;
    }
  }

  private startWatching(s: FileState): void {
    if (this.options.watch !== 'poll') {
      try {
        const base = path.basename(s.file);
        s.watcher = watch(path.dirname(s.file), { persistent: false }, (_event, filename) => {
          if (filename === null || filename === base) this.schedule(s);
        });
        s.watcher.on('error', (err) => {
          s.watcher?.close();
          s.watcher = null;
          this.problem(s, 'watch-failed', `watching ${s.file} failed (${err.message}); checking it every ${this.pollIntervalMs} ms instead`, [], 0);
        });
      } catch (err) {
        s.watcher = null;
        this.problem(s, 'watch-failed', `cannot watch ${s.file} (${(err as Error).message}); checking it every ${this.pollIntervalMs} ms instead`, [], 0);
      }
    }
    s.poller = setInterval(() => {
      void identity(s.file).then((id) => {
        if (s.seen !== null && id !== s.seen && !s.loading && s.timer === null) this.schedule(s);
      });
    }, this.pollIntervalMs);
    s.poller.unref();
  }

  private schedule(s: FileState): void {
    if (this.closed) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = null;
      void this.reload(s);
    }, this.debounceMs);
    s.timer.unref();
  }

  private async reload(s: FileState): Promise<void> {
    if (s.loading) {
      s.again = true;
      return;
    }
    s.loading = true;
    try {
      await this.load(s);
    } finally {
      s.loading = false;
      if (s.again && !this.closed) {
        s.again = false;
        this.schedule(s);
      }
    }
  }

  private async load(s: FileState): Promise<void> {
    let text: string;
    try {
      s.seen = 'missing';
      const st = await stat(s.file);
      s.seen = identityOf(st);
      if (!st.isFile()) return this.problem(s, 'unreadable', `${s.file} is not a regular file`, [], 0);
      if (st.size > this.maxFileBytes) {
        return this.problem(s, 'too-large', `${s.file} is ${st.size} bytes, more than the ${this.maxFileBytes} allowed`, [], 0);
      }
      text = await readFile(s.file, 'utf8');
    } catch (err) {
      return this.problem(s, 'unreadable', `cannot read ${s.file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, [], 0);
    }
    if (this.closed) return;
    const digest = createHash('sha256').update(text).digest('hex');
    if (digest === s.digest) return;
    const parsed = parseIpList(text, s.name);
    if (parsed.errorCount > 0) {
      const lines = parsed.errors.slice(0, MAX_LINES_IN_MESSAGE).map((e) => `line ${e.line}: ${e.reason}`).join('; ');
      const more = parsed.errorCount > MAX_LINES_IN_MESSAGE ? ` and ${parsed.errorCount - MAX_LINES_IN_MESSAGE} more` : '';
      const summary = `${s.file} has ${parsed.errorCount} bad line${parsed.errorCount === 1 ? '' : 's'} (${lines}${more})`;
      if (s.list !== null) {
        s.digest = digest; // the same bad content is reported once, not on every poll
        return this.problem(s, 'bad-lines', summary, parsed.errors, parsed.errorCount);
      }
      this.apply(s, parsed, digest);
      return this.problem(s, 'bad-lines', summary, parsed.errors, parsed.errorCount, true);
    }
    this.apply(s, parsed, digest);
  }

  private apply(s: FileState, parsed: ParsedIpList, digest: string): void {
    s.list = parsed;
    s.digest = digest;
    s.loadedAt = new Date().toISOString();
    this.matcher = compileIpLists(this.states.flatMap((x) => (x.list ? [x.list] : [])));
    this.options.onLoad?.({ list: s.name, file: s.file, entries: parsed.entries.length });
  }

  private problem(
    s: FileState,
    kind: IpListProblem['kind'],
    what: string,
    errors: readonly IpListLineError[],
    errorCount: number,
    usingValidLines = false,
  ): void {
    if (this.closed) return;
    const n = s.list?.entries.length ?? 0;
    let inUse: IpListProblem['inUse'];
    let tail: string;
    if (s.list === null) {
      inUse = 'none';
      tail = 'nothing is loaded for this list yet';
    } else if (usingValidLines) {
      inUse = 'valid-lines';
      tail = `using its ${n} valid entr${n === 1 ? 'y' : 'ies'}`;
    } else {
      inUse = 'previous';
      tail = `keeping the list loaded at ${s.loadedAt} (${n} entr${n === 1 ? 'y' : 'ies'})`;
    }
    const message = kind === 'watch-failed' ? `IP list "${s.name}": ${what}` : `IP list "${s.name}": ${what}; ${tail}`;
    this.options.onProblem?.({ list: s.name, file: s.file, kind, message, errors, errorCount, inUse });
  }
}

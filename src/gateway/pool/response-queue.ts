// What the server still owes the client, in order. The transaction-mode relay rewrites the
// client's stream (statements renamed, Parse inserted or answered by the gateway), so the
// server's answers no longer line up one to one with what the client sent. Each message sent on
// (or answered by the gateway) pushes one entry saying what completes it and whether its answer
// goes to the client (forward), is dropped (swallow: a Parse or Close the gateway added), or is
// made by the gateway (synthetic, emitted when every earlier answer has been delivered).
// After an ErrorResponse the server skips every message up to the next Sync, so the entries up
// to it are dropped: their synthetic answers are never sent, and what they did is undone.
// Pure: no sockets; the relay is the sink.

/** What completes an entry. */
export const Reply = {
  /** ParseComplete, BindComplete or CloseComplete (or ErrorResponse). */
  One: 0,
  /** Describe: RowDescription or NoData, after an optional ParameterDescription. */
  Describe: 1,
  /** Execute: CommandComplete, EmptyQueryResponse or PortalSuspended, after rows or a COPY. */
  Execute: 2,
  /** Sync: ReadyForQuery. */
  Sync: 3,
  /** Query or FunctionCall: everything up to ReadyForQuery; an error inside does not skip. */
  Query: 4,
  /** The client's CopyDone or CopyFail: nothing comes back; marks where its copy-in ended. */
  CopyEnd: 5,
} as const;

export const Mode = { Forward: 0, Swallow: 1, Synthetic: 2 } as const;

/** What the relay must undo when the message of an entry did not take effect. */
export const Tag = { None: 0, ClientParse: 1, InsertedParse: 2, ClientClose: 3, Evict: 4 } as const;

export interface Entry {
  reply: number;
  mode: number;
  /** The gateway's own answer (Synthetic). */
  bytes: Buffer | null;
  tag: number;
  /** The client's statement name (ClientParse, ClientClose). */
  name: string;
  /** The server-side statement name (ClientParse when sent, InsertedParse, Evict). */
  server: string;
  /** The relay's statement record (ClientParse, ClientClose). */
  ref: unknown;
}

export interface QueueSink {
  /** A synthetic answer's turn came: write it to the client. */
  emit(bytes: Buffer): void;
  /** The message of this entry failed or was skipped by the server. */
  undone(e: Entry): void;
}

const ERROR = 0x45; // E
const NOTICE = 0x4e; // N
const PARAMETER_STATUS = 0x53; // S
const NOTIFICATION = 0x41; // A
const READY = 0x5a; // Z
const PARAMETER_DESCRIPTION = 0x74; // t
const COMMAND_COMPLETE = 0x43; // C
const EMPTY_QUERY = 0x49; // I
const PORTAL_SUSPENDED = 0x73; // s
const COPY_IN = 0x47; // G

/** Messages the server may send at any time; they complete nothing. */
export function isAsync(type: number): boolean {
  return type === NOTICE || type === PARAMETER_STATUS || type === NOTIFICATION;
}

export function entry(reply: number, mode: number, bytes: Buffer | null = null, tag: number = Tag.None, name = '', server = '', ref: unknown = null): Entry {
  return { reply, mode, bytes, tag, name, server, ref };
}

export class ResponseQueue {
  private items: Entry[] = [];
  private head = 0;
  /** The server is skipping messages until a Sync that has not been pushed yet. */
  private failed = false;
  /** The server is in copy-in mode and the client's CopyDone/CopyFail has not been pushed yet. */
  private copyIn = false;

  constructor(private readonly sink: QueueSink) {}

  get empty(): boolean {
    return this.head === this.items.length;
  }

  get size(): number {
    return this.items.length - this.head;
  }

  /** Forgets everything (the server connection is gone). */
  reset(): void {
    this.items = [];
    this.head = 0;
    this.failed = false;
    this.copyIn = false;
  }

  /** A message was sent to the server (or answered by the gateway). */
  push(e: Entry): void {
    if (e.reply === Reply.CopyEnd) {
      if (this.copyIn) {
        this.copyIn = false;
        return;
      }
      if (this.failed) return;
    } else if (e.reply === Reply.Sync) {
      // The server ignores Sync and Flush in copy-in mode.
      if (this.copyIn) return;
      this.failed = false;
    } else if (this.failed) {
      this.sink.undone(e);
      return;
    }
    this.items.push(e);
    if (this.head === this.items.length - 1) this.flush();
  }

  /** Whether a server message of this type (seen at its header) goes to the client. */
  route(type: number): boolean {
    if (this.head === this.items.length) return true;
    const e = this.items[this.head]!;
    return e.mode !== Mode.Swallow || type === ERROR || isAsync(type);
  }

  /** A server message of this type ended. */
  complete(type: number): void {
    if (this.head === this.items.length || isAsync(type)) return;
    const e = this.items[this.head]!;
    switch (e.reply) {
      case Reply.One:
        if (type === ERROR) this.fail();
        else this.pop();
        break;
      case Reply.Describe:
        if (type === ERROR) this.fail();
        else if (type !== PARAMETER_DESCRIPTION) this.pop();
        break;
      case Reply.Execute:
        if (type === ERROR) this.fail();
        else if (type === COMMAND_COMPLETE || type === EMPTY_QUERY || type === PORTAL_SUSPENDED) this.pop();
        else if (type === COPY_IN) this.copyInStarted();
        return;
      case Reply.Sync:
        if (type === READY) this.pop();
        return;
      case Reply.Query:
        if (type === READY) this.pop();
        else if (type === COPY_IN) this.copyInStarted();
        return;
    }
  }

  private pop(): void {
    this.items[this.head++] = undefined as unknown as Entry;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.flush();
  }

  /** The head failed: it and everything up to the next Sync did not take effect. */
  private fail(): void {
    const failedEntry = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Entry;
    this.sink.undone(failedEntry);
    this.copyIn = false;
    while (this.head < this.items.length && this.items[this.head]!.reply !== Reply.Sync) {
      const e = this.items[this.head]!;
      this.items[this.head++] = undefined as unknown as Entry;
      this.sink.undone(e);
    }
    if (this.head === this.items.length) {
      this.failed = true;
      this.items.length = 0;
      this.head = 0;
    }
  }

  /** Syncs the client sent before its CopyDone are ignored by the server in copy-in mode. */
  private copyInStarted(): void {
    let i = this.head + 1;
    while (i < this.items.length) {
      const r = this.items[i]!.reply;
      if (r === Reply.Sync) this.items.splice(i, 1);
      else if (r === Reply.CopyEnd) {
        this.items.splice(i, 1);
        return;
      } else i++;
    }
    this.copyIn = true;
  }

  /** Synthetic answers at the head are due now. */
  private flush(): void {
    while (this.head < this.items.length) {
      const e = this.items[this.head]!;
      if (e.mode !== Mode.Synthetic && e.reply !== Reply.CopyEnd) return;
      this.items[this.head++] = undefined as unknown as Entry;
      if (e.bytes !== null) this.sink.emit(e.bytes);
    }
    this.items.length = 0;
    this.head = 0;
  }
}

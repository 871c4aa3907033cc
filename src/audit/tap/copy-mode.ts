// COPY FROM STDIN (and copy-both) as the server runs it: once it answers a statement with
// CopyInResponse, it reads the client's messages in copy mode, where CopyData is data,
// CopyDone/CopyFail end the copy, and Sync and Flush are ignored. What the client sent before the
// answer reached the tap is judged from the joiner's queue when the answer comes.

import type { FrontendEvent } from '../../pgwire/observer/index.js';
import type { Pending, Statement } from './pending.js';
import type { PendingQueue } from './pending-queue.js';

export class CopyMode {
  /** The statement whose COPY the server runs (from its CopyInResponse to its answer). */
  target: Statement | null = null;
  /** The server reads the client's messages in copy mode, and everything before was walked. */
  copying = false;
  /** Syncs the copy swallowed after its first CopyData (ambiguous if the copy then fails). */
  syncs = 0;
  private sawData = false;

  /** A client message while the server reads in copy mode; a reason to stop the audit, or null. */
  message(e: FrontendEvent): string | null {
    const target = this.target!;
    switch (e.type) {
      case 'copyData':
        target.copyBytes += e.bytes;
        this.sawData = true;
        return null;
      case 'sync':
        if (this.sawData) this.syncs++; // ignored by the server
        return null;
      case 'copyDone':
      case 'copyFail':
        this.copying = false; // the server is back to normal reading after this message
        return null;
      case 'terminate':
        return null;
      default:
        return `a ${e.type === 'other' ? `message of type 0x${e.code.toString(16)}` : `${e.type} message`} during COPY FROM STDIN`;
    }
  }

  /** CopyInResponse (or CopyBothResponse) for the head statement: what the client sent after it was read in copy mode. */
  started(target: Statement, queue: PendingQueue<Pending>): string | null {
    this.target = target;
    this.syncs = 0;
    this.sawData = false;
    let ended = false;
    let intruder: Pending['kind'] | null = null;
    queue.filterAfterHead((item) => {
      switch (item.kind) {
        case 'sync':
          if (item.bytes > 0) this.sawData = true;
          if (this.sawData) this.syncs += item.count;
          target.copyBytes += item.bytes;
          return false;
        case 'copyEnd':
          ended = true;
          return 'stop';
        default:
          intruder = item.kind;
          return 'stop';
      }
    });
    if (intruder !== null) return `a ${intruder} message during COPY FROM STDIN`;
    if (ended) dropFirstCopyEnd(queue);
    else this.copying = true;
    return null;
  }

  ended(): void {
    this.target = null;
    this.copying = false;
    this.syncs = 0;
    this.sawData = false;
  }
}

function dropFirstCopyEnd(queue: PendingQueue<Pending>): void {
  let dropped = false;
  queue.filterAfterHead((item) => {
    if (dropped) return 'stop';
    if (item.kind === 'copyEnd') {
      dropped = true;
      return false;
    }
    return true;
  });
}

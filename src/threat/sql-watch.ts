// The SQL-injection detector's view of a relayed session: every statement text the client
// sends (simple Query or Parse) and every syntax error (42601) the server answers, decoded
// with the audit tap's message decoders. Independent of the statement audit, so a server with
// threat protection on and statement audit off is still watched, and nothing here is written
// to the audit log.
import { BackendTap, FrontendTap } from '../audit/tap/index.js';
import type { RelayTap } from '../gateway/relay.js';

export interface SqlWatchSink {
  statement(text: string): void;
  /** The server answered a statement with this SQLSTATE (errors only). */
  error(sqlstate: string, lastText: string): void;
}

const MAX_TEXT = 64 * 1024;

export class SqlWatch implements RelayTap {
  private readonly frontend: FrontendTap;
  private readonly backend: BackendTap;
  private stopped = false;
  private lastText = '';

  constructor(sink: SqlWatchSink) {
    const stop = () => {
      this.stopped = true;
    };
    this.frontend = new FrontendTap({
      onEvent: (e) => {
        if (e.type === 'query' || e.type === 'parse') {
          this.lastText = e.text;
          sink.statement(e.text);
        }
      },
      onError: stop,
      maxStatementBytes: MAX_TEXT,
    });
    this.backend = new BackendTap({
      onEvent: (e) => {
        if (e.type === 'error') sink.error(e.sqlstate, this.lastText);
      },
      onError: stop,
    });
  }

  fromClient(chunk: Buffer): void {
    if (!this.stopped) this.frontend.push(chunk);
  }

  fromServer(chunk: Buffer): void {
    if (!this.stopped) this.backend.push(chunk);
  }

  end(): void {
    this.stopped = true;
  }
}

/** Both taps on one session, in order. */
export function bothTaps(a: RelayTap | null, b: RelayTap | null): RelayTap | null {
  if (!a) return b;
  if (!b) return a;
  return {
    fromClient: (c) => {
      a.fromClient(c);
      b.fromClient(c);
    },
    fromServer: (c) => {
      a.fromServer(c);
      b.fromServer(c);
    },
    end: () => {
      a.end();
      b.end();
    },
  };
}

// The SQL-injection detector's view of a relayed session: every statement text the client
// sends (simple Query or Parse) and every syntax error (42601) the server answers, as a consumer
// of the session observer (the statement audit subscribes to the same pass). Independent of the
// statement audit, so a server with threat protection on and statement audit off is still
// watched, and nothing here is written to the audit log.
import type { BackendEvent, DecodeNeeds, FrontendEvent, SessionConsumer } from '../pgwire/observer/index.js';

export interface SqlWatchSink {
  statement(text: string): void;
  /** The server answered a statement with this SQLSTATE (errors only). */
  error(sqlstate: string, lastText: string): void;
  /** The watch can no longer follow the session (framing error, or the sink threw). */
  stopped?(reason: string): void;
  /** After statement(text): every statement of its shape would be judged alike (SqlInspector.settled). */
  settled?(text: string): boolean;
}

const MAX_TEXT = 64 * 1024;
const DECODE: DecodeNeeds = Object.freeze({ maxStatementBytes: MAX_TEXT });

/** A framing error or a throwing sink detaches the watch from the session's observer, which then
 * stops calling it; the sink is told (`stopped`): the session fails closed (session.ts). */
export class SqlWatch implements SessionConsumer {
  readonly decode = DECODE;
  private lastText = '';
  /** The last event was a whole Query or Parse (see `quietable`). */
  private judged = false;

  constructor(private readonly sink: SqlWatchSink) {}

  frontend(e: FrontendEvent): void {
    this.judged = false;
    if (e.type !== 'query' && e.type !== 'parse') return;
    this.lastText = e.text;
    this.sink.statement(e.text);
    this.judged = !e.truncated;
  }

  /** The last Query was judged, and any Query of its shape would be judged alike: the relay may
   * pass such Queries uninspected. A failed one is observed all the same (the relay hands it
   * over with its error), so syntax-error bursts are still counted. */
  quietable(): boolean {
    // Asked only for the statements the relay could skip: not worked out for every statement.
    return this.judged && this.sink.settled?.(this.lastText) === true;
  }

  backend(e: BackendEvent): void {
    if (e.type === 'error') this.sink.error(e.sqlstate, this.lastText);
  }

  failed(reason: string): void {
    this.sink.stopped?.(reason);
  }
}

// What the two decoders of the session observer report, in stream order.

/** A bound or function-call argument: text, `\x…` hex for binary format, null for SQL NULL. */
export type ParamValue = string | null;

/** The whole text of a Query or Parse that the tap cut (longer than it keeps): its length and hash. */
export interface FullText {
  /** Bytes of the whole text as the client sent it (up to its NUL). */
  readonly length: number;
  /** SHA-256 of those bytes, hex. */
  readonly sha256: string;
}

export type FrontendEvent =
  /** Simple Query; `truncated` when the text was longer than the tap keeps (then `full` says how long it was). */
  | { readonly type: 'query'; readonly text: string; readonly truncated: boolean; readonly full?: FullText }
  | { readonly type: 'parse'; readonly name: string; readonly text: string; readonly truncated: boolean; readonly full?: FullText }
  /** `params` only when the tap logs parameters. */
  | { readonly type: 'bind'; readonly portal: string; readonly statement: string; readonly params?: readonly ParamValue[] }
  | { readonly type: 'execute'; readonly portal: string; readonly maxRows: number }
  | { readonly type: 'functionCall'; readonly oid: number; readonly args?: readonly ParamValue[] }
  | { readonly type: 'close'; readonly target: 'statement' | 'portal'; readonly name: string }
  | { readonly type: 'sync' }
  /** CopyData bytes of a run of CopyData messages (COPY FROM STDIN). */
  | { readonly type: 'copyData'; readonly bytes: number }
  | { readonly type: 'copyDone' }
  | { readonly type: 'copyFail' }
  /** Any other message but Flush (Describe, unknown types): it matters only during COPY FROM STDIN. */
  | { readonly type: 'other'; readonly code: number }
  | { readonly type: 'terminate' }
  /** The native relay relayed, unobserved, messages that replaced the unnamed statement and
   * portal (quiet statements): what was known of them is stale. */
  | { readonly type: 'unnamedReplaced' };

export type BackendEvent =
  /** `rows` from the tag (SELECT n, INSERT 0 n, COPY n, ...); counts since the previous completion. */
  | {
      readonly type: 'commandComplete';
      readonly tag: string;
      readonly rows?: number;
      readonly dataRows: number;
      readonly copyBytes: number;
    }
  | { readonly type: 'error'; readonly severity: string; readonly sqlstate: string; readonly message: string }
  | { readonly type: 'ready'; readonly status: string }
  | { readonly type: 'copyIn' }
  | { readonly type: 'copyOut' }
  | { readonly type: 'emptyQuery' }
  | { readonly type: 'parseComplete' }
  | { readonly type: 'closeComplete' }
  | { readonly type: 'portalSuspended'; readonly dataRows: number }
  | { readonly type: 'functionResult' };

export interface DecoderOptions<E> {
  readonly onEvent: (event: E) => void;
  /** The tap stopped (protocol error); no more events come. */
  readonly onError?: (reason: string) => void;
  /** The stream comes from the native relay: a message of type 0x00 is its skip-run record (a
   * run of DataRow or CopyData messages it did not copy), counted as those messages would be.
   * Never set for bytes read from a socket: a client could forge one. */
  readonly skipRecords?: boolean;
}

// The contract between the gateway and the native relay addon (`native/relay/`, Rust through
// napi-rs, built at install by scripts/build-native.sh). The addon owns the client's TCP socket
// from the moment encryption is agreed: it terminates TLS (rustls) and hands JavaScript the
// plaintext until authentication ends (steps 3–8 stay in JavaScript, unchanged); then it relays
// client ⇄ server on its own threads, framing each message once (headers only) and handing the
// session's observer what the statement audit and the SQL watch need, in batches.
//
// Ids are per process; every event of one connection arrives in order, through one callback.
import { loadNativeAddon } from '../../host/native-addon.js';

/** How the adopted socket is encrypted. */
export type AdoptTls =
  /** The gateway answered an SSLRequest with 'S' (flushed): a TLS ClientHello comes next. */
  | 'starttls'
  /** Direct TLS (PostgreSQL 17): `prefix` holds the first bytes of the ClientHello; ALPN
   * "postgresql" is required (else the connection is closed, no 'secure' event). */
  | 'direct'
  /** No encryption: plaintext from the start. */
  | 'none';

export interface RelayOptions {
  /** Client bytes JavaScript read past the handshake (sent to the server first). */
  readonly clientRest: Buffer;
  /** Server bytes JavaScript read and did not pass on (sent to the client first). */
  readonly serverRest: Buffer;
  /** Send 'observe' events (statement audit or SQL watch on). */
  readonly observe: boolean;
  /** Strict audit durability: a server chunk that carries observed messages is held until
   * `release(id)`. Only with `observe`. */
  readonly hold: boolean;
  /** Written to the client when the server closes while the client still expects answers (no
   * Terminate, no half-close from the client), the server stream is at a message boundary and
   * its last message was not an ErrorResponse. Empty: nothing is written. */
  readonly serverGone: Buffer;
  /** Written to the client when the client's own stream cannot be framed (its bytes never reach
   * the server), when the server stream is at a message boundary; then both sides close. */
  readonly clientFramingError: Buffer;
  /** Session pooling: the server connection is not closed at the client's end, the client's
   * Terminate is not passed on, and the 'ended' event says whether it is reusable. The addon
   * closes only its duplicate of the descriptor; JavaScript keeps its own socket. */
  readonly pooled: boolean;
  /**
   * A quiet set (`quietSet`), or 0. With `observe`, a statement sent when everything before it
   * was answered is keyed: a simple Query, and (without `hold`) an extended-protocol group of
   * the unnamed statement and portal (Parse, Bind, Describe, Execute without a row limit, Sync;
   * or Bind to a named statement whose Parse was keyed). Every keyed Query and Parse comes in the
   * 'observe' client buffer after a key record `0x00, Int32 24, Int32 'k' (0x6b), 16-byte shape
   * key`; a statement whose key is in the set is relayed with its answer (up to and including
   * its ReadyForQuery) without appearing in 'observe' events, unless the answer fails: then the
   * statement and the answer from its ErrorResponse on are observed. Client messages sent while
   * a quiet answer is pending are observed after it. After a quiet statement the next observed
   * client bytes start with an unnamed record `0x00, Int32 8, Int32 'u' (0x75)`: the unnamed
   * statement and portal were replaced unobserved. The key ignores literal values that cannot
   * change how the statement parses (native/relay/src/quiet.rs).
   */
  readonly quietSet: number;
  /** The session's record parts (src/audit/statement-json.ts sessionRecordParts): a summarized
   * statement whose shape was added with its parts comes as its record, in a 'records' run,
   * instead of a 'summary' (native/relay/src/record.rs). Absent: summaries. */
  readonly record?: Buffer;
  /** Which audit log takes the session's records (NativeRelayHost.recordSink): runs of records
   * name it. */
  readonly recordSink?: number;
}

export type AddonEvent =
  /** The ClientHello was read: answer with `tlsAnswer` (the certificate for `sni`). */
  | { readonly id: number; readonly type: 'hello'; readonly sni: string | null; readonly alpn: readonly string[] }
  /** The TLS handshake completed. `version` as Node names it ('TLSv1.3', 'TLSv1.2'); `cipher`
   * the IANA name ('TLS_AES_256_GCM_SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'). */
  | {
      readonly id: number;
      readonly type: 'secure';
      readonly version: string;
      readonly cipher: string;
      readonly sni: string | null;
      readonly alpn: string | null;
    }
  /** Every byte given to `write` reached the socket, after a `write` returned more than
   * DRAIN_ABOVE (the caller waits for it before writing more: backpressure). */
  | { readonly id: number; readonly type: 'drain' }
  /** Plaintext from the client, before `relay` (at most 64 KiB per event). */
  | { readonly id: number; readonly type: 'data'; readonly data: Buffer }
  /** The client half-closed (before `relay`). */
  | { readonly id: number; readonly type: 'end' }
  /** After `freeze`: no 'data' follows; every byte the addon read from the client was delivered. */
  | { readonly id: number; readonly type: 'frozen' }
  /**
   * During `relay` with `observe`: the messages of each direction since the last event, whole,
   * in order. DataRow ('D') and CopyData ('d') are not copied: each run of them is one record
   * `0x00, Int32 16, Int32 code, Int32 count, Int32 bytes` (code: 'D' or 'd' as a number; count
   * of messages; bytes including their headers; a run is split before bytes exceeds 2^31-1).
   * `hold`: the addon waits for `release(id)` before the server chunk reaches the client.
   * `clientAt`, `serverAt`: when the addon read that direction's bytes (performance.now() ms): for
   * client bytes the first read of them, for server bytes the last; 0 without bytes.
   */
  | {
      readonly id: number;
      readonly type: 'observe';
      readonly client: Buffer | null;
      readonly clientAt: number;
      readonly server: Buffer | null;
      readonly serverAt: number;
      readonly hold: boolean;
    }
  /**
   * During `relay`, a statement of a summarized shape (`quiet` with a summary) whose answer
   * succeeded, in place of its 'observe' bytes: `shape` the summary's number, `text` the Query's
   * text (its bytes, without the NUL), `at` when the addon read it, `end` when it read the answer's
   * CommandComplete, `tag` that message's tag (null: the answer had none). What the client sent
   * meanwhile comes after it, observed. Times as in 'observe'.
   */
  | {
      readonly id: number;
      readonly type: 'summary';
      readonly shape: number;
      readonly text: Buffer;
      readonly at: number;
      readonly end: number;
      readonly tag: string | null;
    }
  /** During `relay` with `record`, in place of 'summary' events: summarized statements' audit
   * records, made by the addon from the session's and the shapes' parts (what statementExecuted
   * makes of them), of any connections of one audit log, in a row: `id` is the log's
   * (RelayOptions.recordSink), `count` records are in `data`, each as its length (u32,
   * little-endian) and its canonical JSON in UTF-8. */
  | { readonly id: number; readonly type: 'records'; readonly count: number; readonly data: Buffer }
  /**
   * The connection is over and its id forgotten (before `relay`: the client went away or
   * `destroy`/`end` finished; during `relay`: either side closed, or `terminate`).
   * `reusable` (pooled only): the server was at a message boundary after ReadyForQuery 'I' with
   * nothing the client sent after it, and the server did not close.
   * `error`: why, when it was not an orderly close (TLS alert, reset, framing error).
   */
  | {
      readonly id: number;
      readonly type: 'closed';
      readonly bytesFromClient: number;
      readonly bytesToClient: number;
      readonly reusable: boolean;
      readonly error: string | null;
    };

export interface RelayAddon {
  /** Starts the relay threads (once per process; `threads` 0: one per core). Events come in
   * batches: `onEvents` is called once per batch, not per event, and takes it with `takeEvents`
   * (`eventTaker`), encoded (`decodeEvents` reads them). Once the events not taken yet reach
   * `backlogBytes` (default 4 MiB), the relay stops reading its sockets until they are taken:
   * JavaScript falling behind pushes back on the peers instead of queueing without bound. */
  start(threads: number, onEvents: () => void, backlogBytes?: number): void;
  /** Takes the batch: copied into `into` when it fits (its length is returned), else in a new
   * buffer. */
  takeEvents(into: Buffer): number | Buffer;
  /** What that backpressure did so far: the times a relay direction waited, and the most bytes
   * of events one call handed over. */
  backlogStats(): { waits: number; largest: number };
  /** Loads a certificate chain and its key (PEM) under `certId`, for `tlsAnswer`. Throws on bad PEM. */
  setCertificate(certId: number, chainPem: Buffer, keyPem: Buffer): void;
  dropCertificate(certId: number): void;
  /** Takes over an accepted TCP socket: duplicates `fd` at once (the caller closes its own
   * after this returns, and must not read from it after calling), sets TCP_NODELAY, reads
   * `prefix` before the socket. Returns the connection's id. */
  adopt(fd: number, prefix: Buffer, tls: AdoptTls): number;
  /** Completes the TLS handshake with a loaded certificate, or (null) closes the connection. */
  tlsAnswer(id: number, certId: number | null): void;
  /** Plaintext to the client (before `relay`), in order. Returns the bytes given to `write`
   * that are not on the socket yet (0 for an unknown id); above DRAIN_ABOVE a 'drain' follows. */
  write(id: number, data: Buffer): number;
  /** Flushes what was written, then closes (TLS close_notify, FIN). */
  end(id: number): void;
  /** Closes now. */
  destroy(id: number): void;
  /** The addon's monotonic clock (ms), which the times of 'observe' events are on. */
  monotonicMs(): number;
  /** Stops (true) or resumes (false) reading from the client before `relay` (backpressure). */
  pause(id: number, paused: boolean): void;
  /** Stops reading from the client; a 'frozen' event follows the last 'data'. */
  freeze(id: number): void;
  /** After 'frozen': relays client ⇄ server (a Unix or TCP socket; duplicated at once, the
   * caller closes its own unless `pooled`, and must not read from it meanwhile). */
  relay(id: number, serverFd: number, options: RelayOptions): void;
  /** Strict durability: the held server chunk may go to the client. */
  release(id: number): void;
  /** A new quiet set, shared by the sessions of one audit configuration; returns its id. */
  quietSet(): number;
  /** Forgets a quiet set (sessions already relayed with it keep it). */
  dropQuietSet(set: number): void;
  /** Adds a shape key (16 bytes, from a key record) to a quiet set: statements of that shape, and
   * their answers, are not observed from now on. With `summary` (> 0), a simple Query of that
   * shape whose answer succeeds comes as a 'summary' event of that number (not with `hold`; an
   * extended-protocol group of that shape is observed). A key keeps what it was added with first.
   * Bounded (4096 keys per set; more are ignored). `parts`: the shape's record parts
   * (statement-json.ts shapeRecordParts), for sessions relayed with `record`. */
  quiet(set: number, key: Buffer, summary?: number, parts?: Buffer): void;
  /** Ends a relayed session from the gateway's side: `fatal` is written when the server stream
   * is at a message boundary (else a plain close); the server side is closed (or, pooled,
   * reported not reusable). */
  terminate(id: number, fatal: Buffer): void;
}

const NULL = 0xffffffff;

/** The addon's batches, taken into a buffer kept from call to call (a new one per batch costs
 * more than the copy, and its collection more still). What it returns is good until the next
 * call: decodeEvents copies every buffer of an event but a run of records. */
export function eventTaker(addon: RelayAddon): () => Buffer {
  let kept = Buffer.allocUnsafeSlow(256 * 1024);
  return () => {
    const got = addon.takeEvents(kept);
    if (typeof got === 'number') return kept.subarray(0, got);
    // Larger than any before: room for one this large next time, and then some (the backlog
    // bounds the batches, so this buffer too).
    kept = Buffer.allocUnsafeSlow(Math.max(got.length, 2 * kept.length));
    return got;
  };
}

/** Reads a batch of events as the addon encodes them (native/relay/src/events.rs), in order.
 * A run of records' `data` is a view of `batch`, to be read before `each` returns; every other
 * buffer in the events is a copy (the batch's buffer is used again, see eventTaker). A batch
 * that does not parse throws (a bug).
 * `clockOffset` maps the addon's clock onto performance.now() (`clockOffset(addon)`). */
export function decodeEvents(batch: Buffer, each: (event: AddonEvent) => void, clockOffset = 0): void {
  let at = 0;
  const u32 = () => {
    const v = batch.readUInt32LE(at);
    at += 4;
    return v;
  };
  /** An f64 time of the addon's clock, as performance.now(). */
  const time = () => {
    const v = batch.readDoubleLE(at) + clockOffset;
    at += 8;
    return v;
  };
  /** Steps over the next `bytes` (u32 length, then them); where they start. */
  const skip = () => {
    const n = u32();
    if (at + n > batch.length) throw new Error('native relay: truncated event batch');
    at += n;
    return at - n;
  };
  /** A copy of the next bytes. */
  const bytes = () => Buffer.from(batch.subarray(skip(), at));
  const str = () => {
    if (batch.readUInt32LE(at) !== NULL) return batch.toString('utf8', skip(), at);
    at += 4;
    return null;
  };
  while (at < batch.length) {
    const id = u32();
    const kind = batch[at++];
    switch (kind) {
      case 1: {
        const sni = str();
        const alpn: string[] = [];
        for (let n = batch[at++]!; n > 0; n--) alpn.push(str() ?? '');
        each({ id, type: 'hello', sni, alpn });
        break;
      }
      case 2: {
        const version = str() ?? '';
        const cipher = str() ?? '';
        each({ id, type: 'secure', version, cipher, sni: str(), alpn: str() });
        break;
      }
      case 3:
        each({ id, type: 'data', data: bytes() });
        break;
      case 4:
        each({ id, type: 'end' });
        break;
      case 5:
        each({ id, type: 'frozen' });
        break;
      case 6:
        each({ id, type: 'drain' });
        break;
      case 7: {
        const flags = batch[at++]!;
        const clientAt = flags & 2 ? time() : 0;
        const client = flags & 2 ? bytes() : null;
        const serverAt = flags & 4 ? time() : 0;
        const server = flags & 4 ? bytes() : null;
        each({ id, type: 'observe', client, clientAt, server, serverAt, hold: (flags & 1) !== 0 });
        break;
      }
      case 9: {
        const shape = u32();
        const read = time();
        const end = time();
        const tag = str();
        each({ id, type: 'summary', shape, at: read, end, tag, text: bytes() });
        break;
      }
      case 11: {
        const count = u32();
        const start = at;
        for (let i = 0; i < count; i++) skip();
        each({ id, type: 'records', count, data: batch.subarray(start, at) });
        break;
      }
      case 8: {
        const bytesFromClient = batch.readDoubleLE(at);
        const bytesToClient = batch.readDoubleLE(at + 8);
        const reusable = batch[at + 16] === 1;
        at += 17;
        each({ id, type: 'closed', bytesFromClient, bytesToClient, reusable, error: str() });
        break;
      }
      default:
        throw new Error(`native relay: unknown event kind ${kind}`);
    }
  }
}

/** What to add to the addon's clock to read it as performance.now() (both are monotonic: one
 * reading of each, back to back, fixes the difference to within a microsecond or so). */
export function clockOffset(addon: RelayAddon): number {
  const before = performance.now();
  const native = addon.monotonicMs();
  const after = performance.now();
  return (before + after) / 2 - native;
}

/** Unwritten bytes above which a writer waits for 'drain' (the addon's conn.rs DRAIN_ABOVE). */
export const DRAIN_ABOVE = 64 * 1024;

/** The addon built by scripts/build-native.sh, or `PGWARDEN_RELAY_ADDON`; null when there is none
 * or it does not load (the JavaScript relay is used, and the reason is returned). */
export function loadRelayAddon(): { addon: RelayAddon } | { addon: null; reason: string } {
  return loadNativeAddon<RelayAddon>();
}

// One pooled server connection and the two things done to it between clients: watching it while
// idle (a server that closes or speaks unasked makes it unusable) and resetting it with
// `DISCARD ALL` (PgBouncer's server_reset_query) before the next client gets it.
import type net from 'node:net';
import type { BackendSession } from '../backend.js';
import type { ServerConnection } from './types.js';
import { APPLICATION_NAME, setApplicationName } from './client-messages.js';

const PARAMETER_STATUS = 0x53; // 'S'
const ERROR_RESPONSE = 0x45; // 'E'
const READY_FOR_QUERY = 0x5a; // 'Z'
/** A reset (or another query of the gateway's own) that takes longer than this means the server
 * is stuck: the connection is closed. */
const RESET_TIMEOUT_MS = 10_000;
const DISCARD_ALL = queryMessage('DISCARD ALL');

let nextId = 1;

export class PooledConnection implements ServerConnection {
  readonly id = nextId++;
  readonly socket: net.Socket;
  readonly processId: number;
  readonly secretKey: Buffer;
  readonly parameters = new Map<string, string>();
  readonly prepared = new Set<string>();
  rest: Buffer;
  /** The generation of its role's keys it was opened under: an older one is closed on return
   * (the role's password changed while it was lent). */
  readonly generation: number;
  private idleWatch: (() => void) | null = null;

  constructor(backend: BackendSession, generation: number) {
    this.socket = backend.socket;
    this.processId = backend.processId;
    this.secretKey = backend.secretKey;
    this.rest = backend.rest;
    this.generation = generation;
    // Always one listener, so an error while nobody else listens never crashes the process.
    this.socket.on('error', () => this.socket.destroy());
    for (const f of backend.greeting) readParameterStatus(f, 0, f.length, this.parameters);
  }

  get usable(): boolean {
    return !this.socket.destroyed && this.rest.length === 0;
  }

  /** While idle: a close, or any byte from the server (a FATAL before it goes away), ends it. */
  watchIdle(gone: () => void): void {
    const onData = () => this.socket.destroy();
    const onClose = () => gone();
    this.socket.on('data', onData);
    this.socket.once('close', onClose);
    this.socket.resume();
    this.idleWatch = () => {
      this.socket.off('data', onData);
      this.socket.off('close', onClose);
    };
  }

  /** Lent: the watch ends and the socket is paused until the relay reads it. */
  unwatch(): void {
    this.idleWatch?.();
    this.idleWatch = null;
    this.socket.pause();
  }

  close(): void {
    this.unwatch();
    this.socket.destroy();
  }

  /** `DISCARD ALL`, its replies swallowed; the ParameterStatus messages it causes are recorded.
   * Resolves true once the server is ReadyForQuery 'I' with nothing more to read. */
  reset(): Promise<boolean> {
    if (!this.usable) return Promise.resolve(false);
    this.prepared.clear();
    // DISCARD ALL also resets application_name; the leaving client's is set again in the same
    // round trip, so the next client of the same application (the usual case) is lent the
    // connection without a SET of its own on its login path.
    const app = this.parameters.get(APPLICATION_NAME);
    return runQuery(this, app ? [DISCARD_ALL, setApplicationName(app)] : [DISCARD_ALL]);
  }
}

/** Runs simple Queries on a connection nobody reads now (idle, or lent and not yet relayed), in
 * one round trip, their replies swallowed and their ParameterStatus messages recorded. Resolves
 * true once the server answered the last with ReadyForQuery 'I' and nothing more to read, false
 * on an error, a close or a stuck server. */
export function runQuery(conn: ServerConnection, queries: readonly Buffer[]): Promise<boolean> {
  const socket = conn.socket;
  return new Promise<boolean>((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let failed = false;
    let answered = 0;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      resolve(ok && !socket.destroyed);
    };
    const onClose = () => done(false);
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let i = 0;
      while (buf.length - i >= 5) {
        const len = buf.readInt32BE(i + 1);
        if (len < 4) return done(false);
        const end = i + 1 + len;
        if (buf.length < end) break;
        const type = buf[i]!;
        if (type === PARAMETER_STATUS) readParameterStatus(buf, i, end, conn.parameters);
        else if (type === ERROR_RESPONSE) failed = true;
        else if (type === READY_FOR_QUERY && ++answered === queries.length) {
          const status = len >= 5 ? buf[i + 5] : 0;
          return done(!failed && status === 0x49 /* 'I' */ && end === buf.length);
        }
        i = end;
      }
      buf = buf.subarray(i);
    };
    const timer = setTimeout(() => done(false), RESET_TIMEOUT_MS);
    timer.unref();
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.cork();
    for (const q of queries) socket.write(q);
    socket.uncork();
    socket.resume();
  });
}

/** A ParameterStatus frame at buf[start..end) into `into` (other frames are ignored). */
export function readParameterStatus(buf: Buffer, start: number, end: number, into: Map<string, string>): void {
  if (buf[start] !== PARAMETER_STATUS) return;
  const nameEnd = buf.indexOf(0, start + 5);
  if (nameEnd < 0 || nameEnd >= end) return;
  const valueEnd = buf.indexOf(0, nameEnd + 1);
  if (valueEnd < 0 || valueEnd >= end) return;
  into.set(buf.toString('utf8', start + 5, nameEnd), buf.toString('utf8', nameEnd + 1, valueEnd));
}

function queryMessage(sql: string): Buffer {
  const body = Buffer.from(`${sql}\0`, 'utf8');
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0x51; // 'Q'
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}

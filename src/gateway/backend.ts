// The gateway's login to the real server: over its Unix socket, SCRAM-SHA-256 with the
// ClientKey recovered from the client's proof (the server still checks SCRAM; no password
// crosses the gateway). Returns once the server is ReadyForQuery, with what the client must
// be told (ParameterStatus, notices) and the server's real cancel key.
import net from 'node:net';
import path from 'node:path';
import { ScramClientSession } from '../auth/scram/index.js';
import {
  BackendType,
  parseAuthentication,
  parseBackendKeyData,
  parseErrorOrNotice,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  type WireMessage,
} from '../pgwire/index.js';
import { Wire } from './wire.js';

export interface BackendSession {
  readonly socket: net.Socket;
  /** ParameterStatus and NoticeResponse messages to pass on, as raw frames. */
  readonly greeting: Buffer[];
  readonly readyForQuery: Buffer;
  readonly processId: number;
  readonly secretKey: Buffer;
  /** Bytes the server sent after ReadyForQuery (normally none). */
  readonly rest: Buffer;
}

/** The server refused the login: its ErrorResponse goes to the client as it is. */
export class BackendRefused extends Error {
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly frame: Buffer,
  ) {
    super(message);
  }
}

export function frame(m: WireMessage): Buffer {
  const out = Buffer.allocUnsafe(5 + m.body.length);
  out.write(m.type, 0, 'latin1');
  out.writeInt32BE(4 + m.body.length, 1);
  m.body.copy(out, 5);
  return out;
}

export function socketPath(socketDir: string): string {
  return path.join(socketDir, '.s.PGSQL.5432');
}

/**
 * Marks the session as the gateway's for the server's pgwarden_audit library (ext/pgwarden_audit):
 * pgAudit then logs only statements nested in another one, since the gateway records the rest.
 * Set last, so a client's own startup parameter or `options` cannot change it.
 */
export const GATEWAY_SESSION_PARAM = 'pgwarden_audit.gateway_session';

export async function connectBackend(opts: {
  socketDir: string;
  params: ReadonlyMap<string, string>;
  clientKey: Buffer;
  serverKey: Buffer;
}): Promise<BackendSession> {
  const socket = net.connect(socketPath(opts.socketDir));
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const wire = new Wire(socket, 'message', 64 * 1024 * 1024);
  try {
    wire.write(startupMessage(new Map([...opts.params].filter(([k]) => k !== GATEWAY_SESSION_PARAM)).set(GATEWAY_SESSION_PARAM, 'on')));
    const greeting: Buffer[] = [];
    let scram: ScramClientSession | null = null;
    let key: { processId: number; secretKey: Buffer } | null = null;
    for (;;) {
      const m = await wire.readMessage();
      switch (m.type) {
        case BackendType.Authentication: {
          const auth = parseAuthentication(m.body);
          if (auth.kind === 'sasl') {
            if (!auth.mechanisms.includes('SCRAM-SHA-256')) throw new Error('server does not offer SCRAM-SHA-256');
            scram = new ScramClientSession({ clientKey: opts.clientKey, serverKey: opts.serverKey });
            wire.write(saslInitialResponse(scram.mechanism, scram.clientFirst()));
          } else if (auth.kind === 'saslContinue' && scram) {
            wire.write(saslResponse(scram.serverFirst(auth.data)));
          } else if (auth.kind === 'saslFinal' && scram) {
            scram.serverFinal(auth.data);
          } else if (auth.kind !== 'ok') {
            throw new Error(`server asked for an authentication method the gateway does not use (${auth.kind})`);
          }
          break;
        }
        case BackendType.ParameterStatus:
        case BackendType.NoticeResponse:
          greeting.push(frame(m));
          break;
        case BackendType.BackendKeyData:
          key = parseBackendKeyData(m.body);
          break;
        case BackendType.ErrorResponse: {
          const e = parseErrorOrNotice(m.body);
          throw new BackendRefused(e.sqlstate, e.message, frame(m));
        }
        case BackendType.ReadyForQuery: {
          if (!key) throw new Error('server sent no BackendKeyData');
          const rest = wire.detach();
          return { socket, greeting, readyForQuery: frame(m), processId: key.processId, secretKey: key.secretKey, rest };
        }
        default:
          throw new Error(`unexpected message "${m.type}" from the server during login`);
      }
    }
  } catch (err) {
    wire.detach();
    socket.destroy();
    throw err;
  }
}

// A minimal PostgreSQL front door for tests: SSLRequest, TLS, StartupMessage, SCRAM through
// ScramServerSession, then AuthenticationOk. It uses only the codec and SCRAM libraries under test
// (no gateway code), so real clients (node-postgres, psql/libpq) can be run against them over
// real sockets. It runs no queries.

import net from 'node:net';
import tls from 'node:tls';
import { MessageReader, StartupReader, type WireMessage } from '../../../../src/pgwire/reader.js';
import { parseStartupPacket, ProtocolError } from '../../../../src/pgwire/startup.js';
import * as be from '../../../../src/pgwire/backend.js';
import { parseSASLInitialResponse, parseSASLResponse } from '../../../../src/pgwire/parse-frontend.js';
import { ScramServerSession, type ScramMechanism } from '../../../../src/auth/scram/server.js';
import { ScramError } from '../../../../src/auth/scram/scram-error.js';
import { channelBindingHash, tlsServerEndPoint, type ChannelBinding } from '../../../../src/auth/scram/channel-binding.js';
import { mockVerifier, type ScramVerifier } from '../../../../src/auth/scram/verifier.js';
import type { TestCertificate } from './certificates.js';
import { Frames } from './frames.js';

export interface MiniServerOptions {
  /** Verifiers by role; unknown roles get a mock exchange. */
  readonly roles: ReadonlyMap<string, ScramVerifier>;
  /** Enables SSLRequest -> TLS. */
  readonly cert?: TestCertificate;
  /**
   * Simulates a man in the middle who removed SCRAM-SHA-256-PLUS from the offer: the client sees
   * only SCRAM-SHA-256 while the server session still knows it offered PLUS.
   */
  readonly stripPlus?: boolean;
}

export interface LoginOutcome {
  readonly user: string;
  readonly tls: boolean;
  readonly offered: readonly string[];
  readonly mechanism?: string;
  readonly ok: boolean;
  readonly reason?: string;
  readonly clientKey?: Buffer;
}

export interface MiniServer {
  readonly port: number;
  readonly outcomes: LoginOutcome[];
  close(): Promise<void>;
}

const MOCK_SECRET = Buffer.alloc(32, 0x42);

export async function startMiniServer(options: MiniServerOptions): Promise<MiniServer> {
  const outcomes: LoginOutcome[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    handle(socket, options, outcomes).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    outcomes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function handle(raw: net.Socket, options: MiniServerOptions, outcomes: LoginOutcome[]): Promise<void> {
  let socket: net.Socket = raw;
  let secure = false;
  let startupFrames = new Frames(socket, new StartupReader());
  try {
    let packet = parseStartupPacket(await startupFrames.next());
    if (packet.kind === 'ssl' || packet.kind === 'gssenc') {
      const leftover = startupFrames.detach();
      if (leftover.length > 0) throw new ProtocolError('08P01', 'received unencrypted data after SSL request');
      if (packet.kind === 'gssenc' || !options.cert) {
        socket.write(be.sslResponse(false));
      } else {
        socket.write(be.sslResponse(true));
        socket = new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: tls.createSecureContext({ cert: options.cert.certPem, key: options.cert.keyPem }),
        });
        secure = true;
      }
      startupFrames = new Frames(socket, new StartupReader());
      packet = parseStartupPacket(await startupFrames.next());
    }
    if (packet.kind !== 'startup') throw new ProtocolError('08P01', 'expected a startup message');
    const user = packet.params.get('user')!;
    const frames = new Frames(socket, new MessageReader());
    const leftover = startupFrames.detach();
    if (leftover.length > 0) frames.reader.push(leftover);

    const bindable = secure && channelBindingHash(options.cert!.der) !== null;
    const binding: ChannelBinding | null = bindable ? { type: 'tls-server-end-point', data: tlsServerEndPoint(options.cert!.der) } : null;
    const offered = binding && !options.stripPlus ? ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] : ['SCRAM-SHA-256'];
    socket.write(be.authenticationSASL(offered));

    const known = options.roles.get(user);
    const initial = parseSASLInitialResponse(expectAuthResponse(await frames.next()));
    const session = new ScramServerSession({
      verifier: known ?? mockVerifier('mini-server', user, MOCK_SECRET),
      mechanism: initial.mechanism as ScramMechanism,
      channelBinding: binding,
      mock: known === undefined,
    });
    socket.write(be.authenticationSASLContinue(session.clientFirst(initial.data)));
    const result = session.clientFinal(parseSASLResponse(expectAuthResponse(await frames.next())));
    const base = { user, tls: secure, offered, mechanism: initial.mechanism };
    if (!result.ok) {
      outcomes.push({ ...base, ok: false, reason: result.reason });
      socket.end(be.errorResponse({ severity: 'FATAL', sqlstate: '28P01', message: `password authentication failed for user "${user}"` }));
      return;
    }
    outcomes.push({ ...base, ok: true, clientKey: result.clientKey });
    socket.write(
      Buffer.concat([
        be.authenticationSASLFinal(result.serverFinal),
        be.authenticationOk(),
        be.parameterStatus('server_version', '15.0'),
        be.parameterStatus('server_encoding', 'UTF8'),
        be.parameterStatus('client_encoding', 'UTF8'),
        be.parameterStatus('standard_conforming_strings', 'on'),
        be.parameterStatus('integer_datetimes', 'on'),
        be.parameterStatus('DateStyle', 'ISO, MDY'),
        be.backendKeyData(4242, Buffer.from('0badcafe', 'hex')),
        be.readyForQuery('I'),
      ]),
    );
    for (;;) {
      const m = await frames.next();
      if (m.type === 'X') break;
      socket.write(be.errorResponse({ severity: 'ERROR', sqlstate: '0A000', message: 'this test server runs no queries' }));
      socket.write(be.readyForQuery('I'));
    }
    socket.end();
  } catch (err) {
    if (err instanceof ProtocolError || err instanceof ScramError) {
      outcomes.push({ user: '', tls: secure, offered: [], ok: false, reason: err.message });
      socket.end(be.errorResponse({ severity: 'FATAL', sqlstate: err.sqlstate, message: err.message }));
      return;
    }
    throw err;
  }
}

function expectAuthResponse(m: WireMessage): Buffer {
  if (m.type !== 'p') throw new ProtocolError('08P01', `expected SASL response, got message type "${m.type}"`);
  return m.body;
}

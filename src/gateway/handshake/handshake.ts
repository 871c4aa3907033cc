// Steps 1 and 2 (SPEC.md §3): from an accepted socket to a StartupMessage, a CancelRequest or a
// refusal. Owns the PROXY header (proxy-stage.ts), encryption negotiation (SSLRequest, direct
// TLS, GSSENCRequest), protocol version negotiation and the handshake timeout, which runs from
// accept until the caller starts authentication (`stopDeadline`).
import type { Duplex } from 'node:stream';
import type net from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  EncryptionRequests,
  gssEncResponse,
  negotiateProtocolVersion,
  NEWEST_PROTOCOL_MINOR,
  parseStartupPacket,
  ProtocolError,
  sslResponse,
  type StartupPacket,
} from '../../pgwire/index.js';
import { Wire } from '../wire.js';
import { isTrusted, readProxyHeader, ProxyRefused } from '../proxy-stage.js';
import { startTls, firstChunk, replay, type TlsEnv, type TlsState } from './transport.js';
import { adoptTls, writeFlushed } from './native-tls.js';
import { clientHelloServerName } from './client-hello.js';
import type { NativeRelayHost } from '../native/host.js';
import { failureRefusal } from '../report.js';
import { refusal, type Refusal } from '../checks/verdict.js';
import type { PrivateEndpointIdentity } from '../network-stage.js';
import type { ListenerSpec } from '../context.js';
import type { ConnectionContext } from '../../events/types.js';

export type HandshakeResult =
  | {
      readonly kind: 'startup';
      readonly conn: ConnectionContext;
      /** The raw socket, the TLS socket over it, or (native relay) the addon's plaintext Duplex
       * (native/client-socket.ts). */
      readonly socket: Duplex;
      readonly wire: Wire;
      readonly tls: TlsState | null;
      /** Startup parameters, `_pq_.` protocol options removed. */
      readonly params: Map<string, string>;
      /** The protocol minor version agreed on (0 to NEWEST_PROTOCOL_MINOR). */
      readonly protocolMinor: number;
      readonly clientAddress: string;
      readonly endpoint: PrivateEndpointIdentity | null;
      stopDeadline(): void;
    }
  | { readonly kind: 'cancel'; readonly processId: number; readonly secretKey: Buffer }
  | {
      readonly kind: 'refused';
      readonly socket: Duplex;
      /** Null: the peer went away before anything worth an event. */
      readonly conn: ConnectionContext | null;
      /** False: refused before the connection was accepted (its PROXY header). */
      readonly accepted: boolean;
      /** Null: nothing to tell; the socket is closed. */
      readonly refusal: Refusal | null;
    };

export interface HandshakeEnv extends TlsEnv {
  readonly limits: { readonly handshakeTimeoutMs: number; readonly maxStartupPacket: number };
  /** The connection is known (its client address settled): told before encryption is negotiated. */
  accepted(conn: ConnectionContext): void;
  /** The native relay: TLS connections are handed to it once encryption is agreed (plaintext
   * ones stay on the raw socket and the JavaScript relay). Null: Node's TLS. */
  readonly nativeRelay?: NativeRelayHost | null;
  /** With the native relay: true for a TLS server name (SNI) whose sessions the JavaScript relay
   * carries better, so that the connection stays on Node's TLS (transaction pooling, relayed
   * message by message in JavaScript: over the addon's plaintext every message would cross
   * threads twice). */
  readonly keepOnNodeTls?: (sni: string) => boolean;
}

const TLS_RECORD_HANDSHAKE = 0x16;

/** Whether the native relay takes the TLS connection whose ClientHello starts `hello`: not when
 * its server name is one the addon's TLS would refuse (client-hello.ts), nor when it names a
 * server the JavaScript relay carries better (keepOnNodeTls). */
function toAddon(hello: Buffer, env: HandshakeEnv): boolean {
  const sni = clientHelloServerName(hello);
  if (sni.kind === 'invalid') return false;
  return sni.kind !== 'dns' || env.keepOnNodeTls?.(sni.name) !== true;
}

/** IPv4-mapped IPv6 addresses are judged, logged and shown as IPv4. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export async function handshake(raw: Duplex, peer: { address: string; port: number }, listener: ListenerSpec, env: HandshakeEnv): Promise<HandshakeResult> {
  const deadline = setTimeout(() => raw.destroy(), env.limits.handshakeTimeoutMs);
  const stopDeadline = () => clearTimeout(deadline);
  let clientAddress = normalizeAddress(peer.address);
  let clientPort = peer.port;
  let endpoint: PrivateEndpointIdentity | null = null;
  let first: Buffer;

  // Step 1 behind a load balancer: one PROXY header, only from the load balancers.
  try {
    if (listener.kind !== 'private' && listener.proxy) {
      if (!isTrusted(clientAddress, listener.proxy)) throw new ProxyRefused('untrusted-source');
      const { header, rest } = await readProxyHeader(raw);
      // readProxyHeader refuses a header without a client address; never fall back to the
      // load balancer's own.
      if (!header.source) throw new ProxyRefused('no-client-address');
      clientAddress = normalizeAddress(header.source.address);
      clientPort = header.source.port;
      if (header.azureLinkId !== undefined) endpoint = { id: String(header.azureLinkId), kind: 'azure-private-link' };
      else if (header.awsVpceId !== undefined) endpoint = { id: header.awsVpceId, kind: 'aws-vpc-endpoint' };
      first = rest.length ? rest : await firstChunk(raw);
    } else {
      first = await firstChunk(raw);
    }
  } catch (err) {
    stopDeadline();
    raw.destroy();
    if (!(err instanceof ProxyRefused)) return { kind: 'refused', socket: raw, conn: null, accepted: false, refusal: null };
    return {
      kind: 'refused',
      socket: raw,
      conn: { connId: randomUUID(), clientAddress, clientPort, listener: listener.kind },
      accepted: false,
      refusal: refusal({ sqlstate: '08P01', message: err.message }, `proxy-${err.reason}`, { silent: true }),
    };
  }

  const conn: ConnectionContext = {
    connId: randomUUID(),
    clientAddress,
    clientPort,
    listener: endpoint ? 'private-link' : listener.kind === 'private' ? 'private' : 'public',
    ...(listener.kind === 'private' ? { listenerName: listener.vnet } : {}),
    ...(endpoint ? { privateEndpoint: endpoint.id } : {}),
  };
  env.accepted(conn);
  let socket: Duplex = raw;

  try {
    // Step 2: encryption negotiation, until a StartupMessage (or a CancelRequest) arrives.
    let tlsState: TlsState | null = null;
    let wire: Wire;
    const native = env.nativeRelay ?? null;
    if (first[0] === TLS_RECORD_HANDSHAKE) {
      // Direct TLS: the first chunk is the start of the ClientHello (one whose server name the
      // addon's TLS would refuse stays on Node's TLS, see client-hello.ts).
      const t = native && toAddon(first, env) ? await adoptTls(raw as net.Socket, first, 'direct', native, env) : await startTls(replay(raw, first), env, true);
      tlsState = t.state;
      socket = t.socket;
      wire = new Wire(socket, 'startup');
    } else {
      wire = new Wire(raw, 'startup');
      wire.feed(first);
    }
    let startup: Extract<StartupPacket, { kind: 'startup' }> | null = null;
    const encryptionRequests = new EncryptionRequests();
    while (!startup) {
      const packet = parseStartupPacket(await wire.readStartup(), { maxLength: env.limits.maxStartupPacket });
      if (packet.kind === 'cancel') {
        stopDeadline();
        return { kind: 'cancel', processId: packet.processId, secretKey: packet.secretKey };
      }
      if (packet.kind === 'gssenc') {
        encryptionRequests.check('gssenc', tlsState !== null);
        wire.write(gssEncResponse(false));
        continue;
      }
      if (packet.kind === 'ssl') {
        encryptionRequests.check('ssl', tlsState !== null);
        // Anything sent after SSLRequest before the handshake would be read as if it were
        // encrypted (CVE-2021-23214): refuse it.
        if (wire.buffered > 0) throw new ProtocolError('08P01', 'received unencrypted data after SSL request');
        wire.detach();
        let t: { socket: Duplex; state: TlsState };
        if (native) {
          // 'S' out, then the ClientHello's first bytes: the addon takes them with the socket
          // (but see toAddon).
          await writeFlushed(raw as net.Socket, sslResponse(true));
          const hello = await firstChunk(raw);
          t = toAddon(hello, env) ? await adoptTls(raw as net.Socket, hello, 'starttls', native, env) : await startTls(replay(raw, hello), env, false);
        } else {
          raw.write(sslResponse(true));
          t = await startTls(raw, env, false);
        }
        tlsState = t.state;
        socket = t.socket;
        wire = new Wire(socket, 'startup');
        continue;
      }
      startup = packet;
    }
    wire.switchToMessages();

    // Protocol 3.0 to 3.2 (3.2: PostgreSQL 18's longer cancel key); newer minors and _pq_
    // extensions are declined politely, as PostgreSQL does.
    const unknownOptions = [...startup.params.keys()].filter((k) => k.startsWith('_pq_.'));
    for (const k of unknownOptions) startup.params.delete(k);
    const protocolMinor = Math.min(startup.minorVersion, NEWEST_PROTOCOL_MINOR);
    if (startup.minorVersion > NEWEST_PROTOCOL_MINOR || unknownOptions.length) wire.write(negotiateProtocolVersion(protocolMinor, unknownOptions));

    return { kind: 'startup', conn, socket, wire, tls: tlsState, params: startup.params, protocolMinor, clientAddress, endpoint, stopDeadline };
  } catch (err) {
    stopDeadline();
    return { kind: 'refused', socket, conn, accepted: true, refusal: failureRefusal(err) };
  }
}

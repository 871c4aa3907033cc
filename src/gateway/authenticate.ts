// Step 8: SCRAM-SHA-256 with the client at the gateway. The client proves its password against
// the role's verifier; the gateway keeps the ClientKey it recovers from the proof (never the
// password) to log in to the server. Unknown roles and roles without a SCRAM secret get a mock
// exchange that fails the same way, in about the same time.
import { ScramServerSession, ScramError, mockVerifier, type ScramMechanism, type ScramVerifier } from '../auth/scram/index.js';
import { authenticationSASL, authenticationSASLContinue, parseSASLInitialResponse, parseSASLResponse, ProtocolError, FrontendType } from '../pgwire/index.js';
import { ConnectionClosed, type Wire } from './wire.js';
import type { VerifierLookup } from './verifier-cache.js';

export type PasswordAuthResult =
  | {
      readonly ok: true;
      readonly mechanism: ScramMechanism;
      readonly clientKey: Buffer;
      readonly serverKey: Buffer;
      readonly serverFinal: Buffer;
    }
  | { readonly ok: false; readonly mechanism: ScramMechanism | null; readonly reason: string };

export interface PasswordAuthInput {
  readonly wire: Wire;
  readonly user: string;
  /** tls-server-end-point data of this TLS connection's certificate; null on plaintext or
   * when the certificate allows no binding. */
  readonly channelBinding: Buffer | null;
  readonly lookup: () => Promise<VerifierLookup>;
  readonly mockSecret: Buffer;
  /** The server's id: an unknown role's mock salt differs from server to server, as a real
   * role's does (or comparing salts across servers would tell unknown roles apart). */
  readonly serverId: number;
}

const REASONS: Record<Exclude<VerifierLookup['kind'], 'scram'>, string> = {
  'unknown-role': 'role does not exist',
  'no-scram-secret': 'role has no SCRAM-SHA-256 secret (set its password again with password_encryption = scram-sha-256)',
  'cannot-login': 'role is not permitted to log in',
  expired: 'password has expired (VALID UNTIL)',
};

function expect(type: string, got: string): void {
  if (got === FrontendType.Terminate) throw new ConnectionClosed();
  if (got !== type) throw new ProtocolError('08P01', `expected SASL response, got message type "${got}"`);
}

export async function authenticatePassword(input: PasswordAuthInput): Promise<PasswordAuthResult> {
  const { wire } = input;
  const binding = input.channelBinding ? { type: 'tls-server-end-point' as const, data: input.channelBinding } : null;
  wire.write(authenticationSASL(binding ? ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] : ['SCRAM-SHA-256']));

  const first = await wire.readMessage();
  expect(FrontendType.AuthResponse, first.type);
  const initial = parseSASLInitialResponse(first.body);
  const mechanism = initial.mechanism as ScramMechanism;
  if (mechanism !== 'SCRAM-SHA-256' && (mechanism !== 'SCRAM-SHA-256-PLUS' || !binding)) {
    throw new ProtocolError('28000', 'client selected an invalid SASL authentication mechanism');
  }
  if (!initial.data) throw new ProtocolError('08P01', 'malformed SCRAM message (empty initial response)');

  const lookup = await input.lookup();
  const real = lookup.kind === 'scram';
  const verifier: ScramVerifier = real ? lookup.verifier : mockVerifier(`server-${input.serverId}`, input.user, input.mockSecret);
  const session = new ScramServerSession({ verifier, mechanism, channelBinding: binding, mock: !real });
  try {
    wire.write(authenticationSASLContinue(session.clientFirst(initial.data)));
    const final = await wire.readMessage();
    expect(FrontendType.AuthResponse, final.type);
    const result = session.clientFinal(parseSASLResponse(final.body));
    if (!result.ok) return { ok: false, mechanism, reason: real ? `wrong password: ${result.reason}` : REASONS[lookup.kind] };
    if (!real) return { ok: false, mechanism, reason: REASONS[lookup.kind] };
    return { ok: true, mechanism, clientKey: result.clientKey, serverKey: verifier.serverKey, serverFinal: result.serverFinal };
  } catch (err) {
    if (err instanceof ScramError) return { ok: false, mechanism, reason: `malformed SCRAM exchange: ${err.message}` };
    throw err;
  }
}

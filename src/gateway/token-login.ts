// Step 8 for principals: token login. The client sends its OpenID Connect access token as the
// password (cleartext password message, only ever asked for over TLS); the gateway verifies it
// against the server's identity administrator's issuer and audience and checks that it names
// the principal bound to the role (by object id, or by group membership for group principals).
// Why a token was refused goes to the audit event; the client gets SPEC.md's one text.
import { authenticationCleartextPassword, parsePasswordMessage, ProtocolError, FrontendType } from '../pgwire/index.js';
import { ConnectionClosed, type Wire } from './wire.js';
import type { IdentityAdminView, PrincipalView, TokenIdentity, TokenVerifier } from '../auth/identity.js';

export type { TokenIdentity, TokenVerifier } from '../auth/identity.js';

export type TokenLoginResult = { readonly ok: true; readonly objectId: string } | { readonly ok: false; readonly reason: string };

/** Tokens are bounded (16 KiB) before anything else looks at them. */
export const MAX_TOKEN_BYTES = 16 * 1024;

export async function authenticateToken(input: {
  wire: Wire;
  admin: IdentityAdminView | null;
  principal: PrincipalView;
  verify: TokenVerifier;
}): Promise<TokenLoginResult> {
  const { wire } = input;
  wire.write(authenticationCleartextPassword());
  const m = await wire.readMessage();
  if (m.type === FrontendType.Terminate) throw new ConnectionClosed();
  if (m.type !== FrontendType.AuthResponse) throw new ProtocolError('08P01', `expected password response, got message type "${m.type}"`);
  if (m.body.length > MAX_TOKEN_BYTES + 1) return { ok: false, reason: 'token too large' };
  const token = parsePasswordMessage(m.body, { maxPassword: MAX_TOKEN_BYTES + 1 });
  if (!input.admin) return { ok: false, reason: 'the server has no identity administrator: token logins are off' };
  let identity: TokenIdentity;
  try {
    identity = await input.verify(token, input.admin);
  } catch (err) {
    const e = err as Error & { reason?: string };
    return { ok: false, reason: `token rejected (${e.reason ?? 'error'}): ${e.message}` };
  }
  const p = input.principal;
  const matches = p.type === 'group' ? identity.groups.includes(p.objectId) : identity.objectId === p.objectId;
  if (!matches) {
    return {
      ok: false,
      reason: p.type === 'group' ? `token is not a member of group ${p.objectId}` : `token belongs to ${identity.objectId}, not to this role's ${p.type}`,
    };
  }
  return { ok: true, objectId: identity.objectId };
}

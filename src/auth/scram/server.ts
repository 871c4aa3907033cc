// The gateway's side of a client's SCRAM-SHA-256(-PLUS) exchange (RFC 5802, RFC 7677), checked
// as PostgreSQL's auth-scram.c does. On success it returns the ClientKey recovered from the
// client's proof, so the gateway can log in to the real server without the password:
//   ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), accepted when H(ClientKey) = StoredKey.
// Malformed input throws ScramError; a wrong password (or a mock session) returns ok:false.

import { randomBytes } from 'node:crypto';
import { attribute, checkExtension, decodeBase64, decodeMessage, isPrintable } from './attributes.js';
import type { ChannelBinding } from './channel-binding.js';
import { hmac, safeEqual, SCRAM_KEY_LENGTH, sha256, xor } from './keys.js';
import { ScramError } from './scram-error.js';
import type { ScramVerifier } from './verifier.js';

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-256-PLUS';

export interface ScramServerOptions {
  readonly verifier: ScramVerifier;
  /** The mechanism the client chose in its SASLInitialResponse. */
  readonly mechanism: ScramMechanism;
  /**
   * The TLS connection's tls-server-end-point data; null on a plaintext connection (or when the
   * certificate allows no binding). Non-null means SCRAM-SHA-256-PLUS was offered.
   */
  readonly channelBinding: ChannelBinding | null;
  /** For an unknown role: run a normal-looking exchange that always fails. */
  readonly mock?: boolean;
}

export type ScramServerResult =
  | { readonly ok: true; readonly serverFinal: Buffer; readonly clientKey: Buffer }
  | { readonly ok: false; readonly reason: string };

/** Raw bytes of the server nonce (as PostgreSQL's SCRAM_RAW_NONCE_LEN). */
const SERVER_NONCE_BYTES = 18;

type State =
  | { readonly step: 'initial' }
  | {
      readonly step: 'first-done';
      readonly gs2Header: string;
      readonly nonce: string;
      readonly clientFirstBare: string;
      readonly serverFirst: string;
    }
  | { readonly step: 'done' };

export class ScramServerSession {
  private readonly verifier: ScramVerifier;
  private readonly plus: boolean;
  private readonly channelBinding: ChannelBinding | null;
  private readonly mock: boolean;
  private state: State = { step: 'initial' };

  constructor(options: ScramServerOptions) {
    const { mechanism, channelBinding } = options;
    if (mechanism !== 'SCRAM-SHA-256' && mechanism !== 'SCRAM-SHA-256-PLUS') {
      throw new ScramError('client selected an invalid SASL authentication mechanism');
    }
    if (mechanism === 'SCRAM-SHA-256-PLUS' && channelBinding === null) {
      // PLUS is only offered on TLS connections with a bindable certificate.
      throw new ScramError('client selected an invalid SASL authentication mechanism');
    }
    if (channelBinding !== null && channelBinding.type !== 'tls-server-end-point') {
      throw new ScramError('unsupported SCRAM channel-binding type');
    }
    this.verifier = options.verifier;
    this.plus = mechanism === 'SCRAM-SHA-256-PLUS';
    this.channelBinding = channelBinding;
    this.mock = options.mock ?? false;
  }

  /** Reads client-first-message, returns server-first-message. */
  clientFirst(data: Buffer): Buffer {
    if (this.state.step !== 'initial') throw new ScramError('unexpected SCRAM client-first-message');
    this.state = { step: 'done' }; // any failure below ends the exchange
    const what = 'client-first-message';
    const text = decodeMessage(data, what);

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const flagEnd = text.indexOf(',');
    if (flagEnd < 0) throw new ScramError(`malformed SCRAM message: missing GS2 header in ${what}`);
    const flag = text.slice(0, flagEnd);
    if (flag === 'n' || flag === 'y') {
      if (this.plus) {
        throw new ScramError('malformed SCRAM message: the client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel binding data');
      }
      if (flag === 'y' && this.channelBinding !== null) {
        // The client supports channel binding and believes we do not: something removed PLUS.
        throw new ScramError('SCRAM channel binding negotiation error: the client supports channel binding but thinks the server does not');
      }
    } else if (flag.startsWith('p=')) {
      if (!this.plus) {
        throw new ScramError(
          'malformed SCRAM message: the client selected SCRAM-SHA-256 without channel binding, but the SCRAM message includes channel binding data',
        );
      }
      if (flag !== 'p=tls-server-end-point') throw new ScramError('unsupported SCRAM channel-binding type');
    } else {
      throw new ScramError(`malformed SCRAM message: unexpected channel-binding flag in ${what}`);
    }

    const authzidEnd = text.indexOf(',', flagEnd + 1);
    if (authzidEnd < 0) throw new ScramError(`malformed SCRAM message: missing GS2 header in ${what}`);
    if (authzidEnd !== flagEnd + 1) {
      if (text.startsWith('a=', flagEnd + 1)) {
        throw new ScramError('client uses authorization identity, but it is not supported', '0A000');
      }
      throw new ScramError(`malformed SCRAM message: unexpected attribute in GS2 header of ${what}`);
    }
    const gs2Header = text.slice(0, authzidEnd + 1);
    const clientFirstBare = text.slice(authzidEnd + 1);

    if (clientFirstBare.startsWith('m=')) {
      throw new ScramError('client requires an unsupported SCRAM extension', '0A000');
    }
    const parts = clientFirstBare.split(',');
    attribute(parts[0], 'n', what, true); // user name: ignored, as PostgreSQL does (libpq sends it empty)
    const clientNonce = attribute(parts[1], 'r', what);
    if (!isPrintable(clientNonce)) throw new ScramError('malformed SCRAM message: non-printable characters in SCRAM nonce');
    for (const extension of parts.slice(2)) checkExtension(extension, what);

    const nonce = clientNonce + randomBytes(SERVER_NONCE_BYTES).toString('base64');
    const serverFirst = `r=${nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    this.state = { step: 'first-done', gs2Header, nonce, clientFirstBare, serverFirst };
    return Buffer.from(serverFirst, 'utf8');
  }

  /** Reads client-final-message; on success returns server-final-message and the ClientKey. */
  clientFinal(data: Buffer): ScramServerResult {
    const state = this.state;
    if (state.step !== 'first-done') throw new ScramError('unexpected SCRAM client-final-message');
    this.state = { step: 'done' };
    const what = 'client-final-message';
    const text = decodeMessage(data, what);
    const parts = text.split(',');

    const cbind = attribute(parts[0], 'c', what);
    if (this.plus) {
      const expected = Buffer.concat([Buffer.from(state.gs2Header, 'utf8'), this.channelBinding!.data]).toString('base64');
      if (!safeEqual(Buffer.from(cbind, 'utf8'), Buffer.from(expected, 'utf8'))) {
        throw new ScramError('SCRAM channel binding check failed', '28000');
      }
    } else if (cbind !== Buffer.from(state.gs2Header, 'utf8').toString('base64')) {
      // "biws" for "n,,", "eSws" for "y,,": the flag must repeat the client-first one.
      throw new ScramError('unexpected SCRAM channel-binding attribute in client-final-message');
    }

    const nonce = attribute(parts[1], 'r', what);
    if (nonce !== state.nonce) throw new ScramError('invalid SCRAM response: nonce does not match');
    const last = parts.length - 1;
    if (last < 2) throw new ScramError(`malformed SCRAM message: expected attribute "p" in ${what}`);
    for (const extension of parts.slice(2, last)) {
      checkExtension(extension, what);
      if (extension.startsWith('p=')) throw new ScramError(`malformed SCRAM message: garbage found at the end of ${what}`);
    }
    const proof = decodeBase64(attribute(parts[last], 'p', what));
    if (proof === null || proof.length !== SCRAM_KEY_LENGTH) {
      throw new ScramError(`malformed SCRAM message: malformed proof in ${what}`);
    }

    const withoutProof = text.slice(0, text.length - parts[last]!.length - 1);
    const authMessage = `${state.clientFirstBare},${state.serverFirst},${withoutProof}`;
    // Same work whatever the outcome, so a mock or a wrong password takes the same time.
    const clientKey = xor(proof, hmac(this.verifier.storedKey, authMessage));
    const matches = safeEqual(sha256(clientKey), this.verifier.storedKey);
    const serverSignature = hmac(this.verifier.serverKey, authMessage);

    if (this.mock || !matches) {
      clientKey.fill(0);
      return { ok: false, reason: this.mock ? 'mock authentication for an unknown role' : 'invalid client proof' };
    }
    return { ok: true, serverFinal: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'), clientKey };
  }
}

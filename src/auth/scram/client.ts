// The gateway's side of a SCRAM-SHA-256(-PLUS) exchange with a real PostgreSQL server, as its
// client. Given the ClientKey recovered by ScramServerSession and the role's ServerKey, it proves
// knowledge of the password without having it: StoredKey = H(ClientKey), and salt and iteration
// count are not needed. A password can be given instead (tests, maintenance connections).

import { randomBytes } from 'node:crypto';
import { attribute, checkExtension, decodeBase64, decodeMessage, isPrintable } from './attributes.js';
import type { ChannelBinding } from './channel-binding.js';
import { deriveKeys, hmac, safeEqual, SCRAM_KEY_LENGTH, sha256, xor } from './keys.js';
import { ScramError } from './scram-error.js';
import type { ScramMechanism } from './server.js';

export type ScramClientCredentials = { readonly clientKey: Buffer; readonly serverKey: Buffer } | { readonly password: string | Buffer };

export type ScramClientOptions = ScramClientCredentials & {
  /** Binding data of the server's certificate: selects SCRAM-SHA-256-PLUS. */
  readonly channelBinding?: ChannelBinding | null;
  /**
   * The connection is TLS but the server offered no PLUS mechanism: send the "y" flag so a
   * server that does support binding detects the downgrade.
   */
  readonly tlsWithoutBinding?: boolean;
  /** Highest iteration count accepted from the server (default 10,000,000). */
  readonly maxIterations?: number;
};

export const DEFAULT_MAX_CLIENT_ITERATIONS = 10_000_000;
const CLIENT_NONCE_BYTES = 18;

type State =
  | { readonly step: 'initial' }
  | { readonly step: 'first-sent'; readonly nonce: string; readonly clientFirstBare: string }
  | { readonly step: 'final-sent'; readonly serverSignature: Buffer }
  | { readonly step: 'done' };

export class ScramClientSession {
  readonly mechanism: ScramMechanism;
  private readonly credentials: ScramClientCredentials;
  private readonly channelBinding: ChannelBinding | null;
  private readonly gs2Header: string;
  private readonly maxIterations: number;
  private state: State = { step: 'initial' };

  constructor(options: ScramClientOptions) {
    if ('clientKey' in options) {
      if (options.clientKey.length !== SCRAM_KEY_LENGTH || options.serverKey.length !== SCRAM_KEY_LENGTH) {
        throw new RangeError('SCRAM keys must be 32 bytes');
      }
      this.credentials = { clientKey: options.clientKey, serverKey: options.serverKey };
    } else {
      this.credentials = { password: options.password };
    }
    this.channelBinding = options.channelBinding ?? null;
    this.mechanism = this.channelBinding ? 'SCRAM-SHA-256-PLUS' : 'SCRAM-SHA-256';
    this.gs2Header = this.channelBinding ? 'p=tls-server-end-point,,' : options.tlsWithoutBinding ? 'y,,' : 'n,,';
    this.maxIterations = options.maxIterations ?? DEFAULT_MAX_CLIENT_ITERATIONS;
  }

  /** client-first-message: gs2 header, empty user name (as libpq), a fresh nonce. */
  clientFirst(): Buffer {
    if (this.state.step !== 'initial') throw new ScramError('SCRAM client-first-message already sent');
    const nonce = randomBytes(CLIENT_NONCE_BYTES).toString('base64');
    const clientFirstBare = `n=,r=${nonce}`;
    this.state = { step: 'first-sent', nonce, clientFirstBare };
    return Buffer.from(this.gs2Header + clientFirstBare, 'utf8');
  }

  /** Reads server-first-message, returns client-final-message with the proof. */
  serverFirst(data: Buffer): Buffer {
    const state = this.state;
    if (state.step !== 'first-sent') throw new ScramError('unexpected SCRAM server-first-message');
    this.state = { step: 'done' };
    const what = 'server-first-message';
    const text = decodeMessage(data, what);
    if (text.startsWith('m=')) throw new ScramError('server requires an unsupported SCRAM extension', '0A000');
    const parts = text.split(',');

    const nonce = attribute(parts[0], 'r', what);
    if (!isPrintable(nonce)) throw new ScramError('malformed SCRAM message: non-printable characters in SCRAM nonce');
    if (!nonce.startsWith(state.nonce) || nonce.length === state.nonce.length) {
      throw new ScramError('invalid SCRAM server-first-message: server nonce does not extend the client nonce');
    }
    const salt = decodeBase64(attribute(parts[1], 's', what), false);
    if (salt === null || salt.length === 0) throw new ScramError('malformed SCRAM message: invalid salt in server-first-message');
    const iterationText = attribute(parts[2], 'i', what);
    const iterations = /^[1-9][0-9]{0,9}$/.test(iterationText) ? Number(iterationText) : 0;
    if (iterations < 1 || iterations > this.maxIterations) {
      throw new ScramError('invalid SCRAM server-first-message: iteration count out of range');
    }
    for (const extension of parts.slice(3)) checkExtension(extension, what);

    const { clientKey, serverKey } = 'clientKey' in this.credentials ? this.credentials : deriveKeys(this.credentials.password, salt, iterations);

    const cbindInput = this.channelBinding
      ? Buffer.concat([Buffer.from(this.gs2Header, 'utf8'), this.channelBinding.data])
      : Buffer.from(this.gs2Header, 'utf8');
    const withoutProof = `c=${cbindInput.toString('base64')},r=${nonce}`;
    const authMessage = `${state.clientFirstBare},${text},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.state = { step: 'final-sent', serverSignature: hmac(serverKey, authMessage) };
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Reads server-final-message; throws ScramError unless it carries the expected signature. */
  serverFinal(data: Buffer): void {
    const state = this.state;
    if (state.step !== 'final-sent') throw new ScramError('unexpected SCRAM server-final-message');
    this.state = { step: 'done' };
    const what = 'server-final-message';
    const text = decodeMessage(data, what);
    const parts = text.split(',');
    if (parts[0]!.startsWith('e=')) {
      const reason = parts[0]!.slice(2);
      throw new ScramError(`SCRAM authentication failed: server error "${/^[\x20-\x7e]{1,64}$/.test(reason) ? reason : 'unreadable'}"`, '28000');
    }
    const signature = decodeBase64(attribute(parts[0], 'v', what));
    for (const extension of parts.slice(1)) checkExtension(extension, what);
    if (signature === null || !safeEqual(signature, state.serverSignature)) {
      throw new ScramError('invalid SCRAM server signature', '28000');
    }
  }
}

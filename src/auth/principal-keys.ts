// The secret a token-login role's database password is made of. Nobody knows it but the
// platform: it is derived (HMAC-SHA-256) from a platform root secret, the server and the role,
// so nothing per role is stored and every gateway process on the host can derive it. The
// server holds only its SCRAM verifier; the gateway logs in with the derived SCRAM keys.
import { createHmac } from 'node:crypto';
import { deriveKeys, type ScramKeys } from './scram/keys.js';
import { formatScramVerifier, DEFAULT_SCRAM_ITERATIONS } from './scram/verifier.js';

export class PrincipalKeys {
  private readonly cache = new Map<string, ScramKeys>();

  constructor(private readonly root: Buffer) {
    if (root.length < 32) throw new RangeError('principal root secret must be at least 32 bytes');
  }

  private derive(label: string, serverId: number, role: string): Buffer {
    return createHmac('sha256', this.root).update(`${label}\0${serverId}\0${role}`).digest();
  }

  /** SCRAM keys for logging in to the server as this role (cached: PBKDF2 runs once per role). */
  keys(serverId: number, role: string): ScramKeys {
    const key = `${serverId}\0${role}`;
    let k = this.cache.get(key);
    if (!k) {
      k = deriveKeys(this.derive('password', serverId, role), this.salt(serverId, role), DEFAULT_SCRAM_ITERATIONS);
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, k);
    }
    return k;
  }

  private salt(serverId: number, role: string): Buffer {
    return this.derive('salt', serverId, role).subarray(0, 16);
  }

  /** The verifier to give the role on the server (`ALTER ROLE ... PASSWORD '<verifier>'`). */
  verifier(serverId: number, role: string): string {
    const k = this.keys(serverId, role);
    return formatScramVerifier({ iterations: DEFAULT_SCRAM_ITERATIONS, salt: this.salt(serverId, role), storedKey: k.storedKey, serverKey: k.serverKey });
  }
}

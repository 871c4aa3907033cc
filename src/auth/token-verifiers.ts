// One IssuerKeys per (issuer, CA bundle) for the life of the process, so logins never fetch
// discovery or keys themselves; each token is checked against the server's identity
// administrator (issuer, audience, object id claim).
import { IssuerKeys, verifyAccessToken } from './tokens/index.js';
import type { IdentityAdminView, TokenIdentity } from './identity.js';

export class TokenVerifiers {
  private readonly issuers = new Map<string, IssuerKeys>();

  private issuer(admin: IdentityAdminView): IssuerKeys {
    const key = `${admin.issuer}\0${admin.caBundle ?? ''}`;
    let keys = this.issuers.get(key);
    if (!keys) {
      keys = new IssuerKeys(admin.issuer, admin.caBundle ? { ca: admin.caBundle } : {});
      if (this.issuers.size > 1000) this.issuers.clear();
      this.issuers.set(key, keys);
    }
    return keys;
  }

  async verify(token: string, admin: IdentityAdminView): Promise<TokenIdentity> {
    const v = await verifyAccessToken(token, { issuer: this.issuer(admin), audience: admin.audience, objectIdClaim: admin.objectIdClaim });
    return { objectId: v.objectId, groups: v.groups };
  }
}

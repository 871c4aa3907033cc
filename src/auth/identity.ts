// Token-login identities as the auth core sees them (SPEC.md §2 administrators/identity): a
// server's identity administrator, the principals bound to its roles, and the verifier shape
// the gateway's token login calls. Declared here, below catalog/ (which loads them) and
// gateway/ (which uses them).

export type PrincipalType = 'user' | 'group' | 'servicePrincipal';

export interface IdentityAdminView {
  readonly issuer: string;
  readonly audience: string;
  readonly objectIdClaim: string;
  readonly caBundle: string | null;
  readonly login: string;
}

export interface PrincipalView {
  readonly objectId: string;
  readonly type: PrincipalType;
}

export interface ServerIdentity {
  /** Null: token logins are off on this server. */
  readonly admin: IdentityAdminView | null;
  /** Principals by role, the identity administrator's own role included. */
  readonly principals: ReadonlyMap<string, PrincipalView>;
}

/** Who a verified token names. */
export interface TokenIdentity {
  readonly objectId: string;
  readonly groups: readonly string[];
}

/** Verifies a token for a server's identity administrator; throws with a reason when it is refused. */
export type TokenVerifier = (token: string, admin: IdentityAdminView) => Promise<TokenIdentity>;

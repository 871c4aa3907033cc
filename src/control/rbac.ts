// Who may call what. Every route names the API roles it admits; there is no implicit allow.
import type { ApiRole } from '../catalog/tokens-repo.js';

export const READ: readonly ApiRole[] = ['Owner', 'Contributor', 'Reader', 'SecurityAdmin'];
/** Creating, changing and deleting servers and their settings. */
export const MANAGE: readonly ApiRole[] = ['Owner', 'Contributor'];
/** Security settings (network rules, TLS, threat, audit, identity): SecurityAdmin too. */
export const SECURE: readonly ApiRole[] = ['Owner', 'Contributor', 'SecurityAdmin'];
/** Platform access itself: API tokens. */
export const OWNER: readonly ApiRole[] = ['Owner'];

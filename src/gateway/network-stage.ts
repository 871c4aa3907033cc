// Step 5: the network verdict for one connection, from the in-memory network view. The
// decision itself is src/network/decide.ts; this file only gathers its inputs.
import { decideNetworkAccess, type ListenerFacts, type NetworkSnapshot, type NetworkVerdict } from '../network/decide.js';
import { findSubnet } from '../network/vnet.js';
import type { NetworkView } from '../network/state.js';

export type { NetworkView } from '../network/state.js';

export type PrivateEndpointKind = 'azure-private-link' | 'aws-vpc-endpoint';

export interface PrivateEndpointIdentity {
  readonly id: string;
  readonly kind: PrivateEndpointKind;
}

/** A server the view knows nothing of yet has no rules: everything is denied. */
const NO_RULES: NetworkSnapshot = {
  publicNetworkAccess: 'Enabled',
  firewall: { match: () => null },
  vnetRules: [],
  privateEndpoints: new Map(),
};

export function judgeNetwork(
  view: NetworkView,
  input: {
    server: string;
    publicNetworkAccess: 'Enabled' | 'Disabled';
    clientAddress: string;
    listener: { kind: 'public' } | { kind: 'private'; vnet: string } | { kind: 'private-link' };
    endpoint: PrivateEndpointIdentity | null;
    user: string;
    database: string;
    ssl: boolean;
  },
): NetworkVerdict {
  const snapshot = view.servers.get(input.server) ?? { ...NO_RULES, publicNetworkAccess: input.publicNetworkAccess };
  let listener: ListenerFacts;
  if (input.endpoint) listener = { kind: 'private-link', endpointId: input.endpoint.id };
  else if (input.listener.kind === 'private') {
    const vnet = view.vnets.get(input.listener.vnet);
    listener = { kind: 'private', vnet: input.listener.vnet, subnet: vnet ? findSubnet(vnet, input.clientAddress) : null };
  } else listener = { kind: 'public' };
  return decideNetworkAccess({ clientAddress: input.clientAddress, listener, user: input.user, database: input.database, ssl: input.ssl }, snapshot);
}

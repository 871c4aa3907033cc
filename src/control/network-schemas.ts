// JSON schemas of the network resources (SPEC.md §2): firewall rules, virtual networks and
// subnets, VNet rules, private endpoint connections, the access check.
const text = (maxLength: number) => ({ type: 'string', maxLength }) as const;
const timestamps = {
  createdAt: { type: 'string', format: 'date-time' },
  updatedAt: { type: 'string', format: 'date-time' },
} as const;

export const serverChildParams = {
  type: 'object',
  required: ['name', 'rule'],
  properties: { name: text(200), rule: { ...text(200), description: 'rule name, or private endpoint id' } },
} as const;

export const vnetParams = {
  type: 'object',
  required: ['vnet'],
  properties: { vnet: text(200) },
} as const;

export const subnetParams = {
  type: 'object',
  required: ['vnet', 'subnet'],
  properties: { vnet: text(200), subnet: text(200) },
} as const;

const ip = text(100);

export const firewallRuleSchema = {
  type: 'object',
  properties: { id: { type: 'string' }, name: { type: 'string' }, startIpAddress: { type: 'string' }, endIpAddress: { type: 'string' }, ...timestamps },
} as const;

export const createFirewallRuleBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'startIpAddress', 'endIpAddress'],
  properties: { name: text(200), startIpAddress: ip, endIpAddress: ip },
} as const;

export const putFirewallRuleBody = {
  type: 'object',
  additionalProperties: false,
  required: ['startIpAddress', 'endIpAddress'],
  properties: { startIpAddress: ip, endIpAddress: ip },
} as const;

export const patchFirewallRuleBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { startIpAddress: ip, endIpAddress: ip },
} as const;

export const subnetSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: '{virtualNetwork}/subnets/{subnet}: what VNet rules name' },
    name: { type: 'string' },
    addressPrefix: { type: 'string' },
    serviceEndpoint: { type: 'boolean' },
    ...timestamps,
  },
} as const;

export const vnetSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    addressPrefixes: { type: 'array', items: { type: 'string' } },
    listenAddress: { type: ['string', 'null'] },
    listenerState: {
      type: 'string',
      enum: ['Ready', 'Pending', 'Failed', 'None', 'Unknown'],
      description: "whether the gateway receives the network's traffic on its listen address",
    },
    listenerProblem: { type: 'string', description: 'why the listener is not Ready' },
    subnets: { type: 'array', items: subnetSchema },
    ...timestamps,
  },
} as const;

const prefixes = { type: 'array', minItems: 1, maxItems: 32, items: text(100) } as const;
const listenAddress = { type: ['string', 'null'], maxLength: 100, description: 'the address the gateway listens on for this network' } as const;

export const putVnetBody = {
  type: 'object',
  additionalProperties: false,
  required: ['addressPrefixes'],
  properties: { addressPrefixes: prefixes, listenAddress },
} as const;

export const patchVnetBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { addressPrefixes: prefixes, listenAddress },
} as const;

export const putSubnetBody = {
  type: 'object',
  additionalProperties: false,
  required: ['addressPrefix'],
  properties: { addressPrefix: text(100), serviceEndpoint: { type: 'boolean' } },
} as const;

export const patchSubnetBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { addressPrefix: text(100), serviceEndpoint: { type: 'boolean' } },
} as const;

export const vnetRuleSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    virtualNetworkSubnetId: { type: 'string' },
    ignoreMissingVnetServiceEndpoint: { type: 'boolean' },
    state: { type: 'string', enum: ['Initializing', 'InProgress', 'Ready', 'Deleting', 'Unknown'] },
    stateReason: { type: 'string', description: 'why the rule is not Ready (e.g. the gateway cannot serve its network)' },
    ...timestamps,
  },
} as const;

const vnetRuleProperties = { virtualNetworkSubnetId: text(300), ignoreMissingVnetServiceEndpoint: { type: 'boolean' } } as const;

export const createVnetRuleBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'virtualNetworkSubnetId'],
  properties: { name: text(200), ...vnetRuleProperties },
} as const;

export const putVnetRuleBody = {
  type: 'object',
  additionalProperties: false,
  required: ['virtualNetworkSubnetId'],
  properties: vnetRuleProperties,
} as const;

const endpointKind = { type: 'string', enum: ['azure-private-link', 'aws-vpc-endpoint'] } as const;
const endpointStatus = { type: 'string', enum: ['Pending', 'Approved', 'Rejected', 'Disconnected'] } as const;

export const privateEndpointConnectionSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    privateEndpoint: { type: 'object', properties: { id: { type: 'string' }, kind: endpointKind } },
    status: endpointStatus,
    description: { type: 'string' },
    ...timestamps,
  },
} as const;

// Both may be sent without any body at all.
export const putPrivateEndpointBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    privateEndpoint: { type: 'object', additionalProperties: false, properties: { kind: endpointKind } },
    status: endpointStatus,
    description: text(500),
  },
} as const;

export const decisionBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { description: text(500) },
} as const;

export const accessCheckQuery = {
  type: 'object',
  additionalProperties: false,
  required: ['ip'],
  properties: {
    ip: ip,
    listener: { ...text(200), description: 'public (default), private-link, or a virtual network name' },
    endpoint: { ...text(200), description: 'private-link: the endpoint id (LinkID or VPC endpoint id)' },
    user: text(200),
    database: text(200),
    ssl: { type: 'string', enum: ['true', 'false'] },
  },
} as const;

export const accessCheckSchema = {
  type: 'object',
  properties: {
    server: { type: 'string' },
    ip: { type: 'string' },
    listener: { type: 'string' },
    user: { type: 'string' },
    database: { type: 'string' },
    ssl: { type: 'boolean' },
    allow: { type: 'boolean' },
    reason: { type: 'string' },
    rule: { type: 'string' },
    subnet: { type: 'string' },
    explanation: { type: 'string' },
    error: { type: 'object', properties: { sqlstate: { type: 'string' }, message: { type: 'string' } } },
  },
} as const;

// JSON schemas of the REST resources (SPEC.md §2); they validate requests and feed /openapi.json.
export const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      required: ['code', 'message'],
    },
  },
  required: ['error'],
} as const;

const toggle = { type: 'string', enum: ['Enabled', 'Disabled'] } as const;
const minimalTls = { type: 'string', enum: ['TLS1_2', 'TLS1_3', 'TLSEnforcementDisabled'] } as const;
const poolMode = { type: 'string', enum: ['none', 'session', 'transaction'] } as const;
const poolSize = { type: 'integer', minimum: 1, maximum: 10000, description: 'server connections per (role, database) when pooling' } as const;

export const serverSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    fullyQualifiedDomainName: { type: 'string' },
    administratorLogin: { type: 'string' },
    sslEnforcement: toggle,
    minimalTlsVersion: minimalTls,
    publicNetworkAccess: toggle,
    passwordAuth: toggle,
    poolMode,
    poolSize,
    mode: { type: 'string', enum: ['managed', 'attached'] },
    endpoints: { type: 'array', items: { type: 'string' }, description: 'attached: HOST:PORT of every node' },
    primaryEndpoint: { type: ['string', 'null'], description: 'attached: the node this platform last found writable' },
    maintenanceUser: { type: ['string', 'null'] },
    state: { type: 'string', enum: ['Creating', 'Ready', 'Stopped', 'Disabled', 'Inaccessible', 'Dropping'] },
    version: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const createServerBody = {
  type: 'object',
  additionalProperties: false,
  // administratorLoginPassword is required for a managed server (the service says so); an
  // attached one needs endpoints, tlsCa and the maintenance login instead.
  required: ['name', 'administratorLogin'],
  properties: {
    name: { type: 'string', maxLength: 200 },
    administratorLogin: { type: 'string', maxLength: 200 },
    administratorLoginPassword: { type: 'string', maxLength: 1000 },
    sslEnforcement: toggle,
    minimalTlsVersion: minimalTls,
    publicNetworkAccess: toggle,
    mode: { type: 'string', enum: ['managed', 'attached'] },
    endpoints: { type: 'array', items: { type: 'string', maxLength: 300 }, maxItems: 16 },
    tlsCa: { type: 'string', maxLength: 100_000 },
    maintenanceUser: { type: 'string', maxLength: 63 },
    maintenancePassword: { type: 'string', maxLength: 1000, writeOnly: true },
  },
} as const;

export const updateServerBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    administratorLoginPassword: { type: 'string', maxLength: 1000 },
    sslEnforcement: toggle,
    minimalTlsVersion: minimalTls,
    publicNetworkAccess: toggle,
    passwordAuth: toggle,
    poolMode,
    poolSize,
  },
} as const;

const count = { type: 'integer' } as const;

/** One pool of a server: GET /servers/{name}/pool (gateway/pool/types.ts PoolStats). */
export const poolStatsSchema = {
  type: 'object',
  properties: {
    server: { type: 'string' },
    mode: poolMode,
    user: { type: 'string' },
    database: { type: 'string' },
    clients: { ...count, description: 'client sessions of this pool now' },
    waiting: { ...count, description: 'clients waiting for a server connection now' },
    active: { ...count, description: 'server connections lent to a client now' },
    idle: { ...count, description: 'server connections ready to be lent' },
    opening: { ...count, description: 'server connections being opened or reset' },
    poolSize: count,
    waits: { ...count, description: 'times a client had to wait, since the pool was made' },
    waitMs: { type: 'number', description: 'total time clients waited, milliseconds' },
    opened: { ...count, description: 'server connections opened, since the pool was made' },
    reused: { ...count, description: 'warm connections handed to a client' },
  },
} as const;

export const serverPoolSchema = {
  type: 'object',
  properties: { server: { type: 'string' }, poolMode, poolSize, pools: { type: 'array', items: poolStatsSchema } },
} as const;

export const nameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 200 } },
} as const;

export const tokenSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    createdBy: { type: ['string', 'null'] },
    token: { type: 'string', description: 'Shown once, at creation.' },
  },
} as const;

export const createTokenBody = {
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: {
    role: { type: 'string', enum: ['Owner', 'Contributor', 'Reader', 'SecurityAdmin'] },
    name: { type: 'string', minLength: 1, maxLength: 100 },
  },
} as const;

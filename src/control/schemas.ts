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
    state: { type: 'string', enum: ['Creating', 'Ready', 'Stopped', 'Disabled', 'Inaccessible', 'Dropping'] },
    version: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const createServerBody = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'administratorLogin', 'administratorLoginPassword'],
  properties: {
    name: { type: 'string', maxLength: 200 },
    administratorLogin: { type: 'string', maxLength: 200 },
    administratorLoginPassword: { type: 'string', maxLength: 1000 },
    sslEnforcement: toggle,
    minimalTlsVersion: minimalTls,
    publicNetworkAccess: toggle,
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
  },
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

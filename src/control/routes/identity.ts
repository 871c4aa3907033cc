// /servers/{name}/administrators/identity and /servers/{name}/identityPrincipals.
import type { FastifyInstance } from 'fastify';
import type { IdentityService, IdentityAdminInput, PrincipalInput } from '../../services/identity-service.js';
import type { IdentityAdmin, IdentityPrincipal } from '../../catalog/identity-repo.js';
import { READ } from '../rbac.js';
import { errorResponses } from '../app.js';
import type { ApiRole } from '../../catalog/tokens-repo.js';

/** Identities decide who may log in: SecurityAdmin and Owner only (SPEC: not Contributor). */
const IDENTITY: readonly ApiRole[] = ['Owner', 'SecurityAdmin'];
const principalType = { type: 'string', enum: ['user', 'group', 'servicePrincipal'] } as const;
const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 200 } } } as const;

const adminSchema = {
  type: 'object',
  properties: {
    issuer: { type: 'string' },
    audience: { type: 'string' },
    login: { type: 'string' },
    objectId: { type: 'string' },
    type: principalType,
    objectIdClaim: { type: 'string' },
    customCa: { type: 'boolean' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;
const principalSchema = {
  type: 'object',
  properties: { role: { type: 'string' }, objectId: { type: 'string' }, type: principalType, createdAt: { type: 'string', format: 'date-time' } },
} as const;

const adminView = (a: IdentityAdmin) => ({
  issuer: a.issuer,
  audience: a.audience,
  login: a.login,
  objectId: a.objectId,
  type: a.type,
  objectIdClaim: a.objectIdClaim,
  customCa: a.caBundle !== null,
  updatedAt: a.updatedAt.toISOString(),
});
const principalView = (p: IdentityPrincipal) => ({ role: p.role, objectId: p.objectId, type: p.type, createdAt: p.createdAt.toISOString() });

export function identityRoutes(app: FastifyInstance, service: IdentityService): void {
  const tags = ['identity'];
  app.get<{ Params: { name: string } }>(
    '/servers/:name/administrators/identity',
    {
      config: { roles: READ },
      schema: { tags, params: nameParams, response: { 200: adminSchema, ...errorResponses } },
    },
    async (req) => adminView(await service.getAdmin(req.params.name)),
  );

  app.put<{ Params: { name: string }; Body: IdentityAdminInput }>(
    '/servers/:name/administrators/identity',
    {
      config: { roles: IDENTITY, action: 'identityAdmin.set' },
      schema: {
        tags,
        params: nameParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['issuer', 'audience', 'login', 'objectId'],
          properties: {
            issuer: { type: 'string', maxLength: 2048 },
            audience: { type: 'string', maxLength: 1024 },
            login: { type: 'string', maxLength: 200 },
            objectId: { type: 'string', maxLength: 256 },
            type: principalType,
            objectIdClaim: { type: 'string', enum: ['oid', 'sub'] },
            caBundle: { type: 'string', maxLength: 262144, description: 'PEM CA certificates for a private issuer' },
          },
        },
        response: { 200: adminSchema, ...errorResponses },
      },
    },
    async (req) => adminView(await service.setAdmin(req.params.name, req.body)),
  );

  app.delete<{ Params: { name: string } }>(
    '/servers/:name/administrators/identity',
    {
      config: { roles: IDENTITY, action: 'identityAdmin.delete' },
      schema: { tags, params: nameParams, response: { 204: { type: 'null' }, ...errorResponses } },
    },
    async (req, reply) => {
      await service.deleteAdmin(req.params.name);
      return reply.code(204).send();
    },
  );

  app.get<{ Params: { name: string } }>(
    '/servers/:name/identityPrincipals',
    {
      config: { roles: READ },
      schema: {
        tags,
        params: nameParams,
        response: { 200: { type: 'object', properties: { value: { type: 'array', items: principalSchema } } }, ...errorResponses },
      },
    },
    async (req) => ({ value: (await service.listPrincipals(req.params.name)).map(principalView) }),
  );

  app.post<{ Params: { name: string }; Body: PrincipalInput }>(
    '/servers/:name/identityPrincipals',
    {
      config: { roles: IDENTITY, action: 'identityPrincipal.create' },
      schema: {
        tags,
        params: nameParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['role', 'objectId', 'type'],
          properties: { role: { type: 'string', maxLength: 200 }, objectId: { type: 'string', maxLength: 256 }, type: principalType },
        },
        response: { 201: principalSchema, ...errorResponses },
      },
    },
    async (req, reply) => reply.code(201).send(principalView(await service.addPrincipal(req.params.name, req.body))),
  );

  app.delete<{ Params: { name: string; role: string } }>(
    '/servers/:name/identityPrincipals/:role',
    {
      config: { roles: IDENTITY, action: 'identityPrincipal.delete' },
      schema: {
        tags,
        params: { type: 'object', properties: { name: { type: 'string' }, role: { type: 'string', maxLength: 200 } } },
        response: { 204: { type: 'null' }, ...errorResponses },
      },
    },
    async (req, reply) => {
      await service.deletePrincipal(req.params.name, req.params.role);
      return reply.code(204).send();
    },
  );
}

// Platform-level routes: API tokens, the CA certificate, health and metrics.
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { ApiRole, TokensRepo } from '../../catalog/tokens-repo.js';
import { notFound } from '../../services/errors.js';
import { OWNER, READ } from '../rbac.js';
import { createTokenBody, tokenSchema } from '../schemas.js';
import { errorResponses } from '../app.js';
import type { HealthReport } from '../../services/platform-service.js';

export function platformRoutes(
  app: FastifyInstance,
  deps: {
    tokens: TokensRepo;
    caPem: () => string;
    metrics: Registry;
    health: () => HealthReport;
    rotateCertificate: () => Promise<{ fingerprint256: string; validTo: string }>;
  },
): void {
  app.post(
    '/gateway/certificate/rotate',
    {
      config: { roles: OWNER, action: 'gateway.certificate.rotate' },
      schema: {
        tags: ['platform'],
        response: { 200: { type: 'object', properties: { fingerprint256: { type: 'string' }, validTo: { type: 'string' } } }, ...errorResponses },
      },
    },
    async () => deps.rotateCertificate(),
  );

  app.post<{ Body: { role: ApiRole; name?: string } }>(
    '/tokens',
    {
      config: { roles: OWNER, action: 'token.create' },
      schema: { tags: ['tokens'], body: createTokenBody, response: { 201: tokenSchema, ...errorResponses } },
    },
    async (req, reply) => {
      const { token, info } = await deps.tokens.create(req.body.role, req.body.name ?? `${req.body.role.toLowerCase()}-token`, req.principal?.id ?? null);
      return reply.code(201).send({ ...info, createdAt: info.createdAt.toISOString(), token });
    },
  );

  app.get(
    '/tokens',
    {
      config: { roles: OWNER },
      schema: { tags: ['tokens'], response: { 200: { type: 'object', properties: { value: { type: 'array', items: tokenSchema } } }, ...errorResponses } },
    },
    async () => ({ value: (await deps.tokens.list()).map((t) => ({ ...t, createdAt: t.createdAt.toISOString() })) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/tokens/:id',
    {
      config: { roles: OWNER, action: 'token.revoke' },
      schema: { tags: ['tokens'], params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } },
    },
    async (req, reply) => {
      if (!(await deps.tokens.revoke(req.params.id))) throw notFound(`Token '${req.params.id}' was not found.`);
      return reply.code(204).send();
    },
  );

  // Who the caller is: the console shows what the token's role may change.
  app.get(
    '/me',
    {
      config: { roles: READ },
      schema: {
        tags: ['tokens'],
        response: { 200: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } } }, ...errorResponses },
      },
    },
    async (req) => ({ id: req.principal!.id, name: req.principal!.name, role: req.principal!.role }),
  );

  app.get('/ca', { config: { roles: READ }, schema: { tags: ['platform'] } }, async (_req, reply) => reply.type('application/x-pem-file').send(deps.caPem()));

  // Liveness and fail-static state: public, holds nothing secret.
  app.get('/health', { schema: { tags: ['platform'] } }, async (_req, reply) => {
    const h = deps.health();
    return reply.code(h.status === 'ok' ? 200 : 503).send(h);
  });

  // Any API token (Reader and up): the counters tell an attacker what the gateway refused and why.
  // It still answers while the catalog that holds the tokens is down (fail-static must be visible
  // then), for a token that authenticated within the last hour.
  app.get('/metrics', { config: { roles: READ, whileCatalogDown: true }, schema: { tags: ['platform'] } }, async (_req, reply) =>
    reply.type(deps.metrics.contentType).send(await deps.metrics.metrics()),
  );
}

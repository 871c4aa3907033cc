// The REST API: HTTPS with the platform CA's certificate, bearer API tokens, RBAC on every
// route, JSON errors {"error":{"code","message"}}, OpenAPI at /openapi.json, and an
// admin-action event for every mutating call.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import type { ApiRole, ApiTokenInfo, TokensRepo } from '../catalog/tokens-repo.js';
import { PlatformError, type PlatformErrorCode } from '../services/errors.js';
import type { EventBus } from '../events/bus.js';
import { now } from '../events/bus.js';
import { errorSchema } from './schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** API roles admitted; a route without it is public. */
    roles?: readonly ApiRole[];
    /** Name of the admin action a mutating route performs, e.g. `server.create`. */
    action?: string;
    /** A read-only route that must answer while the catalog is unreachable (metrics show
     * fail-static): a token that authenticated within the last hour is accepted then. */
    whileCatalogDown?: boolean;
  }
  interface FastifyRequest {
    principal?: ApiTokenInfo;
    /** What a route adds to its admin-action record (e.g. the settings it changed, old and new). */
    actionDetails?: Record<string, unknown>;
  }
}

const STATUS: Record<PlatformErrorCode, number> = {
  InvalidArgument: 400,
  Unauthenticated: 401,
  Forbidden: 403,
  NotFound: 404,
  Conflict: 409,
  Internal: 500,
};

export interface ApiOptions {
  readonly tls: { cert: string; key: string };
  readonly tokens: TokensRepo;
  readonly bus: EventBus;
  readonly logLevel?: string;
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    https: { cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' },
    logger: { level: opts.logLevel ?? 'warn', redact: ['req.headers.authorization'] },
    bodyLimit: 256 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'pgwarden API', version: '1', description: 'Security perimeter for self-hosted PostgreSQL.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.addHook('onRequest', async (req, reply) => {
    const roles = req.routeOptions.config.roles;
    if (!roles) return;
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    let principal: ApiTokenInfo | null = null;
    if (m) {
      try {
        principal = await opts.tokens.authenticate(m[1]!);
      } catch (err) {
        if (!req.routeOptions.config.whileCatalogDown) throw err;
        principal = opts.tokens.rememberedWhileCatalogDown(m[1]!);
      }
    }
    if (!principal) {
      return reply.code(401).send(errorBody('Unauthenticated', 'A valid API token is required (Authorization: Bearer <token>).'));
    }
    req.principal = principal;
    if (!roles.includes(principal.role)) {
      return reply.code(403).send(errorBody('Forbidden', `The ${principal.role} role is not allowed to perform this operation.`));
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    const action = req.routeOptions.config.action;
    if (!action || !req.principal) return;
    const ok = reply.statusCode < 400;
    opts.bus.publish({
      type: 'admin.action',
      time: now(),
      actor: { tokenId: req.principal.id, name: req.principal.name, role: req.principal.role },
      action,
      target: targetOf(req),
      outcome: ok ? 'success' : 'failure',
      details: { ...req.actionDetails, method: req.method, path: req.url.split('?')[0], status: reply.statusCode },
    });
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof PlatformError) {
      return reply.code(STATUS[err.code]).send(errorBody(err.code, err.message));
    }
    const e = err as { validation?: unknown; statusCode?: number; message: string; code?: string };
    if (e.validation) return reply.code(400).send(errorBody('InvalidArgument', e.message));
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.code(e.statusCode).send(errorBody(e.code ?? 'BadRequest', e.message));
    }
    reply.log.error({ err }, 'internal error');
    return reply.code(500).send(errorBody('Internal', 'An internal error occurred.'));
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('NotFound', `No route ${req.method} ${req.url.split('?')[0]}.`)));

  return app;
}

/** The resource an admin action touched: the request path, plus the new child's name when a
 * POST creates one in a collection (POST /servers/S/firewallRules {name: R} → .../firewallRules/R). */
function targetOf(req: FastifyRequest): string {
  const path = req.url.split('?')[0] ?? '';
  const body = req.body as Record<string, unknown> | undefined;
  if (req.method === 'POST' && typeof body?.name === 'string' && !/\/(stop|start|approve|reject|rotate)$/.test(path)) {
    return `${path}/${body.name}`;
  }
  return path;
}

export const errorResponses = { 400: errorSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema, 409: errorSchema };

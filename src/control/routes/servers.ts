// /servers: create, list, show, update, delete, stop, start; the gateway's pools of a server.
import type { FastifyInstance } from 'fastify';
import { settingChanges, type AttachServerInput, type ServerService, type CreateServerInput, type UpdateServerInput } from '../../services/server-service.js';
import type { ServerRecord } from '../../catalog/servers-repo.js';
import { MANAGE, READ } from '../rbac.js';
import { createServerBody, nameParams, serverPoolSchema, serverSchema, updateServerBody } from '../schemas.js';
import { errorResponses } from '../app.js';

export interface ServerView {
  id: string;
  name: string;
  fullyQualifiedDomainName: string;
  administratorLogin: string;
  sslEnforcement: string;
  minimalTlsVersion: string;
  publicNetworkAccess: string;
  passwordAuth: string;
  poolMode: string;
  poolSize: number;
  mode: string;
  endpoints: string[];
  primaryEndpoint: string | null;
  maintenanceUser: string | null;
  state: string;
  version: string;
  createdAt: string;
  updatedAt: string;
}

/** `POST /servers`: a managed server, or with `"mode": "attached"` one an HA engine runs. */
type CreateBody = (CreateServerInput & { mode?: 'managed' }) | (AttachServerInput & { mode: 'attached' });

export function serverView(s: ServerRecord, domain: string, version: string, primary?: (id: number) => string | null): ServerView {
  return {
    id: `/servers/${s.name}`,
    name: s.name,
    fullyQualifiedDomainName: `${s.name}.${domain}`,
    administratorLogin: s.administratorLogin,
    sslEnforcement: s.sslEnforcement,
    minimalTlsVersion: s.minimalTlsVersion,
    publicNetworkAccess: s.publicNetworkAccess,
    passwordAuth: s.passwordAuth,
    poolMode: s.poolMode,
    poolSize: s.poolSize,
    mode: s.mode ?? 'managed',
    endpoints: [...(s.endpoints ?? [])],
    primaryEndpoint: s.mode === 'attached' ? (primary?.(s.id) ?? null) : null,
    maintenanceUser: s.maintenanceUser ?? null,
    state: s.state,
    version,
    createdAt: s.createdAt.toISOString(),
    updatedAt: s.updatedAt.toISOString(),
  };
}

export function serverRoutes(app: FastifyInstance, service: ServerService, domain: string, version: string): void {
  const view = (s: ServerRecord) => serverView(s, domain, version, (id) => service.primaryEndpoint(id));
  const tags = ['servers'];

  app.get(
    '/servers',
    {
      config: { roles: READ },
      schema: { tags, response: { 200: { type: 'object', properties: { value: { type: 'array', items: serverSchema } } }, ...errorResponses } },
    },
    async () => ({ value: (await service.list()).map(view) }),
  );

  app.post<{ Body: CreateBody }>(
    '/servers',
    {
      config: { roles: MANAGE, action: 'server.create' },
      schema: { tags, body: createServerBody, response: { 201: serverSchema, ...errorResponses } },
    },
    async (req, reply) => {
      const b = req.body;
      const created = b.mode === 'attached' ? await service.attach(b) : await service.create(b);
      return reply.code(201).send(view(created));
    },
  );

  app.get<{ Params: { name: string } }>(
    '/servers/:name',
    {
      config: { roles: READ },
      schema: { tags, params: nameParams, response: { 200: serverSchema, ...errorResponses } },
    },
    async (req) => view(await service.get(req.params.name)),
  );

  app.patch<{ Params: { name: string }; Body: UpdateServerInput }>(
    '/servers/:name',
    {
      config: { roles: MANAGE, action: 'server.update' },
      schema: { tags, params: nameParams, body: updateServerBody, response: { 200: serverSchema, ...errorResponses } },
    },
    async (req) => {
      const { before, after } = await service.updateTracked(req.params.name, req.body);
      req.actionDetails = { changes: settingChanges(before, after) };
      return view(after);
    },
  );

  app.get<{ Params: { name: string } }>(
    '/servers/:name/pool',
    {
      config: { roles: READ },
      schema: { tags, params: nameParams, response: { 200: serverPoolSchema, ...errorResponses } },
    },
    async (req) => service.pool(req.params.name),
  );

  app.delete<{ Params: { name: string } }>(
    '/servers/:name',
    {
      config: { roles: MANAGE, action: 'server.delete' },
      schema: { tags, params: nameParams, response: { 204: { type: 'null' }, ...errorResponses } },
    },
    async (req, reply) => {
      await service.delete(req.params.name);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { name: string } }>(
    '/servers/:name/stop',
    {
      config: { roles: MANAGE, action: 'server.stop' },
      schema: { tags, params: nameParams, response: { 200: serverSchema, ...errorResponses } },
    },
    async (req) => view(await service.stop(req.params.name)),
  );

  app.post<{ Params: { name: string } }>(
    '/servers/:name/start',
    {
      config: { roles: MANAGE, action: 'server.start' },
      schema: { tags, params: nameParams, response: { 200: serverSchema, ...errorResponses } },
    },
    async (req) => view(await service.start(req.params.name)),
  );
}

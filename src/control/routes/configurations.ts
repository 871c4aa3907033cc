// /servers/{name}/configurations: server parameters from the allow-list (Reader reads; Owner and
// Contributor set), and /servers/{name}/extensions: extensions the platform creates on the
// administrators' behalf when they are on the server's pgwarden.extensions.
import type { FastifyInstance } from 'fastify';
import type { ConfigurationService } from '../../services/configuration-service.js';
import { MANAGE, READ } from '../rbac.js';
import { errorResponses } from '../app.js';

const tags = ['configurations'];

export const configurationSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    value: { type: 'string' },
    defaultValue: { type: 'string' },
    source: { type: 'string', enum: ['user-override', 'system-default'] },
    dataType: { type: 'string', enum: ['boolean', 'integer', 'real', 'enumeration', 'string'] },
    allowedValues: { type: 'string', description: 'a range (min-max, in unit) or a comma-separated list' },
    unit: { type: 'string', nullable: true },
    isDynamic: { type: 'boolean', description: 'applied with a reload; false: needs a restart' },
    pendingRestart: { type: 'boolean', description: 'set, but the running server still has the old value until it restarts' },
    description: { type: 'string' },
  },
} as const;

const serverParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 200 } } } as const;
const paramParams = {
  type: 'object',
  required: ['name', 'parameter'],
  properties: { name: { type: 'string', maxLength: 200 }, parameter: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

interface SetBody {
  value: string;
  restart?: boolean;
}

export function configurationRoutes(app: FastifyInstance, service: ConfigurationService): void {
  const withId = <T extends { name: string }>(server: string, c: T) => ({ id: `/servers/${server}/configurations/${c.name}`, ...c });

  app.get<{ Params: { name: string } }>(
    '/servers/:name/configurations',
    {
      config: { roles: READ },
      schema: {
        tags,
        params: serverParams,
        response: { 200: { type: 'object', properties: { value: { type: 'array', items: configurationSchema } } }, ...errorResponses },
      },
    },
    async (req) => ({ value: (await service.list(req.params.name)).map((c) => withId(req.params.name, c)) }),
  );

  app.get<{ Params: { name: string; parameter: string } }>(
    '/servers/:name/configurations/:parameter',
    {
      config: { roles: READ },
      schema: { tags, params: paramParams, response: { 200: configurationSchema, ...errorResponses } },
    },
    async (req) => withId(req.params.name, await service.show(req.params.name, req.params.parameter)),
  );

  app.put<{ Params: { name: string; parameter: string }; Body: SetBody; Querystring: { restart?: boolean } }>(
    '/servers/:name/configurations/:parameter',
    {
      config: { roles: MANAGE, action: 'configuration.set' },
      schema: {
        tags,
        params: paramParams,
        querystring: { type: 'object', properties: { restart: { type: 'boolean' } } },
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['value'],
          properties: {
            value: { type: 'string', maxLength: 1024 },
            restart: { type: 'boolean', description: 'restart the server when the parameter needs it (open sessions end)' },
          },
        },
        response: { 200: configurationSchema, ...errorResponses },
      },
    },
    async (req) => {
      const restart = req.body.restart ?? req.query.restart ?? false;
      return withId(req.params.name, await service.set(req.params.name, req.params.parameter, req.body.value, restart));
    },
  );

  app.post<{ Params: { name: string }; Body: { name: string; database?: string } }>(
    '/servers/:name/extensions',
    {
      config: { roles: MANAGE, action: 'extension.create' },
      schema: {
        tags,
        params: serverParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: { name: { type: 'string', minLength: 1, maxLength: 63 }, database: { type: 'string', minLength: 1, maxLength: 63 } },
        },
        response: {
          200: {
            type: 'object',
            properties: { name: { type: 'string' }, database: { type: 'string' }, version: { type: 'string' }, created: { type: 'boolean' } },
          },
          ...errorResponses,
        },
      },
    },
    async (req) => service.createExtension(req.params.name, req.body.name, req.body.database ?? 'postgres'),
  );
}

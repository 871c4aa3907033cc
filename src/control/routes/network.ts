// Server network perimeter: /servers/{name}/firewallRules, /virtualNetworkRules,
// /privateEndpointConnections, /accessCheck; and /virtualNetworks (virtual-networks.ts).
// The child's path parameter is `rule` (for private endpoints: the endpoint id) so the
// admin-action event names it.
import type { FastifyInstance } from 'fastify';
import type { AccessCheckInput, FirewallRuleInput, NetworkService, PrivateEndpointInput, VnetRuleInput } from '../../services/network-service.js';
import { READ, SECURE } from '../rbac.js';
import { nameParams } from '../schemas.js';
import { errorResponses } from '../app.js';
import * as s from '../network-schemas.js';
import { firewallRuleView, privateEndpointView, vnetRuleView } from './network-views.js';
import { virtualNetworkRoutes } from './virtual-networks.js';

type ServerParams = { Params: { name: string } };
type ChildParams = { Params: { name: string; rule: string } };
const list = (items: object) => ({ type: 'object', properties: { value: { type: 'array', items } } }) as const;
const noContent = { 204: { type: 'null' }, ...errorResponses } as const;

export function networkRoutes(app: FastifyInstance, network: NetworkService): void {
  firewallRuleRoutes(app, network);
  vnetRuleRoutes(app, network);
  privateEndpointRoutes(app, network);
  accessCheckRoute(app, network);
  virtualNetworkRoutes(app, network.virtualNetworks);
}

function firewallRuleRoutes(app: FastifyInstance, network: NetworkService): void {
  const tags = ['firewall rules'];
  const base = '/servers/:name/firewallRules';
  const one = { 200: s.firewallRuleSchema, 201: s.firewallRuleSchema, ...errorResponses };

  app.get<ServerParams>(
    base,
    {
      config: { roles: READ },
      schema: { tags, params: nameParams, response: { 200: list(s.firewallRuleSchema), ...errorResponses } },
    },
    async (req) => ({ value: (await network.listFirewallRules(req.params.name)).map((r) => firewallRuleView(req.params.name, r)) }),
  );

  app.post<ServerParams & { Body: FirewallRuleInput & { name: string } }>(
    base,
    {
      config: { roles: SECURE, action: 'firewallRule.create' },
      schema: { tags, params: nameParams, body: s.createFirewallRuleBody, response: one },
    },
    async (req, reply) => {
      const { name, ...range } = req.body;
      return reply.code(201).send(firewallRuleView(req.params.name, await network.createFirewallRule(req.params.name, name, range)));
    },
  );

  app.get<ChildParams>(
    `${base}/:rule`,
    {
      config: { roles: READ },
      schema: { tags, params: s.serverChildParams, response: one },
    },
    async (req) => firewallRuleView(req.params.name, await network.getFirewallRule(req.params.name, req.params.rule)),
  );

  app.put<ChildParams & { Body: FirewallRuleInput }>(
    `${base}/:rule`,
    {
      config: { roles: SECURE, action: 'firewallRule.write' },
      schema: { tags, params: s.serverChildParams, body: s.putFirewallRuleBody, response: one },
    },
    async (req, reply) => {
      const { rule, created } = await network.putFirewallRule(req.params.name, req.params.rule, req.body);
      return reply.code(created ? 201 : 200).send(firewallRuleView(req.params.name, rule));
    },
  );

  app.patch<ChildParams & { Body: Partial<FirewallRuleInput> }>(
    `${base}/:rule`,
    {
      config: { roles: SECURE, action: 'firewallRule.update' },
      schema: { tags, params: s.serverChildParams, body: s.patchFirewallRuleBody, response: one },
    },
    async (req) => firewallRuleView(req.params.name, await network.patchFirewallRule(req.params.name, req.params.rule, req.body)),
  );

  app.delete<ChildParams>(
    `${base}/:rule`,
    {
      config: { roles: SECURE, action: 'firewallRule.delete' },
      schema: { tags, params: s.serverChildParams, response: noContent },
    },
    async (req, reply) => {
      await network.deleteFirewallRule(req.params.name, req.params.rule);
      return reply.code(204).send();
    },
  );
}

function vnetRuleRoutes(app: FastifyInstance, network: NetworkService): void {
  const tags = ['virtual network rules'];
  const base = '/servers/:name/virtualNetworkRules';
  const one = { 200: s.vnetRuleSchema, 201: s.vnetRuleSchema, ...errorResponses };

  app.get<ServerParams>(
    base,
    {
      config: { roles: READ },
      schema: { tags, params: nameParams, response: { 200: list(s.vnetRuleSchema), ...errorResponses } },
    },
    async (req) => ({ value: (await network.listVnetRules(req.params.name)).map((r) => vnetRuleView(req.params.name, r)) }),
  );

  app.post<ServerParams & { Body: VnetRuleInput & { name: string } }>(
    base,
    {
      config: { roles: SECURE, action: 'virtualNetworkRule.create' },
      schema: { tags, params: nameParams, body: s.createVnetRuleBody, response: one },
    },
    async (req, reply) => {
      const { name, ...input } = req.body;
      const { rule } = await network.writeVnetRule(req.params.name, name, input, false);
      return reply.code(201).send(vnetRuleView(req.params.name, rule));
    },
  );

  app.get<ChildParams>(
    `${base}/:rule`,
    {
      config: { roles: READ },
      schema: { tags, params: s.serverChildParams, response: one },
    },
    async (req) => vnetRuleView(req.params.name, await network.getVnetRule(req.params.name, req.params.rule)),
  );

  app.put<ChildParams & { Body: VnetRuleInput }>(
    `${base}/:rule`,
    {
      config: { roles: SECURE, action: 'virtualNetworkRule.write' },
      schema: { tags, params: s.serverChildParams, body: s.putVnetRuleBody, response: one },
    },
    async (req, reply) => {
      const { rule, created } = await network.writeVnetRule(req.params.name, req.params.rule, req.body, true);
      return reply.code(created ? 201 : 200).send(vnetRuleView(req.params.name, rule));
    },
  );

  app.delete<ChildParams>(
    `${base}/:rule`,
    {
      config: { roles: SECURE, action: 'virtualNetworkRule.delete' },
      schema: { tags, params: s.serverChildParams, response: noContent },
    },
    async (req, reply) => {
      await network.deleteVnetRule(req.params.name, req.params.rule);
      return reply.code(204).send();
    },
  );
}

function privateEndpointRoutes(app: FastifyInstance, network: NetworkService): void {
  const tags = ['private endpoint connections'];
  const base = '/servers/:name/privateEndpointConnections';
  const one = { 200: s.privateEndpointConnectionSchema, 201: s.privateEndpointConnectionSchema, ...errorResponses };

  app.get<ServerParams>(
    base,
    {
      config: { roles: READ },
      schema: { tags, params: nameParams, response: { 200: list(s.privateEndpointConnectionSchema), ...errorResponses } },
    },
    async (req) => ({ value: (await network.listPrivateEndpoints(req.params.name)).map((c) => privateEndpointView(req.params.name, c)) }),
  );

  app.get<ChildParams>(
    `${base}/:rule`,
    {
      config: { roles: READ },
      schema: { tags, params: s.serverChildParams, response: one },
    },
    async (req) => privateEndpointView(req.params.name, await network.getPrivateEndpoint(req.params.name, req.params.rule)),
  );

  app.put<ChildParams & { Body: PrivateEndpointInput }>(
    `${base}/:rule`,
    {
      config: { roles: SECURE, action: 'privateEndpointConnection.write' },
      schema: { tags, params: s.serverChildParams, body: s.putPrivateEndpointBody, response: one },
    },
    async (req, reply) => {
      const { connection, created } = await network.putPrivateEndpoint(req.params.name, req.params.rule, req.body ?? {});
      return reply.code(created ? 201 : 200).send(privateEndpointView(req.params.name, connection));
    },
  );

  for (const [verb, status] of [
    ['approve', 'Approved'],
    ['reject', 'Rejected'],
  ] as const) {
    app.post<ChildParams & { Body: { description?: string } | undefined }>(
      `${base}/:rule/${verb}`,
      {
        config: { roles: SECURE, action: `privateEndpointConnection.${verb}` },
        schema: { tags, params: s.serverChildParams, body: s.decisionBody, response: one },
      },
      async (req) => {
        const c = await network.setPrivateEndpointStatus(req.params.name, req.params.rule, status, req.body?.description);
        return privateEndpointView(req.params.name, c);
      },
    );
  }

  app.delete<ChildParams>(
    `${base}/:rule`,
    {
      config: { roles: SECURE, action: 'privateEndpointConnection.delete' },
      schema: { tags, params: s.serverChildParams, response: noContent },
    },
    async (req, reply) => {
      await network.deletePrivateEndpoint(req.params.name, req.params.rule);
      return reply.code(204).send();
    },
  );
}

type AccessQuerystring = Omit<AccessCheckInput, 'ssl'> & { ssl?: 'true' | 'false' };

function accessCheckRoute(app: FastifyInstance, network: NetworkService): void {
  app.get<ServerParams & { Querystring: AccessQuerystring }>(
    '/servers/:name/accessCheck',
    {
      config: { roles: READ },
      schema: {
        tags: ['access check'],
        description: 'What the gateway would decide, network-wise, for a connection with these facts, and why.',
        params: nameParams,
        querystring: s.accessCheckQuery,
        response: { 200: s.accessCheckSchema, ...errorResponses },
      },
    },
    async (req) => {
      const q = req.query;
      const answer = await network.checkAccess(req.params.name, { ...q, ssl: q.ssl === undefined ? undefined : q.ssl === 'true' });
      return { server: req.params.name, ip: q.ip, listener: q.listener ?? 'public', ...answer };
    },
  );
}

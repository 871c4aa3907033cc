// /virtualNetworks/{vnet} and /virtualNetworks/{vnet}/subnets/{subnet}: platform level.
// Created with PUT (create or replace: 201 or 200), changed with PATCH.
import type { FastifyInstance } from 'fastify';
import type { SubnetInput, VirtualNetworkService, VnetInput } from '../../services/virtual-network-service.js';
import { READ, SECURE } from '../rbac.js';
import { errorResponses } from '../app.js';
import * as s from '../network-schemas.js';
import { subnetView, vnetView } from './network-views.js';

type VnetParams = { Params: { vnet: string } };
type SubnetParams = { Params: { vnet: string; subnet: string } };

export function virtualNetworkRoutes(app: FastifyInstance, vnets: VirtualNetworkService): void {
  const tags = ['virtual networks'];
  const one = { 200: s.vnetSchema, 201: s.vnetSchema, ...errorResponses };
  const oneSubnet = { 200: s.subnetSchema, 201: s.subnetSchema, ...errorResponses };

  app.get(
    '/virtualNetworks',
    {
      config: { roles: READ },
      schema: { tags, response: { 200: { type: 'object', properties: { value: { type: 'array', items: s.vnetSchema } } }, ...errorResponses } },
    },
    async () => ({ value: (await vnets.list()).map(vnetView) }),
  );

  app.get<VnetParams>(
    '/virtualNetworks/:vnet',
    {
      config: { roles: READ },
      schema: { tags, params: s.vnetParams, response: one },
    },
    async (req) => vnetView(await vnets.get(req.params.vnet)),
  );

  app.put<VnetParams & { Body: VnetInput }>(
    '/virtualNetworks/:vnet',
    {
      config: { roles: SECURE, action: 'virtualNetwork.write' },
      schema: { tags, params: s.vnetParams, body: s.putVnetBody, response: one },
    },
    async (req, reply) => {
      const { vnet, created } = await vnets.put(req.params.vnet, req.body);
      return reply.code(created ? 201 : 200).send(vnetView(vnet));
    },
  );

  app.patch<VnetParams & { Body: Partial<VnetInput> }>(
    '/virtualNetworks/:vnet',
    {
      config: { roles: SECURE, action: 'virtualNetwork.update' },
      schema: { tags, params: s.vnetParams, body: s.patchVnetBody, response: one },
    },
    async (req) => vnetView(await vnets.patch(req.params.vnet, req.body)),
  );

  app.delete<VnetParams>(
    '/virtualNetworks/:vnet',
    {
      config: { roles: SECURE, action: 'virtualNetwork.delete' },
      schema: { tags, params: s.vnetParams, response: { 204: { type: 'null' }, ...errorResponses } },
    },
    async (req, reply) => {
      await vnets.delete(req.params.vnet);
      return reply.code(204).send();
    },
  );

  app.get<VnetParams>(
    '/virtualNetworks/:vnet/subnets',
    {
      config: { roles: READ },
      schema: {
        tags,
        params: s.vnetParams,
        response: { 200: { type: 'object', properties: { value: { type: 'array', items: s.subnetSchema } } }, ...errorResponses },
      },
    },
    async (req) => ({ value: (await vnets.listSubnets(req.params.vnet)).map(subnetView) }),
  );

  app.get<SubnetParams>(
    '/virtualNetworks/:vnet/subnets/:subnet',
    {
      config: { roles: READ },
      schema: { tags, params: s.subnetParams, response: oneSubnet },
    },
    async (req) => subnetView(await vnets.getSubnet(req.params.vnet, req.params.subnet)),
  );

  app.put<SubnetParams & { Body: SubnetInput }>(
    '/virtualNetworks/:vnet/subnets/:subnet',
    {
      config: { roles: SECURE, action: 'subnet.write' },
      schema: { tags, params: s.subnetParams, body: s.putSubnetBody, response: oneSubnet },
    },
    async (req, reply) => {
      const { subnet, created } = await vnets.putSubnet(req.params.vnet, req.params.subnet, req.body);
      return reply.code(created ? 201 : 200).send(subnetView(subnet));
    },
  );

  app.patch<SubnetParams & { Body: Partial<SubnetInput> }>(
    '/virtualNetworks/:vnet/subnets/:subnet',
    {
      config: { roles: SECURE, action: 'subnet.update' },
      schema: { tags, params: s.subnetParams, body: s.patchSubnetBody, response: oneSubnet },
    },
    async (req) => subnetView(await vnets.patchSubnet(req.params.vnet, req.params.subnet, req.body)),
  );

  app.delete<SubnetParams>(
    '/virtualNetworks/:vnet/subnets/:subnet',
    {
      config: { roles: SECURE, action: 'subnet.delete' },
      schema: { tags, params: s.subnetParams, response: { 204: { type: 'null' }, ...errorResponses } },
    },
    async (req, reply) => {
      await vnets.deleteSubnet(req.params.vnet, req.params.subnet);
      return reply.code(204).send();
    },
  );
}

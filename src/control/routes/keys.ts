// The key-encryption key of a server (SPEC.md §2 `keys`): which KEK wraps its volume and backup
// keys, its last check; switch to a customer key in an HSM (or back), rotate, revalidate.
import type { FastifyInstance } from 'fastify';
import type { ServerService } from '../../services/server-service.js';
import type { KeyService, SetKeyInput } from '../../services/key-service.js';
import { invalid } from '../../services/errors.js';
import { MANAGE, READ } from '../rbac.js';

interface SetKeyBody {
  type: 'SystemManaged' | 'CustomerManaged';
  pkcs11Module?: string;
  tokenLabel?: string;
  keyLabel?: string;
  pin?: string;
  createIfMissing?: boolean;
}

export function keyRoutes(app: FastifyInstance, servers: ServerService, keys: KeyService): void {
  const params = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 200 } } } as const;
  const view = async (name: string) => keys.view(await servers.get(name));

  app.get<{ Params: { name: string } }>(
    '/servers/:name/keys',
    {
      config: { roles: READ },
      schema: { tags: ['keys'], params },
    },
    async (req) => view(req.params.name),
  );

  app.get(
    '/pkcs11Modules',
    {
      config: { roles: READ },
      schema: { tags: ['keys'] },
    },
    async () => ({ value: keys.moduleNames().map((name) => ({ name })) }),
  );

  app.put<{ Params: { name: string }; Body: SetKeyBody }>(
    '/servers/:name/keys',
    {
      config: { roles: MANAGE, action: 'server.key.set' },
      schema: {
        tags: ['keys'],
        params,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['type'],
          properties: {
            type: { type: 'string', enum: ['SystemManaged', 'CustomerManaged'] },
            // The NAME of a module the operator configured (`up --pkcs11-module NAME=PATH`); a
            // configured module's path is accepted too. Nothing else is ever loaded.
            pkcs11Module: { type: 'string', minLength: 1, maxLength: 4096 },
            tokenLabel: { type: 'string', minLength: 1, maxLength: 32 },
            keyLabel: { type: 'string', minLength: 1, maxLength: 256 },
            pin: { type: 'string', minLength: 1, maxLength: 256 },
            createIfMissing: { type: 'boolean' },
          },
        },
      },
    },
    async (req) => {
      const b = req.body;
      let input: SetKeyInput;
      if (b.type === 'SystemManaged') input = { type: 'SystemManaged' };
      else {
        const missing = (['pkcs11Module', 'tokenLabel', 'keyLabel', 'pin'] as const).filter((k) => !b[k]);
        if (missing.length) throw invalid(`A customer-managed key needs ${missing.join(', ')}.`);
        input = {
          type: 'CustomerManaged',
          pkcs11Module: b.pkcs11Module!,
          tokenLabel: b.tokenLabel!,
          keyLabel: b.keyLabel!,
          pin: b.pin!,
          createIfMissing: b.createIfMissing ?? false,
        };
      }
      await keys.setKey(await servers.get(req.params.name), input);
      return view(req.params.name);
    },
  );

  app.post<{ Params: { name: string }; Body: { keyLabel?: string } | undefined }>(
    '/servers/:name/keys/rotate',
    {
      config: { roles: MANAGE, action: 'server.key.rotate' },
      schema: {
        tags: ['keys'],
        params,
        body: { type: 'object', additionalProperties: false, properties: { keyLabel: { type: 'string', minLength: 1, maxLength: 256 } } },
      },
    },
    async (req) => {
      await keys.rotate(await servers.get(req.params.name), req.body?.keyLabel ? { keyLabel: req.body.keyLabel } : {});
      return view(req.params.name);
    },
  );

  app.post<{ Params: { name: string } }>(
    '/servers/:name/keys/revalidate',
    {
      config: { roles: MANAGE, action: 'server.key.revalidate' },
      schema: { tags: ['keys'], params },
    },
    async (req) => {
      await keys.revalidate(await servers.get(req.params.name));
      return view(req.params.name);
    },
  );
}

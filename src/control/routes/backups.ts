// Backups and point-in-time restore: POST /servers/{name}/backups starts a full encrypted base
// backup, POST /servers/{name}/restore a new server from the backups; both answer 202 with an
// operation to follow at GET /operations/{id} (phase, bytes done of the estimate).
import type { FastifyInstance } from 'fastify';
import type { ServerService } from '../../services/server-service.js';
import type { Operations } from '../../services/operations.js';
import type { BackupManifest } from '../../storage/backup/index.js';
import { invalid, notFound } from '../../services/errors.js';
import { MANAGE, READ } from '../rbac.js';

const view = (m: BackupManifest) => ({
  id: m.backupId,
  startTime: m.startTime,
  stopTime: m.stopTime,
  sizeBytes: m.plaintextBytes,
  storedBytes: m.ciphertextBytes,
  startLsn: m.startLsn,
  stopLsn: m.stopLsn,
  timeline: m.timeline,
  cipher: m.cipher,
  kek: { provider: m.wrappedKey.provider, version: m.wrappedKey.kekVersion },
});

export function backupRoutes(app: FastifyInstance, service: ServerService, operations: Operations): void {
  const params = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 200 } } } as const;

  app.get<{ Params: { name: string } }>(
    '/servers/:name/backups',
    {
      config: { roles: READ },
      schema: { tags: ['backups'], params },
    },
    async (req) => ({ value: (await service.backups(req.params.name)).map(view) }),
  );

  app.post<{ Params: { name: string } }>(
    '/servers/:name/backups',
    {
      config: { roles: MANAGE, action: 'backup.create' },
      schema: { tags: ['backups'], params },
    },
    async (req, reply) => {
      await service.get(req.params.name);
      const op = operations.start('backup', req.params.name, async (progress) => view(await service.backup(req.params.name, progress)));
      return reply.code(202).send(op);
    },
  );

  app.post<{ Params: { name: string }; Body: { name: string; restorePointInTime?: string } }>(
    '/servers/:name/restore',
    {
      config: { roles: MANAGE, action: 'server.restore' },
      schema: {
        tags: ['backups'],
        params,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: { name: { type: 'string', maxLength: 100 }, restorePointInTime: { type: 'string', maxLength: 40 } },
        },
      },
    },
    async (req, reply) => {
      let at: Date | undefined;
      if (req.body.restorePointInTime !== undefined) {
        at = new Date(req.body.restorePointInTime);
        if (Number.isNaN(at.getTime())) throw invalid(`restorePointInTime '${req.body.restorePointInTime}' is not an ISO 8601 date and time.`);
      }
      const { run } = await service.prepareRestore(req.body.name, req.params.name, at);
      const op = operations.start('restore', req.body.name, async (progress) => {
        const s = await run(progress);
        return { name: s.name, state: s.state };
      });
      return reply.code(202).send(op);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/operations/:id',
    {
      config: { roles: READ },
      schema: { tags: ['backups'], params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } },
    },
    async (req) => {
      const op = operations.get(req.params.id);
      if (!op) throw notFound(`Operation '${req.params.id}' was not found.`);
      return op;
    },
  );
}

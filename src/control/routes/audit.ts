// /servers/{name}/auditSettings: which statement classes the gateway records, parameters,
// redaction and retention.
import type { FastifyInstance } from 'fastify';
import type { ServersRepo } from '../../catalog/servers-repo.js';
import { AUDIT_CLASSES, type AuditSettings, type AuditSettingsRepo } from '../../catalog/audit-settings-repo.js';
import { invalid, notFound } from '../../platform/errors.js';
import { READ, SECURE } from '../rbac.js';
import { errorResponses } from '../app.js';

const settingsSchema = {
  type: 'object',
  properties: {
    classes: { type: 'array', items: { type: 'string', enum: [...AUDIT_CLASSES] } },
    logParameters: { type: 'string', enum: ['Enabled', 'Disabled'] },
    redact: { type: 'array', items: { type: 'string' } },
    retentionDays: { type: 'integer' },
  },
} as const;

interface SettingsBody {
  classes?: AuditSettings['classes'];
  logParameters?: 'Enabled' | 'Disabled';
  redact?: string[];
  retentionDays?: number;
}

const view = (s: AuditSettings) => ({ classes: s.classes, logParameters: s.logParameters ? 'Enabled' : 'Disabled', redact: s.redact, retentionDays: s.retentionDays });

export function auditSettingsRoutes(app: FastifyInstance, servers: ServersRepo, repo: AuditSettingsRepo): void {
  const params = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 200 } } } as const;
  const serverId = async (name: string) => {
    const s = await servers.get(name);
    if (!s) throw notFound(`Server '${name}' was not found.`);
    return s.id;
  };

  app.get<{ Params: { name: string } }>('/servers/:name/auditSettings', {
    config: { roles: READ },
    schema: { tags: ['audit'], params, response: { 200: settingsSchema, ...errorResponses } },
  }, async (req) => view(await repo.get(await serverId(req.params.name))));

  app.patch<{ Params: { name: string }; Body: SettingsBody }>('/servers/:name/auditSettings', {
    config: { roles: SECURE, action: 'auditSettings.update' },
    schema: {
      tags: ['audit'],
      params,
      body: {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          classes: { type: 'array', uniqueItems: true, maxItems: 7, items: { type: 'string', enum: [...AUDIT_CLASSES] } },
          logParameters: { type: 'string', enum: ['Enabled', 'Disabled'] },
          redact: { type: 'array', maxItems: 100, items: { type: 'string', minLength: 1, maxLength: 200 } },
          retentionDays: { type: 'integer', minimum: 1, maximum: 3650 },
        },
      },
      response: { 200: settingsSchema, ...errorResponses },
    },
  }, async (req) => {
    const id = await serverId(req.params.name);
    for (const pattern of req.body.redact ?? []) {
      try {
        new RegExp(pattern, 'i');
      } catch {
        throw invalid(`redact pattern '${pattern}' is not a valid regular expression.`);
      }
    }
    const current = await repo.get(id);
    const next: AuditSettings = {
      classes: req.body.classes ?? current.classes,
      logParameters: req.body.logParameters === undefined ? current.logParameters : req.body.logParameters === 'Enabled',
      redact: req.body.redact ?? current.redact,
      retentionDays: req.body.retentionDays ?? current.retentionDays,
    };
    return view(await repo.put(id, next));
  });
}

// Threat protection: /servers/{name}/securityAlertPolicy, alerts (list, show, dismiss,
// resolve), the automatic protection's blocks, and login statistics for the console's chart.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ServersRepo } from '../../catalog/servers-repo.js';
import type { ThreatRepo } from '../../catalog/threat-repo.js';
import type { AlertState } from '../../threat/alert.js';
import type { ThreatEngine } from '../../threat/engine.js';
import { ALERT_TYPES, type AlertType, type Severity } from '../../threat/alert-types.js';
import { policyView, type SecurityAlertPolicy, type Webhook } from '../../threat/policy.js';
import { invalid, notFound } from '../../services/errors.js';
import type { SqliAllowEntry } from '../../threat/sql/allow.js';
import { READ, SECURE } from '../rbac.js';

interface PolicyBody {
  state?: 'Enabled' | 'Disabled';
  disabledAlerts?: (AlertType | SqliAllowEntry)[];
  emailAddresses?: string[];
  webhooks?: { url: string; secret?: string }[];
  retentionDays?: number;
  autoProtection?: Partial<SecurityAlertPolicy['autoProtection']>;
  detectors?: Partial<SecurityAlertPolicy['detectors']>;
}

interface AlertQuery {
  server?: string;
  state?: AlertState;
  severity?: Severity;
  type?: string;
  since?: string;
  limit?: string;
}

const EMAIL = /^[^\s@<>(),;:"]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$|^[^\s@<>(),;:"]+@localhost$/;
const posInt = (max: number) => ({ type: 'integer', minimum: 1, maximum: max }) as const;

const policyBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    state: { type: 'string', enum: ['Enabled', 'Disabled'] },
    // Alert types, and per-shape SQL-injection exclusions: SqlInjection:<fingerprint> (--sqli-allow).
    disabledAlerts: {
      type: 'array',
      uniqueItems: true,
      maxItems: 1000,
      items: {
        anyOf: [
          { type: 'string', enum: [...ALERT_TYPES] },
          { type: 'string', pattern: '^SqlInjection:[0-9a-f]{16}$' },
        ],
      },
    },
    emailAddresses: { type: 'array', maxItems: 50, items: { type: 'string', minLength: 3, maxLength: 254 } },
    webhooks: {
      type: 'array',
      maxItems: 10,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: { url: { type: 'string', minLength: 8, maxLength: 2048 }, secret: { type: 'string', minLength: 16, maxLength: 256 } },
      },
    },
    retentionDays: posInt(3650),
    autoProtection: {
      type: 'object',
      additionalProperties: false,
      properties: {
        state: { type: 'string', enum: ['Enabled', 'Disabled'] },
        userAddressFailures: posInt(1000),
        addressFailures: posInt(100_000),
        windowSeconds: posInt(86_400),
        baseBlockSeconds: posInt(86_400),
        maxBlockSeconds: posInt(7 * 86_400),
      },
    },
    detectors: {
      type: 'object',
      additionalProperties: false,
      properties: {
        bruteForceFailures: posInt(100_000),
        bruteForceWindowSeconds: posInt(86_400),
        sprayUsers: posInt(10_000),
        distributedAddresses: posInt(100_000),
        principalAnomalyDays: posInt(3650),
        learningPeriodSeconds: { type: 'integer', minimum: 0, maximum: 365 * 86_400 },
        syntaxErrorBurst: posInt(100_000),
        syntaxErrorWindowSeconds: posInt(86_400),
      },
    },
  },
} as const;

/** Seals a webhook's signing secret for the catalog, bound to its server and URL. */
export type SealWebhookSecret = (secret: string, server: string, url: string) => string;

export function threatRoutes(app: FastifyInstance, servers: ServersRepo, repo: ThreatRepo, engine: ThreatEngine, seal: SealWebhookSecret): void {
  const params = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 200 } } } as const;
  const alertParams = {
    type: 'object',
    required: ['name', 'id'],
    properties: { name: { type: 'string', maxLength: 200 }, id: { type: 'string', maxLength: 64 } },
  } as const;
  const server = async (name: string) => {
    const s = await servers.get(name);
    if (!s) throw notFound(`Server '${name}' was not found.`);
    return s;
  };
  const alertQuery = {
    type: 'object',
    additionalProperties: false,
    properties: {
      server: { type: 'string', maxLength: 200 },
      state: { type: 'string', enum: ['Active', 'Resolved', 'Dismissed'] },
      severity: { type: 'string', enum: ['Low', 'Medium', 'High'] },
      type: { type: 'string', enum: [...ALERT_TYPES] },
      since: { type: 'string', maxLength: 40 },
      limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    },
  } as const;
  const since = (s: string | undefined) => {
    if (s === undefined) return undefined;
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) throw invalid(`since '${s}' is not a date and time (ISO 8601).`);
    return d;
  };

  app.get<{ Params: { name: string } }>(
    '/servers/:name/securityAlertPolicy',
    {
      config: { roles: READ },
      schema: { tags: ['threat'], params },
    },
    async (req) => policyView(await repo.policy((await server(req.params.name)).id)),
  );

  app.patch<{ Params: { name: string }; Body: PolicyBody }>(
    '/servers/:name/securityAlertPolicy',
    {
      config: { roles: SECURE, action: 'securityAlertPolicy.update' },
      schema: { tags: ['threat'], params, body: policyBody },
    },
    async (req) => {
      const s = await server(req.params.name);
      const b = req.body;
      for (const e of b.emailAddresses ?? []) if (!EMAIL.test(e)) throw invalid(`'${e}' is not an e-mail address.`);
      const current = await repo.policy(s.id);
      const generated: Record<string, string> = {};
      let webhooks: Webhook[] | undefined;
      if (b.webhooks) {
        webhooks = b.webhooks.map((w) => {
          let url: URL;
          try {
            url = new URL(w.url);
          } catch {
            throw invalid(`webhook '${w.url}' is not a URL.`);
          }
          if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`webhook '${w.url}' must be an http or https URL.`);
          // The catalog holds secrets sealed (kept ones stay as they are); a new one is shown once.
          const kept = current.webhooks.find((c) => c.url === w.url)?.secret;
          if (w.secret) return { url: w.url, secret: seal(w.secret, s.name, w.url) };
          if (kept) return { url: w.url, secret: kept };
          const secret = randomBytes(32).toString('base64url');
          generated[w.url] = secret;
          return { url: w.url, secret: seal(secret, s.name, w.url) };
        });
      }
      const enabling = b.state === 'Enabled' && current.state !== 'Enabled';
      const next: SecurityAlertPolicy = {
        state: b.state ?? current.state,
        disabledAlerts: b.disabledAlerts ?? current.disabledAlerts,
        emailAddresses: b.emailAddresses ?? current.emailAddresses,
        webhooks: webhooks ?? current.webhooks,
        retentionDays: b.retentionDays ?? current.retentionDays,
        autoProtection: { ...current.autoProtection, ...(b.autoProtection ?? {}) },
        detectors: { ...current.detectors, ...(b.detectors ?? {}) },
        enabledAt: enabling ? new Date().toISOString() : current.enabledAt,
      };
      if (next.autoProtection.maxBlockSeconds < next.autoProtection.baseBlockSeconds) {
        throw invalid('autoProtection.maxBlockSeconds must be at least baseBlockSeconds.');
      }
      await repo.putPolicy(s.id, next);
      return { ...policyView(next), ...(Object.keys(generated).length ? { generatedWebhookSecrets: generated } : {}) };
    },
  );

  const listAlerts = async (q: AlertQuery, serverName?: string) => {
    if (serverName) await server(serverName);
    const value = await repo.list({
      ...((serverName ?? q.server) ? { server: serverName ?? q.server } : {}),
      ...(q.state ? { state: q.state } : {}),
      ...(q.severity ? { severity: q.severity } : {}),
      ...(q.type ? { type: q.type } : {}),
      ...(q.since ? { since: since(q.since)! } : {}),
      ...(q.limit ? { limit: Math.max(1, Number(q.limit)) } : {}),
    });
    return { value };
  };

  app.get<{ Querystring: AlertQuery }>(
    '/alerts',
    {
      config: { roles: READ },
      schema: { tags: ['threat'], querystring: alertQuery },
    },
    async (req) => listAlerts(req.query),
  );

  app.get<{ Params: { name: string }; Querystring: AlertQuery }>(
    '/servers/:name/alerts',
    {
      config: { roles: READ },
      schema: { tags: ['threat'], params, querystring: alertQuery },
    },
    async (req) => listAlerts(req.query, req.params.name),
  );

  app.get<{ Params: { name: string; id: string } }>(
    '/servers/:name/alerts/:id',
    {
      config: { roles: READ },
      schema: { tags: ['threat'], params: alertParams },
    },
    async (req) => {
      const alert = await repo.get(req.params.name, req.params.id);
      if (!alert) throw notFound(`Alert '${req.params.id}' was not found on server '${req.params.name}'.`);
      return { ...alert, deliveries: await repo.deliveries(alert.id) };
    },
  );

  for (const [verb, state] of [
    ['dismiss', 'Dismissed'],
    ['resolve', 'Resolved'],
  ] as const) {
    app.post<{ Params: { name: string; id: string } }>(
      `/servers/:name/alerts/:id/${verb}`,
      {
        config: { roles: SECURE, action: `alert.${verb}` },
        schema: { tags: ['threat'], params: alertParams },
      },
      async (req) => {
        const by = `${req.principal!.name} (${req.principal!.id})`;
        const alert = await engine.setAlertState(req.params.name, req.params.id, state, by);
        if (!alert) throw notFound(`Alert '${req.params.id}' was not found on server '${req.params.name}'.`);
        return alert;
      },
    );
  }

  const blockView = (b: ReturnType<ThreatEngine['throttle']['list']>[number]) => ({
    id: b.id,
    scope: b.scope,
    address: b.address,
    user: b.user,
    failures: b.failures,
    since: new Date(b.since).toISOString(),
    until: new Date(b.until).toISOString(),
  });

  app.get<{ Params: { name: string } }>(
    '/servers/:name/protection/blocks',
    {
      config: { roles: READ },
      schema: { tags: ['threat'], params },
    },
    async (req) => {
      await server(req.params.name);
      return { value: engine.throttle.list(req.params.name, Date.now()).map(blockView) };
    },
  );

  app.delete<{ Params: { name: string; id: string } }>(
    '/servers/:name/protection/blocks/:id',
    {
      config: { roles: SECURE, action: 'protection.unblock' },
      schema: { tags: ['threat'], params: alertParams },
    },
    async (req, reply) => {
      await server(req.params.name);
      if (!engine.throttle.unblock(req.params.name, req.params.id)) throw notFound(`Block '${req.params.id}' was not found on server '${req.params.name}'.`);
      return reply.code(204).send();
    },
  );

  // `pgwarden threat sql-check --server` and the console's "test a statement" box: the detector's
  // verdict on statements, against the server's learned application shapes. No alert, no learning.
  app.post<{ Params: { name: string }; Body: { statements: { sql: string }[]; application?: string; role?: string } }>(
    '/servers/:name/sqlCheck',
    {
      config: { roles: READ },
      schema: {
        tags: ['threat'],
        params,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['statements'],
          properties: {
            statements: {
              type: 'array',
              minItems: 1,
              maxItems: 1000,
              items: { type: 'object', additionalProperties: false, required: ['sql'], properties: { sql: { type: 'string', maxLength: 65_536 } } },
            },
            application: { type: 'string', maxLength: 256 },
            role: { type: 'string', maxLength: 256 },
          },
        },
      },
    },
    async (req) => {
      await server(req.params.name);
      const b = req.body;
      const value = engine.checkSql(
        req.params.name,
        b.statements.map((x) => x.sql),
        { application: b.application ?? null, role: b.role ?? null },
      );
      if (!value) throw invalid('The SQL-injection detector is not available on this platform.');
      return { value };
    },
  );

  app.get<{ Params: { name: string }; Querystring: { since?: string; bucketSeconds?: string } }>(
    '/servers/:name/loginStats',
    {
      config: { roles: READ },
      schema: {
        tags: ['threat'],
        params,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { since: { type: 'string', maxLength: 40 }, bucketSeconds: { type: 'string', pattern: '^[0-9]{2,5}$' } },
        },
      },
    },
    async (req) => {
      await server(req.params.name);
      await engine.flush();
      const from = since(req.query.since) ?? new Date(Date.now() - 24 * 3600_000);
      const bucket = Number(req.query.bucketSeconds ?? 300);
      if (bucket < 60 || bucket > 86_400 || bucket % 60 !== 0) throw invalid('bucketSeconds must be a multiple of 60 between 60 and 86400.');
      return { value: await repo.loginStats(req.params.name, from, bucket) };
    },
  );
}

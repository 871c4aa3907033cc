// /servers/{name}/auditSettings: which statement classes the gateway records, parameters,
// redaction and retention; /audit/*: search, export, verify and the store's files.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ServersRepo } from '../../catalog/servers-repo.js';
import { AUDIT_CLASSES, type AuditSettings } from '../../audit/settings.js';
import type { AuditSettingsRepo } from '../../catalog/audit-settings-repo.js';
import { invalid, notFound } from '../../services/errors.js';
import { READ, SECURE } from '../rbac.js';
import { errorResponses } from '../app.js';
import type { ApiRole } from '../../catalog/tokens-repo.js';
import { formatCursor, parseCursor, searchStreams, type AuditQuery, type StreamCursor } from '../../audit/search.js';
import { storeFileStream, type ExportedCheckpoint } from '../../audit/store/index.js';
import { verifyStreams, type AuditStream, type StreamCaller, type VerifiableStream } from '../../audit/verify-streams.js';

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

const view = (s: AuditSettings) => ({
  classes: s.classes,
  logParameters: s.logParameters ? 'Enabled' : 'Disabled',
  redact: s.redact,
  retentionDays: s.retentionDays,
});

export function auditSettingsRoutes(app: FastifyInstance, servers: ServersRepo, repo: AuditSettingsRepo): void {
  const params = { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 200 } } } as const;
  const serverId = async (name: string) => {
    const s = await servers.get(name);
    if (!s) throw notFound(`Server '${name}' was not found.`);
    return s.id;
  };

  app.get<{ Params: { name: string } }>(
    '/servers/:name/auditSettings',
    {
      config: { roles: READ },
      schema: { tags: ['audit'], params, response: { 200: settingsSchema, ...errorResponses } },
    },
    async (req) => view(await repo.get(await serverId(req.params.name))),
  );

  app.patch<{ Params: { name: string }; Body: SettingsBody }>(
    '/servers/:name/auditSettings',
    {
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
    },
    async (req) => {
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
    },
  );
}

export interface AuditRoutesDeps {
  readonly dir: string;
  readonly publicKeyPem: () => string;
  /** Every gateway's stream this process serves, its own first (`up`: the platform's, each
   * `pgwarden gateway` process's on this host, and each registered gateway's on another host,
   * read with the caller's own token). Default: its own only, named 'platform'. */
  readonly streams?: (caller: StreamCaller) => Promise<readonly VerifiableStream[]>;
}

const CURSOR = '^([0-9]{1,15}|[A-Za-z0-9_.-]{1,100}:[0-9]{1,15}(,[A-Za-z0-9_.-]{1,100}:[0-9]{1,15}){0,100})$';

const auditReaders: readonly ApiRole[] = ['Owner', 'SecurityAdmin', 'Reader'];

/** /audit/events (search, paged), /audit/export (JSON lines), /audit/verify. Reading the audit
 * log is itself an audited action. */
export function auditLogRoutes(app: FastifyInstance, deps: AuditRoutesDeps): void {
  const allStreams = async (caller: StreamCaller): Promise<readonly VerifiableStream[]> =>
    deps.streams ? deps.streams(caller) : [{ name: 'platform', dir: deps.dir, publicKeyPem: deps.publicKeyPem }];
  const callerOf = (req: { headers: { authorization?: string } }): StreamCaller =>
    req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization };
  /** The streams a search reads (one, with ?gateway=) and where it starts in each. */
  const searchPlan = async (
    q: { gateway?: string; after?: string },
    caller: StreamCaller,
  ): Promise<{ streams: readonly VerifiableStream[]; after: StreamCursor }> => {
    let streams = await allStreams(caller);
    if (q.gateway !== undefined) {
      streams = streams.filter((s) => s.name === q.gateway);
      if (!streams.length) throw notFound(`Audit stream '${q.gateway}' was not found.`);
    }
    const after = parseCursor(q.after, streams[0]!.name);
    if (!after) throw invalid(`after '${q.after}' is not a place in the audit log: give the 'next' of an earlier answer.`);
    return { streams, after };
  };
  /** One stream: the next seq, as always; several: a cursor naming each stream's place. */
  const nextOf = (streams: readonly VerifiableStream[], next: StreamCursor | null): number | string | null =>
    next === null ? null : streams.length === 1 ? (next[streams[0]!.name] ?? null) : formatCursor(next);
  const query = {
    type: 'object',
    additionalProperties: false,
    properties: {
      server: { type: 'string', maxLength: 200 },
      user: { type: 'string', maxLength: 200 },
      class: { type: 'string', enum: [...AUDIT_CLASSES] },
      outcome: { type: 'string', enum: ['success', 'failure'] },
      type: { type: 'string', maxLength: 100 },
      since: { type: 'string', format: 'date-time' },
      until: { type: 'string', format: 'date-time' },
      text: { type: 'string', maxLength: 500 },
      gateway: { type: 'string', maxLength: 100 },
      after: { type: 'string', maxLength: 12_000, pattern: CURSOR },
      limit: { type: 'string', pattern: '^[0-9]{1,4}$' },
    },
  } as const;
  type Q = {
    server?: string;
    user?: string;
    class?: string;
    outcome?: 'success' | 'failure';
    type?: string;
    since?: string;
    until?: string;
    text?: string;
    gateway?: string;
    after?: string;
    limit?: string;
  };
  const toQuery = (q: Q): AuditQuery => ({
    server: q.server,
    user: q.user,
    class: q.class,
    outcome: q.outcome,
    type: q.type,
    text: q.text,
    since: q.since ? new Date(q.since) : undefined,
    until: q.until ? new Date(q.until) : undefined,
    limit: q.limit === undefined ? undefined : Math.max(1, Number(q.limit)),
  });

  app.get<{ Querystring: Q }>(
    '/audit/events',
    {
      config: { roles: auditReaders, action: 'audit.search' },
      schema: { tags: ['audit'], querystring: query },
    },
    async (req) => {
      const { streams, after } = await searchPlan(req.query, callerOf(req));
      const { hits, next, missing } = await searchStreams(streams, { ...toQuery(req.query), after });
      // Streams whose gateway did not answer are named: the answer holds only the others' records.
      return { value: hits, next: nextOf(streams, next), ...(missing.length ? { missing } : {}) };
    },
  );

  app.get<{ Querystring: Q }>(
    '/audit/export',
    {
      config: { roles: auditReaders, action: 'audit.export' },
      schema: { tags: ['audit'], querystring: query },
    },
    async (req, reply) => {
      const lines: string[] = [];
      const plan = await searchPlan(req.query, callerOf(req));
      const missing = new Set<string>();
      let streams = plan.streams;
      let after: StreamCursor | null = plan.after;
      while (after) {
        const page: Awaited<ReturnType<typeof searchStreams>> = await searchStreams(streams, { ...toQuery(req.query), after, limit: 1000 });
        for (const h of page.hits) lines.push(JSON.stringify(h));
        for (const m of page.missing) missing.add(m.stream);
        // A gateway that did not answer is not asked again for every page.
        streams = streams.filter((s) => !missing.has(s.name));
        after = page.next;
      }
      if (missing.size) reply.header('pgwarden-missing-streams', [...missing].join(','));
      return reply.type('application/x-ndjson').send(lines.length ? `${lines.join('\n')}\n` : '');
    },
  );

  app.post<{ Body: { stream?: string; fromCheckpoint?: number; lastKnownCheckpoint?: Record<string, unknown> } }>(
    '/audit/verify',
    {
      config: { roles: auditReaders, action: 'audit.verify' },
      schema: {
        tags: ['audit'],
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            stream: { type: 'string', maxLength: 100 },
            fromCheckpoint: { type: 'integer', minimum: 0 },
            lastKnownCheckpoint: { type: 'object' },
          },
        },
      },
    },
    async (req) => {
      const r = await verifyStreams(await allStreams(callerOf(req)), {
        ...(req.body?.stream !== undefined ? { stream: req.body.stream } : {}),
        ...(req.body?.fromCheckpoint !== undefined ? { fromCheckpoint: req.body.fromCheckpoint } : {}),
        ...(req.body?.lastKnownCheckpoint ? { lastKnownCheckpoint: req.body.lastKnownCheckpoint as unknown as ExportedCheckpoint } : {}),
      });
      if ('unknown' in r) throw notFound(`Audit stream '${r.unknown}' was not found.`);
      // The first stream's report as before (this process's own, or the one named), with `ok`
      // and `failure` about every stream, each stream's report under `streams`, and the
      // gateways that did not answer under `unreachable`.
      const failed = r.streams.find((s) => !s.ok && s.failure);
      const unreachable = r.streams.filter((s) => s.unreachable !== undefined).map((s) => ({ stream: s.stream, reason: s.unreachable! }));
      return {
        ...r.streams[0]!,
        ok: r.ok,
        ...(failed?.failure ? { failure: { ...failed.failure, stream: failed.stream } } : {}),
        ...(unreachable.length ? { unreachable } : {}),
        streams: r.streams,
      };
    },
  );

  // This process's own stores, file by file, for a platform that verifies them itself.
  auditStoreRoutes(app, async (caller) => (await allStreams(caller)).filter((s): s is AuditStream => 'dir' in s), callerOf, auditReaders);
}

/** The files a store's chain and checkpoints are in (FORMAT.md); nothing else is served. */
const STORE_FILE = /^(segment|checkpoints)-[0-9]{6,}\.log$/;

/** GET /audit/store (the files of one of this process's own streams) and /audit/store/{file}
 * (one file as FORMAT.md's version 1 has it: a sealed segment as its plaintext): what a platform copies to verify a remote gateway's stream under
 * the key it has registered, without taking that gateway's word for it. */
function auditStoreRoutes(
  app: FastifyInstance,
  localStreams: (caller: StreamCaller) => Promise<readonly AuditStream[]>,
  callerOf: (req: { headers: { authorization?: string } }) => StreamCaller,
  roles: readonly ApiRole[],
): void {
  const query = { type: 'object', additionalProperties: false, properties: { stream: { type: 'string', maxLength: 100 } } } as const;
  const storeOf = async (stream: string | undefined, caller: StreamCaller): Promise<AuditStream> => {
    const streams = await localStreams(caller);
    const s = stream === undefined ? streams[0] : streams.find((x) => x.name === stream);
    if (!s) throw notFound(`Audit stream '${stream ?? ''}' is not kept by this process.`);
    return s;
  };

  app.get<{ Querystring: { stream?: string } }>(
    '/audit/store',
    { config: { roles, action: 'audit.export' }, schema: { tags: ['audit'], querystring: query } },
    async (req) => {
      const s = await storeOf(req.query.stream, callerOf(req));
      const names = (await readdir(s.dir)).filter((n) => STORE_FILE.test(n)).sort();
      const files = await Promise.all(names.map(async (name) => ({ name, bytes: (await stat(path.join(s.dir, name))).size })));
      return { stream: s.name, files };
    },
  );

  app.get<{ Params: { file: string }; Querystring: { stream?: string } }>(
    '/audit/store/:file',
    {
      config: { roles, action: 'audit.export' },
      schema: {
        tags: ['audit'],
        querystring: query,
        params: { type: 'object', required: ['file'], properties: { file: { type: 'string', pattern: STORE_FILE.source } } },
      },
    },
    async (req, reply) => {
      const s = await storeOf(req.query.stream, callerOf(req));
      const file = path.join(s.dir, req.params.file);
      try {
        await stat(file);
      } catch {
        throw notFound(`Audit store file '${req.params.file}' was not found.`);
      }
      return reply.type('application/octet-stream').send(await storeFileStream(file));
    },
  );
}

// One server: its settings at a glance, stop / start / delete (with confirmation) and which
// statement classes the gateway records for the audit log; its connection pooling.
import { api, get } from '../api.js';
import { confirmDialog, h, status, time } from '../dom.js';
import type { Page, PageContext } from '../page.js';
import { serverHeader } from '../server-nav.js';
import { showWhenLive } from '../live.js';
import type { Server, ServerPool } from '../types.js';
import { tlsLabel } from './servers.js';
import { parametersSection, type Configuration } from './server-parameters.js';
import { poolSection } from './server-pool.js';

const AUDIT_CLASSES = ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC', 'MISC_SET'] as const;

interface AuditSettings {
  classes: string[];
  logParameters: 'Enabled' | 'Disabled';
  redact: string[];
  retentionDays: number;
}

export const serverPage: Page = {
  title: (p) => `Server ${p.name}`,
  async render(ctx) {
    const name = ctx.params.name!;
    const base = `/servers/${encodeURIComponent(name)}`;
    const [s, audit, params, pool] = await Promise.all([
      get<Server>(base),
      get<AuditSettings>(`${base}/auditSettings`),
      get<{ value: Configuration[] }>(`${base}/configurations`),
      get<ServerPool>(`${base}/pool`),
    ]);
    const facts: [string, string][] = [
      ['State', s.state],
      ['Host name', s.fullyQualifiedDomainName],
      ['Administrator login', s.administratorLogin],
      ['PostgreSQL version', s.version],
      ['TLS', s.sslEnforcement === 'Enabled' ? `Required, ${tlsLabel(s.minimalTlsVersion)}` : 'Not required'],
      ['Public network access', s.publicNetworkAccess],
      ['Password login', s.passwordAuth],
      ['Connection pooling', s.poolMode === 'none' ? 'None' : `${s.poolMode}, ${s.poolSize} per role and database`],
      ['Created', time(s.createdAt)],
      ['Connect with', `psql "host=${s.fullyQualifiedDomainName} user=${s.administratorLogin}@${s.name} dbname=postgres sslmode=verify-full"`],
    ];
    return h(
      'div',
      {},
      serverHeader(name, '', `Server ${name}`),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'facts-title' },
        h('h2', { id: 'facts-title' }, 'Overview'),
        h(
          'dl',
          { class: 'facts' },
          ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, k === 'State' ? h('span', { class: `state state-${v.toLowerCase()}` }, v) : v)]),
        ),
        ctx.session.canManage ? lifecycle(ctx, s) : null,
      ),
      auditSection(ctx, base, audit),
      parametersSection(ctx, base, params.value),
      poolSection(ctx, s, pool),
    );
  },
};

function lifecycle(ctx: PageContext, s: Server): HTMLElement {
  const base = `/servers/${encodeURIComponent(s.name)}`;
  const result = h('div', { class: 'result' });
  const run = async (label: string, fn: () => Promise<unknown>, after: () => void) => {
    result.replaceChildren(status('pending', `${label}…`));
    try {
      await fn();
      after();
    } catch (err) {
      result.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
    }
  };
  const stop = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: async () => {
        if (
          await confirmDialog(`Stop ${s.name}?`, 'Open sessions are ended and new connections are refused until the server is started again.', 'Stop server')
        ) {
          await run(`Stopping ${s.name}`, () => api('POST', `${base}/stop`), ctx.refresh);
        }
      },
    },
    'Stop',
  );
  const start = h(
    'button',
    { type: 'button', class: 'secondary', onclick: () => run(`Starting ${s.name}`, () => api('POST', `${base}/start`), ctx.refresh) },
    'Start',
  );
  const del = h(
    'button',
    {
      type: 'button',
      class: 'danger',
      onclick: async () => {
        if (
          await confirmDialog(`Delete ${s.name}?`, `The server ${s.name}, its databases and its rules are deleted. This cannot be undone.`, 'Delete server')
        ) {
          await run(
            `Deleting ${s.name}`,
            () => api('DELETE', base),
            () => ctx.navigate('/servers'),
          );
        }
      },
    },
    'Delete',
  );
  return h('div', {}, h('div', { class: 'actions' }, s.state === 'Stopped' ? start : stop, del), result);
}

function auditSection(ctx: PageContext, base: string, a: AuditSettings): HTMLElement {
  if (!ctx.session.canSecure) {
    return h(
      'section',
      { class: 'card', 'aria-labelledby': 'audit-title' },
      h('h2', { id: 'audit-title' }, 'Statement audit'),
      h(
        'p',
        {},
        `Statement classes recorded: ${a.classes.length ? a.classes.join(', ') : 'none'}. Parameters: ${a.logParameters}. Retention ${a.retentionDays} days.`,
      ),
    );
  }
  const boxes = AUDIT_CLASSES.map((c) => h('input', { type: 'checkbox', name: 'classes', value: c, id: `audit-${c}`, checked: a.classes.includes(c) }));
  const group = h(
    'fieldset',
    {},
    h('legend', {}, 'Statement classes recorded'),
    h('div', { class: 'checks' }, ...boxes.map((b) => h('label', { for: b.id, class: 'check' }, b, ` ${b.value}`))),
  );
  const params = h('input', { type: 'checkbox', id: 'audit-params', checked: a.logParameters === 'Enabled' });
  const result = h('div', { class: 'result' });
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'audit-title' },
    h('h2', { id: 'audit-title' }, 'Statement audit'),
    h('p', {}, `Retention ${a.retentionDays} days. Redaction patterns: ${a.redact.length ? a.redact.join(', ') : 'none'}.`),
    group,
    h('label', { for: params.id, class: 'check' }, params, ' Log statement parameters (redacted)'),
  );
  const save = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        const t0 = Date.now();
        try {
          await api('PATCH', `${base}/auditSettings`, {
            classes: boxes.filter((b) => b.checked).map((b) => b.value),
            logParameters: params.checked ? 'Enabled' : 'Disabled',
          });
          await showWhenLive(result, 'Audit settings', t0);
        } catch (err) {
          result.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
        }
      },
    },
    'Save audit settings',
  );
  section.append(h('div', { class: 'actions' }, save), result);
  return section;
}

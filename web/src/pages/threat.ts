// Threat protection of one server: the alert policy, a chart of failed and successful logins,
// the alerts (filters, details with evidence, dismiss), the automatic protection's blocks, and a
// box to test a statement against the SQL-injection detector (with the server's learned shapes).
import { api, get, query } from '../api.js';
import { carryOver, confirmDialog, field, h, resultSlot, select, status, table, time } from '../dom.js';
import { showWhenLive } from '../live.js';
import type { Page, PageContext } from '../page.js';
import { serverHeader } from '../server-nav.js';
import { loginChart, type LoginPoint } from '../chart.js';
import { alertDetail, alertFilterForm, alertQuery, alertTable, type AlertFilter } from '../alert-view.js';
import { ALERT_TYPES, type Alert, type AlertPolicy, type Block } from '../types.js';

const RANGES = { 'Last hour': [3600, 60], 'Last 24 hours': [86_400, 900], 'Last 7 days': [7 * 86_400, 3600] } as const;
type RangeName = keyof typeof RANGES;
let range: RangeName = 'Last hour';
let filter: AlertFilter = { state: 'Active', severity: '', type: '' };
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export const threatPage: Page = {
  title: (p) => (p.alert ? `Alert · ${p.name}` : `Threat protection · ${p.name}`),
  async render(ctx) {
    const name = ctx.params.name!;
    const base = `/servers/${encodeURIComponent(name)}`;
    const [policy, blocks] = await Promise.all([get<AlertPolicy>(`${base}/securityAlertPolicy`), get<{ value: Block[] }>(`${base}/protection/blocks`)]);
    const detail = ctx.params.alert
      ? h(
          'div',
          {},
          h('p', {}, h('a', { href: `#${base}/threat` }, '← All alerts of this server')),
          await alertDetail(name, ctx.params.alert, ctx.session.canSecure, ctx.refresh),
        )
      : null;
    return h(
      'div',
      {},
      serverHeader(name, '/threat', detail ? `Alert on ${name}` : `Threat protection of ${name}`),
      detail,
      await alertsSection(base),
      await chartSection(ctx, base),
      blocksSection(ctx, base, blocks.value),
      sqlCheckSection(base),
      policySection(ctx, base, policy),
    );
  },
};

async function alertsSection(base: string): Promise<HTMLElement> {
  const list = h('div', { 'aria-live': 'polite' });
  const load = async () => {
    try {
      const alerts = await get<{ value: Alert[] }>(`${base}/alerts${alertQuery(filter)}`);
      list.replaceChildren(alertTable(alerts.value, false));
    } catch (err) {
      list.replaceChildren(status('error', message(err)));
    }
  };
  await load();
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'alerts-title' },
    h('h2', { id: 'alerts-title' }, 'Alerts'),
    alertFilterForm(filter, (f) => {
      filter = f;
      void load();
    }),
    list,
  );
}

async function chartSection(ctx: PageContext, base: string): Promise<HTMLElement> {
  const holder = h('div', {});
  const pick = select('range', Object.keys(RANGES), range);
  const load = async () => {
    const [seconds, bucket] = RANGES[range];
    try {
      const to = Date.now();
      const from = to - seconds * 1000;
      const stats = await get<{ value: LoginPoint[] }>(`${base}/loginStats${query({ since: new Date(from).toISOString(), bucketSeconds: bucket })}`);
      holder.replaceChildren(await loginChart(stats.value, `Logins to ${ctx.params.name}, ${range.toLowerCase()}, per ${bucket / 60} min`, from, to, bucket));
    } catch (err) {
      holder.replaceChildren(status('error', message(err)));
    }
  };
  pick.addEventListener('change', () => {
    range = pick.value as RangeName;
    void load();
  });
  await load();
  return h('section', { class: 'card', 'aria-labelledby': 'chart-title' }, h('h2', { id: 'chart-title' }, 'Logins'), field('Period', pick).row, holder);
}

function blocksSection(ctx: PageContext, base: string, blocks: Block[]): HTMLElement {
  const result = resultSlot('blocks-result');
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'blocks-title' },
    h('h2', { id: 'blocks-title' }, 'Automatic protection: current blocks'),
    table<Block>(
      'Addresses and user/address pairs being throttled',
      [
        { label: 'Scope', cell: (b) => (b.scope === 'address' ? 'Address' : 'User from address') },
        { label: 'Address', cell: (b) => b.address },
        { label: 'User', cell: (b) => b.user ?? '—' },
        { label: 'Failures', cell: (b) => b.failures },
        { label: 'Until', cell: (b) => time(b.until) },
        ...(ctx.session.canSecure
          ? [
              {
                label: 'Actions',
                cell: (b: Block) =>
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'secondary',
                      'aria-label': `Unblock ${b.address}`,
                      onclick: async () => {
                        if (
                          !(await confirmDialog(`Unblock ${b.address}?`, 'Logins from this address are no longer throttled until it fails again.', 'Unblock'))
                        )
                          return;
                        try {
                          await api('DELETE', `${base}/protection/blocks/${encodeURIComponent(b.id)}`);
                          ctx.refresh();
                        } catch (err) {
                          result.replaceChildren(status('error', message(err)));
                        }
                      },
                    },
                    'Unblock',
                  ),
              },
            ]
          : []),
      ],
      blocks,
      'Nothing is blocked.',
    ),
    result,
  );
}

interface SqlVerdict {
  verdict: 'SqlInjection' | 'none';
  shapes: string[];
  detail: string;
  fingerprint: string;
}

/** "Test a statement": the detector's verdict, as `pgwarden threat sql-check --server` gives it. */
function sqlCheckSection(base: string): HTMLElement {
  const sql = h('textarea', { name: 'sql', id: 'sql-check-sql', rows: '3', spellcheck: 'false' });
  const application = h('input', { name: 'application', id: 'sql-check-application', autocomplete: 'off' });
  const result = resultSlot('sql-check-result');
  const form = h(
    'form',
    { class: 'subform', novalidate: true },
    field('Statement', sql, 'One statement as the application sends it. Nothing is run; no alert is raised.').row,
    field('Application name', application, 'Optional: judge against the shapes learned for this application.').row,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Test statement')),
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!sql.value.trim()) {
      result.replaceChildren(status('error', 'Enter a statement to test.'));
      return;
    }
    result.replaceChildren(status('pending', 'Testing…'));
    try {
      const r = await api<{ value: SqlVerdict[] }>('POST', `${base}/sqlCheck`, {
        statements: [{ sql: sql.value }],
        ...(application.value.trim() ? { application: application.value.trim() } : {}),
      });
      const v = r.value[0]!;
      result.replaceChildren(
        h(
          'dl',
          { class: 'facts', id: 'sql-check-verdict' },
          h('dt', {}, 'Verdict'),
          h('dd', {}, v.verdict === 'SqlInjection' ? 'SQL injection' : 'No injection found'),
          h('dt', {}, 'Shapes'),
          h('dd', {}, v.shapes.join(', ') || 'none'),
          h('dt', {}, 'Why'),
          h('dd', {}, v.detail),
          h('dt', {}, 'Fingerprint'),
          h('dd', {}, h('code', {}, v.fingerprint || '—')),
        ),
      );
    } catch (err) {
      result.replaceChildren(status('error', message(err)));
    }
  });
  return h('section', { class: 'card', 'aria-labelledby': 'sql-check-title' }, h('h2', { id: 'sql-check-title' }, 'Test a statement'), form);
}

function policySection(ctx: PageContext, base: string, p: AlertPolicy): HTMLElement {
  const section = h('section', { class: 'card', 'aria-labelledby': 'policy-title' }, h('h2', { id: 'policy-title' }, 'Alert policy'));
  if (!ctx.session.canSecure) {
    section.append(
      h(
        'dl',
        { class: 'facts' },
        ...(
          [
            ['State', p.state],
            ['Disabled alerts', p.disabledAlerts.join(', ') || 'none'],
            ['E-mail', p.emailAddresses.join(', ') || 'none'],
            ['Webhooks', p.webhooks.map((w) => w.url).join(', ') || 'none'],
            ['Retention', `${p.retentionDays} days`],
            ['Automatic protection', p.autoProtection.state],
          ] as const
        ).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
      ),
    );
    return section;
  }
  const state = h('input', { type: 'checkbox', role: 'switch', id: 'policy-state', checked: p.state === 'Enabled' });
  const auto = h('input', { type: 'checkbox', role: 'switch', id: 'policy-auto', checked: p.autoProtection.state === 'Enabled' });
  const types = ALERT_TYPES.map((t) => h('input', { type: 'checkbox', id: `alert-type-${t}`, value: t, checked: !p.disabledAlerts.includes(t) }));
  const emails = h('textarea', { name: 'emailAddresses', rows: '2' });
  emails.value = p.emailAddresses.join('\n');
  const hooks = h('textarea', { name: 'webhooks', rows: '2' });
  hooks.value = p.webhooks.map((w) => w.url).join('\n');
  const secret = h('input', { name: 'webhookSecret', type: 'password', autocomplete: 'off' });
  const retention = h('input', { name: 'retentionDays', type: 'number', min: '1', max: '3650', value: String(p.retentionDays) });
  const result = resultSlot('policy-result');
  const form = h(
    'form',
    { class: 'subform', novalidate: true },
    h('label', { for: state.id, class: 'check' }, state, ' Threat protection enabled'),
    h('label', { for: auto.id, class: 'check' }, auto, ' Automatic protection (throttle addresses that keep failing)'),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Alert types raised'),
      h('div', { class: 'checks' }, ...types.map((b) => h('label', { for: b.id, class: 'check' }, b, ` ${b.value}`))),
    ),
    h(
      'p',
      { class: 'hint', id: 'sqli-exclusions' },
      `Silenced SQL-injection statement shapes: ${
        p.disabledAlerts
          .filter((d) => d.startsWith('SqlInjection:'))
          .map((d) => d.slice('SqlInjection:'.length))
          .join(', ') || 'none'
      } (change with pgwarden server threat-protection update --sqli-allow / --sqli-unallow).`,
    ),
    h(
      'div',
      { class: 'grid' },
      field('E-mail addresses', emails, 'One per line.').row,
      field('Webhook URLs', hooks, 'One per line. Deliveries are signed.').row,
      field('Secret for new webhooks', secret, 'Optional, 16+ characters; generated and shown once if empty. Kept secrets are never shown.').row,
      field('Retention (days)', retention).row,
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save policy')),
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const lines = (t: HTMLTextAreaElement) =>
      t.value
        .split(/[\n,]/)
        .map((s) => s.trim())
        .filter(Boolean);
    const known = new Set(p.webhooks.map((w) => w.url));
    const body = {
      state: state.checked ? 'Enabled' : 'Disabled',
      autoProtection: { state: auto.checked ? 'Enabled' : 'Disabled' },
      // Per-shape SQL-injection exclusions (--sqli-allow) are kept as they are.
      disabledAlerts: [...types.filter((b) => !b.checked).map((b) => b.value), ...p.disabledAlerts.filter((d) => d.startsWith('SqlInjection:'))],
      emailAddresses: lines(emails),
      webhooks: lines(hooks).map((url) => (known.has(url) || !secret.value ? { url } : { url, secret: secret.value })),
      retentionDays: Number(retention.value),
    };
    const t0 = Date.now();
    result.replaceChildren(status('pending', 'Alert policy: saving…'));
    try {
      const saved = await api<AlertPolicy & { generatedWebhookSecrets?: Record<string, string> }>('PATCH', `${base}/securityAlertPolicy`, body);
      secret.value = '';
      const live = carryOver(result);
      const generated = saved.generatedWebhookSecrets ? Object.entries(saved.generatedWebhookSecrets) : [];
      if (generated.length) {
        result.append(
          h(
            'div',
            { class: 'banner' },
            'Webhook secrets generated (shown once, copy them now): ',
            ...generated.map(([url, s]) => h('div', {}, `${url}: `, h('code', {}, s))),
          ),
        );
      } else {
        ctx.refresh();
      }
      await showWhenLive(live, 'Alert policy', t0);
    } catch (err) {
      result.replaceChildren(status('error', message(err)));
    }
  });
  section.append(form);
  return section;
}

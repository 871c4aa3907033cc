// Alerts as the console shows them: filters, a table, and one alert's detail with its evidence
// and recommended action. Shared by the platform's alert list and a server's threat page.
import { api, get, query } from './api.js';
import { field, h, select, status, table, time } from './dom.js';
import { ALERT_TYPES, PLATFORM_ALERT_TYPES, type Alert } from './types.js';

export interface AlertFilter {
  state: string;
  severity: string;
  type: string;
}

export function alertFilterForm(initial: AlertFilter, onChange: (f: AlertFilter) => void): HTMLElement {
  const state = select('state', ['', 'Active', 'Resolved', 'Dismissed'], initial.state);
  const severity = select('severity', ['', 'High', 'Medium', 'Low'], initial.severity);
  const type = select('type', ['', ...ALERT_TYPES, ...PLATFORM_ALERT_TYPES], initial.type);
  for (const s of [state, severity, type]) s.options[0]!.textContent = 'Any';
  const form = h(
    'form',
    { class: 'filters', novalidate: true, 'aria-label': 'Filter alerts' },
    field('State', state).row,
    field('Severity', severity).row,
    field('Type', type).row,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'secondary' }, 'Apply filters')),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    onChange({ state: state.value, severity: severity.value, type: type.value });
  });
  return form;
}

export function alertQuery(f: AlertFilter, extra: Record<string, string> = {}): string {
  return query({ ...extra, state: f.state, severity: f.severity, type: f.type });
}

export function alertTable(alerts: readonly Alert[], showServer: boolean): HTMLElement {
  return table<Alert>(
    'Alerts, newest first',
    [
      { label: 'Severity', cell: (a) => h('span', { class: `sev sev-${a.severity.toLowerCase()}` }, a.severity) },
      { label: 'Alert', cell: (a) => h('a', { href: `#/servers/${encodeURIComponent(a.server)}/threat/alerts/${encodeURIComponent(a.id)}` }, a.title) },
      { label: 'Type', cell: (a) => a.type },
      ...(showServer ? [{ label: 'Server', cell: (a: Alert) => a.server }] : []),
      { label: 'Source', cell: (a) => a.sourceAddress ?? '—' },
      { label: 'Principal', cell: (a) => a.principal ?? '—' },
      { label: 'Count', cell: (a) => a.count },
      { label: 'Last seen', cell: (a) => time(a.lastSeen) },
      { label: 'State', cell: (a) => a.state },
    ],
    alerts,
    'No alerts match.',
  );
}

function evidenceValue(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** One alert in full; `canAct` adds Dismiss and Resolve. */
export async function alertDetail(server: string, id: string, canAct: boolean, after: () => void): Promise<HTMLElement> {
  const path = `/servers/${encodeURIComponent(server)}/alerts/${encodeURIComponent(id)}`;
  const a = await get<Alert>(path);
  const loc = a.location
    ? [a.location.country, a.location.organization, a.location.asn ? `AS${a.location.asn}` : null, a.location.kind].filter(Boolean).join(', ')
    : '—';
  const result = h('div', { class: 'result' });
  const act = (verb: 'dismiss' | 'resolve') =>
    h(
      'button',
      {
        type: 'button',
        class: verb === 'dismiss' ? 'secondary' : '',
        onclick: async () => {
          try {
            await api('POST', `${path}/${verb}`);
            after();
          } catch (err) {
            result.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
          }
        },
      },
      verb === 'dismiss' ? 'Dismiss' : 'Resolve',
    );
  return h(
    'section',
    { class: 'card alert-detail', 'aria-labelledby': 'alert-title', 'data-testid': 'alert-detail' },
    h('h2', { id: 'alert-title' }, h('span', { class: `sev sev-${a.severity.toLowerCase()}` }, a.severity), ' ', a.title),
    h('p', {}, a.description),
    h(
      'dl',
      { class: 'facts' },
      ...(
        [
          ['Type', a.type],
          ['State', a.state],
          ['MITRE tactic', a.tactic],
          ['Principal', a.principal ?? '—'],
          ['Source address', a.sourceAddress ?? '—'],
          ['Location', loc],
          ['First seen', time(a.firstSeen)],
          ['Last seen', time(a.lastSeen)],
          ['Count', String(a.count)],
          ...(a.stateChangedBy ? [['Changed by', `${a.stateChangedBy} at ${time(a.stateChangedAt)}`]] : []),
        ] as [string, string][]
      ).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
    ),
    h('h3', {}, 'Recommended action'),
    h('p', { class: 'recommended' }, a.recommendedAction),
    h('h3', {}, 'Evidence'),
    h('dl', { class: 'facts evidence' }, ...Object.entries(a.evidence).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, h('code', {}, evidenceValue(v)))])),
    canAct && a.state === 'Active' ? h('div', { class: 'actions' }, act('dismiss'), act('resolve')) : null,
    result,
  );
}

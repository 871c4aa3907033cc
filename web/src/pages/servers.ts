// Servers: the list (state, TLS, public access, rule counts, active alerts) and the create form
// with the login and password rules checked as the user types.
import { api, ApiError, get } from '../api.js';
import { field, h, select, status, table } from '../dom.js';
import type { Page, PageContext } from '../page.js';
import { loginProblem, passwordRules, serverNameProblem } from '../validate.js';
import type { Alert, Server } from '../types.js';

interface Row {
  server: Server;
  firewall: number | string;
  vnet: number | string;
  endpoints: number | string;
  alerts: number;
}

const count = async (path: string): Promise<number | string> => {
  try {
    return (await get<{ value: unknown[] }>(path)).value.length;
  } catch (err) {
    return err instanceof ApiError ? '?' : '?';
  }
};

export const serversPage: Page = {
  title: () => 'Servers',
  async render(ctx) {
    const [servers, alerts] = await Promise.all([
      get<{ value: Server[] }>('/servers'),
      get<{ value: Alert[] }>('/alerts?state=Active').catch(() => ({ value: [] as Alert[] })),
    ]);
    const rows: Row[] = await Promise.all(
      servers.value.map(async (s) => {
        const base = `/servers/${encodeURIComponent(s.name)}`;
        const [firewall, vnet, endpoints] = await Promise.all([
          count(`${base}/firewallRules`),
          count(`${base}/virtualNetworkRules`),
          count(`${base}/privateEndpointConnections`),
        ]);
        return { server: s, firewall, vnet, endpoints, alerts: alerts.value.filter((a) => a.server === s.name).length };
      }),
    );
    const list = table<Row>(
      'Servers of this platform',
      [
        { label: 'Name', cell: (r) => h('a', { href: `#/servers/${encodeURIComponent(r.server.name)}` }, r.server.name) },
        { label: 'State', cell: (r) => h('span', { class: `state state-${r.server.state.toLowerCase()}` }, r.server.state) },
        { label: 'TLS', cell: (r) => (r.server.sslEnforcement === 'Enabled' ? `Required, ${tlsLabel(r.server.minimalTlsVersion)}` : 'Not required') },
        { label: 'Public access', cell: (r) => r.server.publicNetworkAccess },
        { label: 'Firewall rules', cell: (r) => r.firewall },
        { label: 'VNet rules', cell: (r) => r.vnet },
        { label: 'Private endpoints', cell: (r) => r.endpoints },
        {
          label: 'Active alerts',
          cell: (r) =>
            r.alerts > 0 ? h('a', { class: 'badge badge-alert', href: `#/servers/${encodeURIComponent(r.server.name)}/threat` }, String(r.alerts)) : '0',
        },
      ],
      rows,
      'No servers yet.',
    );
    return h('div', {}, h('h1', {}, 'Servers'), list, ctx.session.canManage ? createForm(ctx) : null);
  },
};

export function tlsLabel(v: string): string {
  return v === 'TLS1_3' ? 'TLS 1.3+' : v === 'TLS1_2' ? 'TLS 1.2+' : 'any version';
}

function createForm(ctx: PageContext): HTMLElement {
  const name = h('input', { name: 'name', autocomplete: 'off', required: true, maxlength: '63' });
  const login = h('input', { name: 'administratorLogin', autocomplete: 'off', required: true });
  const password = h('input', { name: 'administratorLoginPassword', type: 'password', autocomplete: 'new-password', required: true });
  const ssl = select('sslEnforcement', ['Enabled', 'Disabled'], 'Enabled');
  const tls = select('minimalTlsVersion', ['TLS1_2', 'TLS1_3', 'TLSEnforcementDisabled'], 'TLS1_2');
  const pub = select('publicNetworkAccess', ['Enabled', 'Disabled'], 'Enabled');
  const fName = field('Server name', name, 'Lowercase letters, digits and hyphens; 3 to 63 characters.');
  const fLogin = field('Administrator login', login, 'Not admin, root, postgres…, not starting with pg_.');
  const fPassword = field('Administrator password', password);
  const rules = h('ul', { class: 'rules', 'aria-label': 'Password rules' });
  fPassword.row.insertBefore(rules, fPassword.message);
  const fSsl = field('SSL enforcement', ssl);
  const fTls = field('Minimal TLS version', tls);
  const fPub = field('Public network access', pub);
  const result = h('div', { class: 'result' });
  const submit = h('button', { type: 'submit' }, 'Create server');

  const check = {
    name: () => (name.value === '' ? null : serverNameProblem(name.value)),
    login: () => (login.value === '' ? null : loginProblem(login.value)),
  };
  const showRules = () => {
    rules.replaceChildren(
      ...passwordRules(password.value).map((r) =>
        h('li', { class: r.met ? 'met' : 'unmet' }, `${r.met ? '✓' : '✗'} ${r.label}`, h('span', { class: 'sr-only' }, r.met ? ' (met)' : ' (not met)')),
      ),
    );
  };
  const mark = (input: HTMLInputElement, msg: HTMLElement, problem: string | null) => {
    msg.textContent = problem ?? '';
    input.setAttribute('aria-invalid', problem ? 'true' : 'false');
  };
  name.addEventListener('input', () => mark(name, fName.message, check.name()));
  login.addEventListener('input', () => mark(login, fLogin.message, check.login()));
  password.addEventListener('input', showRules);
  ssl.addEventListener('change', () => {
    if (ssl.value === 'Disabled') tls.value = 'TLSEnforcementDisabled';
    else if (tls.value === 'TLSEnforcementDisabled') tls.value = 'TLS1_2';
  });
  showRules();

  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-labelledby': 'create-server-title' },
    h('h2', { id: 'create-server-title' }, 'Create a server'),
    h('div', { class: 'grid' }, fName.row, fLogin.row, fPassword.row, fSsl.row, fTls.row, fPub.row),
    h('div', { class: 'actions' }, submit),
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const problems: [HTMLInputElement, HTMLElement, string | null][] = [
      [name, fName.message, serverNameProblem(name.value)],
      [login, fLogin.message, loginProblem(login.value)],
      [password, fPassword.message, passwordRules(password.value).every((r) => r.met) ? null : 'The password does not meet the rules above.'],
    ];
    for (const [input, msg, p] of problems) mark(input, msg, p);
    const first = problems.find(([, , p]) => p);
    if (first) {
      first[0].focus();
      return;
    }
    submit.disabled = true;
    result.replaceChildren(status('pending', `Creating ${name.value}… (initializing a PostgreSQL cluster takes a few seconds)`));
    try {
      const s = await api<Server>('POST', '/servers', {
        name: name.value,
        administratorLogin: login.value,
        administratorLoginPassword: password.value,
        sslEnforcement: ssl.value,
        minimalTlsVersion: tls.value,
        publicNetworkAccess: pub.value,
      });
      password.value = '';
      ctx.navigate(`/servers/${encodeURIComponent(s.name)}`);
    } catch (err) {
      result.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
      submit.disabled = false;
    }
  });
  return form;
}

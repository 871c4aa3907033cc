// Connection security of one server: public network access, SSL enforcement and minimal TLS
// version, firewall rules (IPv4 and IPv6), VNet rules, private endpoint connections with
// approve / reject, and an access check that explains the gateway's decision for an address.
// Every change says when the gateway has it (live.ts).
import { api, get } from '../api.js';
import { field, h, resultSlot, select } from '../dom.js';
import type { Page, PageContext } from '../page.js';
import { serverHeader } from '../server-nav.js';
import type { FirewallRule, PrivateEndpoint, Server, VirtualNetwork, VnetRule } from '../types.js';
import { change } from './network-change.js';
import { accessCheckSection } from './network-access-check.js';
import { endpointSection } from './network-endpoints.js';
import { firewallSection } from './network-firewall.js';
import { vnetSection } from './network-vnet.js';

export const networkPage: Page = {
  title: (p) => `Connection security · ${p.name}`,
  async render(ctx) {
    const name = ctx.params.name!;
    const base = `/servers/${encodeURIComponent(name)}`;
    const [server, rules, vnetRules, endpoints, vnets] = await Promise.all([
      get<Server>(base),
      get<{ value: FirewallRule[] }>(`${base}/firewallRules`),
      get<{ value: VnetRule[] }>(`${base}/virtualNetworkRules`),
      get<{ value: PrivateEndpoint[] }>(`${base}/privateEndpointConnections`),
      get<{ value: VirtualNetwork[] }>('/virtualNetworks').catch(() => ({ value: [] as VirtualNetwork[] })),
    ]);
    return h(
      'div',
      {},
      serverHeader(name, '/network', `Connection security of ${name}`),
      settingsSection(ctx, base, server),
      firewallSection(ctx, base, rules.value),
      vnetSection(ctx, base, vnetRules.value, vnets.value),
      endpointSection(ctx, base, endpoints.value),
      accessCheckSection(base, vnets.value),
    );
  },
};

function settingsSection(ctx: PageContext, base: string, s: Server): HTMLElement {
  const section = h('section', { class: 'card', 'aria-labelledby': 'settings-title' }, h('h2', { id: 'settings-title' }, 'Access and TLS'));
  if (!ctx.session.canManage) {
    section.append(
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Public network access'),
        h('dd', { 'data-testid': 'public-access' }, s.publicNetworkAccess),
        h('dt', {}, 'SSL enforcement'),
        h('dd', {}, s.sslEnforcement),
        h('dt', {}, 'Minimal TLS version'),
        h('dd', {}, s.minimalTlsVersion),
      ),
    );
    return section;
  }
  const pub = h('input', { type: 'checkbox', role: 'switch', id: 'public-access', checked: s.publicNetworkAccess === 'Enabled' });
  const ssl = select('sslEnforcement', ['Enabled', 'Disabled'], s.sslEnforcement);
  const tls = select('minimalTlsVersion', ['TLS1_2', 'TLS1_3', 'TLSEnforcementDisabled'], s.minimalTlsVersion);
  const fSsl = field('SSL enforcement', ssl);
  const fTls = field('Minimal TLS version', tls, 'TLS 1.0 and 1.1 are never offered.');
  const result = resultSlot('settings-result');
  pub.addEventListener('change', () => {
    const value = pub.checked ? 'Enabled' : 'Disabled';
    void change(result, `Public network access ${value}`, () => api('PATCH', base, { publicNetworkAccess: value }));
  });
  ssl.addEventListener('change', () => {
    if (ssl.value === 'Disabled') tls.value = 'TLSEnforcementDisabled';
    else if (tls.value === 'TLSEnforcementDisabled') tls.value = 'TLS1_2';
  });
  const save = h(
    'button',
    {
      type: 'button',
      onclick: () => void change(result, 'TLS settings', () => api('PATCH', base, { sslEnforcement: ssl.value, minimalTlsVersion: tls.value })),
    },
    'Save TLS settings',
  );
  section.append(
    h(
      'div',
      { class: 'switch-row' },
      h('label', { for: pub.id, class: 'check' }, pub, ' Public network access'),
      h('p', { class: 'hint' }, 'Off: only approved private endpoints can connect.'),
    ),
    h('div', { class: 'grid' }, fSsl.row, fTls.row),
    h('div', { class: 'actions' }, save),
    result,
  );
  return section;
}

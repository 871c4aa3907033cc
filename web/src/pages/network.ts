// Connection security of one server: public network access, SSL enforcement and minimal TLS
// version, firewall rules (IPv4 and IPv6), VNet rules, private endpoint connections with
// approve / reject, and an access check that explains the gateway's decision for an address.
// Every change says when the gateway has it (live.ts).
import { api, get, query } from '../api.js';
import { carryOver, confirmDialog, field, h, resultSlot, select, status, table, time } from '../dom.js';
import { showWhenLive } from '../live.js';
import type { Page, PageContext } from '../page.js';
import { serverHeader } from '../server-nav.js';
import type { AccessAnswer, FirewallRule, PrivateEndpoint, Server, VirtualNetwork, VnetRule } from '../types.js';
import { ipFamily, rangeProblem, RULE_NAME } from '../validate.js';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

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

/** Runs a change, then shows in `slot` when the gateway has it; errors show the API's message. */
async function change(slot: HTMLElement, what: string, fn: () => Promise<unknown>, after?: () => void): Promise<boolean> {
  const t0 = Date.now();
  slot.replaceChildren(status('pending', `${what}: saving…`));
  try {
    await fn();
  } catch (err) {
    slot.replaceChildren(status('error', message(err)));
    return false;
  }
  const live = carryOver(slot);
  after?.();
  await showWhenLive(live, what, t0);
  return true;
}

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

let myAddress: Promise<string> | null = null;
/** The address the control plane sees this browser connect from. */
function currentAddress(): Promise<string> {
  myAddress ??= fetch('/console/address', { cache: 'no-store', credentials: 'omit' })
    .then((r) => r.json() as Promise<{ address: string }>)
    .then((b) => b.address);
  return myAddress;
}

function firewallSection(ctx: PageContext, base: string, rules: FirewallRule[]): HTMLElement {
  const result = resultSlot('firewall-result');
  const canEdit = ctx.session.canSecure;
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'fw-title' },
    h('h2', { id: 'fw-title' }, 'Firewall rules'),
    h('p', { class: 'hint' }, 'Deny by default: an address connects only when a rule covers it. IPv4 and IPv6 ranges, both ends included.'),
  );
  const editRow = (r: FirewallRule): HTMLElement => {
    const cell = h('div', { class: 'row-actions' });
    const edit = h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        'aria-label': `Edit rule ${r.name}`,
        onclick: () => {
          cell.replaceChildren(
            ruleForm(r, async (start, end) =>
              change(
                result,
                `Rule ${r.name}`,
                () => api('PATCH', `${base}/firewallRules/${encodeURIComponent(r.name)}`, { startIpAddress: start, endIpAddress: end }),
                ctx.refresh,
              ),
            ),
          );
          cell.querySelector('input')?.focus();
        },
      },
      'Edit',
    );
    const del = h(
      'button',
      {
        type: 'button',
        class: 'danger',
        'aria-label': `Delete rule ${r.name}`,
        onclick: async () => {
          if (
            await confirmDialog(
              `Delete rule ${r.name}?`,
              `Addresses ${r.startIpAddress} – ${r.endIpAddress} will no longer be admitted by this rule.`,
              'Delete rule',
            )
          ) {
            await change(result, `Rule ${r.name} deleted`, () => api('DELETE', `${base}/firewallRules/${encodeURIComponent(r.name)}`), ctx.refresh);
          }
        },
      },
      'Delete',
    );
    cell.append(edit, del);
    return cell;
  };
  section.append(
    table<FirewallRule>(
      'Firewall rules',
      [
        { label: 'Name', cell: (r) => r.name },
        { label: 'Start address', cell: (r) => r.startIpAddress },
        { label: 'End address', cell: (r) => r.endIpAddress },
        { label: 'Family', cell: (r) => (ipFamily(r.startIpAddress) === 6 ? 'IPv6' : 'IPv4') },
        { label: 'Changed', cell: (r) => time(r.updatedAt) },
        ...(canEdit ? [{ label: 'Actions', cell: editRow }] : []),
      ],
      rules,
      'No firewall rules: no address can connect over the public listener.',
    ),
  );
  if (canEdit) section.append(addRuleForm(ctx, base, result));
  section.append(result);
  return section;
}

/** Inline editor of a rule's range. */
function ruleForm(r: FirewallRule, save: (start: string, end: string) => Promise<boolean>): HTMLElement {
  const start = h('input', { name: 'startIpAddress', value: r.startIpAddress, 'aria-label': `Start address of ${r.name}`, autocomplete: 'off' });
  const end = h('input', { name: 'endIpAddress', value: r.endIpAddress, 'aria-label': `End address of ${r.name}`, autocomplete: 'off' });
  const msg = h('p', { class: 'field-message', 'aria-live': 'polite' });
  const form = h('form', { class: 'inline-form', novalidate: true }, start, end, h('button', { type: 'submit' }, 'Save'), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const p = rangeProblem(start.value, end.value);
    msg.textContent = p ?? '';
    if (!p) await save(start.value.trim(), end.value.trim());
  });
  return form;
}

function addRuleForm(ctx: PageContext, base: string, result: HTMLElement): HTMLElement {
  const name = h('input', { name: 'ruleName', autocomplete: 'off', maxlength: '128' });
  const start = h('input', { name: 'startIpAddress', autocomplete: 'off', placeholder: '203.0.113.10 or 2001:db8::1' });
  const end = h('input', { name: 'endIpAddress', autocomplete: 'off' });
  const fName = field('Rule name', name, 'Letters, digits, - and _.');
  const fStart = field('Start address', start);
  const fEnd = field('End address', end, 'Leave empty for a single address.');
  const validate = () => {
    fName.message.textContent = name.value && !RULE_NAME.test(name.value) ? '1 to 128 letters, digits, - or _.' : '';
    fStart.message.textContent = start.value && ipFamily(start.value.trim()) === null ? 'Not an IPv4 or IPv6 address.' : '';
    const endValue = end.value.trim() || start.value.trim();
    fEnd.message.textContent = start.value && end.value ? (rangeProblem(start.value, endValue) ?? '') : '';
    for (const [input, f] of [
      [name, fName],
      [start, fStart],
      [end, fEnd],
    ] as const) {
      input.setAttribute('aria-invalid', f.message.textContent ? 'true' : 'false');
    }
  };
  for (const i of [name, start, end]) i.addEventListener('input', validate);
  const mine = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: async () => {
        try {
          const a = await currentAddress();
          start.value = a;
          end.value = a;
          if (!name.value) name.value = `my-address-${ipFamily(a) === 6 ? 'v6' : 'v4'}`;
          validate();
          start.focus();
        } catch (err) {
          result.replaceChildren(status('error', `Could not learn your address: ${message(err)}`));
        }
      },
    },
    'Add my current address',
  );
  const form = h(
    'form',
    { class: 'subform', novalidate: true, 'aria-labelledby': 'fw-add-title' },
    h('h3', { id: 'fw-add-title' }, 'Add a rule'),
    h('div', { class: 'grid' }, fName.row, fStart.row, fEnd.row),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add rule'), mine),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const endValue = end.value.trim() || start.value.trim();
    const problem = !RULE_NAME.test(name.value) ? 'Give the rule a name: 1 to 128 letters, digits, - or _.' : rangeProblem(start.value, endValue);
    if (problem) {
      result.replaceChildren(status('error', problem));
      (RULE_NAME.test(name.value) ? start : name).focus();
      return;
    }
    await change(
      result,
      `Rule ${name.value}`,
      () => api('POST', `${base}/firewallRules`, { name: name.value, startIpAddress: start.value.trim(), endIpAddress: endValue }),
      ctx.refresh,
    );
  });
  return form;
}

function vnetSection(ctx: PageContext, base: string, rules: VnetRule[], vnets: VirtualNetwork[]): HTMLElement {
  const result = resultSlot('vnet-result');
  const canEdit = ctx.session.canSecure;
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'vnet-title' },
    h('h2', { id: 'vnet-title' }, 'Virtual network rules'),
    h('p', { class: 'hint' }, 'Traffic from a subnet with the service endpoint is judged only by these rules.'),
    table<VnetRule>(
      'Virtual network rules',
      [
        { label: 'Name', cell: (r) => r.name },
        { label: 'Subnet', cell: (r) => r.virtualNetworkSubnetId },
        { label: 'State', cell: (r) => r.state },
        { label: 'Ignore missing endpoint', cell: (r) => (r.ignoreMissingVnetServiceEndpoint ? 'Yes' : 'No') },
        ...(canEdit
          ? [
              {
                label: 'Actions',
                cell: (r: VnetRule) =>
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'danger',
                      'aria-label': `Delete VNet rule ${r.name}`,
                      onclick: async () => {
                        if (
                          await confirmDialog(
                            `Delete VNet rule ${r.name}?`,
                            `Traffic from ${r.virtualNetworkSubnetId} will no longer be admitted by this rule.`,
                            'Delete rule',
                          )
                        ) {
                          await change(
                            result,
                            `VNet rule ${r.name} deleted`,
                            () => api('DELETE', `${base}/virtualNetworkRules/${encodeURIComponent(r.name)}`),
                            ctx.refresh,
                          );
                        }
                      },
                    },
                    'Delete',
                  ),
              },
            ]
          : []),
      ],
      rules,
      'No virtual network rules.',
    ),
  );
  if (canEdit) {
    const subnets = vnets.flatMap((v) => v.subnets.map((s) => s.id));
    if (subnets.length === 0) {
      section.append(h('p', { class: 'hint' }, 'No virtual networks are defined on this platform; create one with `pgwarden network vnet create` first.'));
    } else {
      const name = h('input', { name: 'vnetRuleName', autocomplete: 'off' });
      const subnet = select('virtualNetworkSubnetId', subnets);
      const ignore = h('input', { type: 'checkbox', id: 'vnet-ignore' });
      const form = h(
        'form',
        { class: 'subform', novalidate: true, 'aria-labelledby': 'vnet-add-title' },
        h('h3', { id: 'vnet-add-title' }, 'Add a VNet rule'),
        h('div', { class: 'grid' }, field('Rule name', name).row, field('Subnet', subnet).row),
        h('label', { for: ignore.id, class: 'check' }, ignore, ' Create even if the subnet has no service endpoint'),
        h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add VNet rule')),
      );
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        if (!RULE_NAME.test(name.value)) {
          result.replaceChildren(status('error', 'Give the rule a name: 1 to 128 letters, digits, - or _.'));
          name.focus();
          return;
        }
        await change(
          result,
          `VNet rule ${name.value}`,
          () =>
            api('POST', `${base}/virtualNetworkRules`, {
              name: name.value,
              virtualNetworkSubnetId: subnet.value,
              ignoreMissingVnetServiceEndpoint: ignore.checked,
            }),
          ctx.refresh,
        );
      });
      section.append(form);
    }
  }
  section.append(result);
  return section;
}

function endpointSection(ctx: PageContext, base: string, endpoints: PrivateEndpoint[]): HTMLElement {
  const result = resultSlot('endpoint-result');
  const canEdit = ctx.session.canSecure;
  const decide = (c: PrivateEndpoint, verb: 'approve' | 'reject') =>
    change(
      result,
      `Private endpoint ${c.name} ${verb === 'approve' ? 'approved' : 'rejected'}`,
      () => api('POST', `${base}/privateEndpointConnections/${encodeURIComponent(c.name)}/${verb}`, {}),
      ctx.refresh,
    );
  const actions = (c: PrivateEndpoint) =>
    h(
      'div',
      { class: 'row-actions' },
      c.status !== 'Approved'
        ? h('button', { type: 'button', 'aria-label': `Approve private endpoint ${c.name}`, onclick: () => void decide(c, 'approve') }, 'Approve')
        : null,
      c.status !== 'Rejected'
        ? h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              'aria-label': `Reject private endpoint ${c.name}`,
              onclick: async () => {
                if (await confirmDialog(`Reject ${c.name}?`, 'Connections through this endpoint will be refused.', 'Reject')) await decide(c, 'reject');
              },
            },
            'Reject',
          )
        : null,
    );
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'pe-title' },
    h('h2', { id: 'pe-title' }, 'Private endpoint connections'),
    h('p', { class: 'hint' }, 'An endpoint appears as Pending the first time a load balancer brings a connection through it.'),
    table<PrivateEndpoint>(
      'Private endpoint connections',
      [
        { label: 'Endpoint', cell: (c) => c.privateEndpoint.id },
        { label: 'Kind', cell: (c) => c.privateEndpoint.kind },
        { label: 'Status', cell: (c) => h('span', { class: `state state-${c.status.toLowerCase()}` }, c.status) },
        { label: 'Description', cell: (c) => c.description || '—' },
        { label: 'Changed', cell: (c) => time(c.updatedAt) },
        ...(canEdit ? [{ label: 'Actions', cell: actions }] : []),
      ],
      endpoints,
      'No private endpoint connections.',
    ),
    result,
  );
}

function accessCheckSection(base: string, vnets: VirtualNetwork[]): HTMLElement {
  const ip = h('input', { name: 'ip', autocomplete: 'off', required: true });
  const listener = select('listener', ['public', 'private-link', ...vnets.map((v) => v.name)], 'public');
  const endpoint = h('input', { name: 'endpoint', autocomplete: 'off' });
  const user = h('input', { name: 'user', autocomplete: 'off' });
  const database = h('input', { name: 'database', autocomplete: 'off' });
  const ssl = select('ssl', ['true', 'false'], 'true');
  const result = h('div', { class: 'result', 'aria-live': 'polite', id: 'access-result' });
  const fIp = field('Client address', ip);
  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-labelledby': 'ac-title' },
    h('h2', { id: 'ac-title' }, 'Access check'),
    h('p', { class: 'hint' }, 'What the gateway would decide for a connection from this address, and why.'),
    h(
      'div',
      { class: 'grid' },
      fIp.row,
      field('Listener', listener).row,
      field('Private endpoint id', endpoint, 'Only for private-link.').row,
      field('User', user).row,
      field('Database', database).row,
      field('TLS', ssl).row,
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Check access')),
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (ipFamily(ip.value.trim()) === null) {
      fIp.message.textContent = 'Not an IPv4 or IPv6 address.';
      ip.focus();
      return;
    }
    fIp.message.textContent = '';
    try {
      const a = await get<AccessAnswer>(
        `${base}/accessCheck${query({ ip: ip.value.trim(), listener: listener.value, endpoint: endpoint.value, user: user.value, database: database.value, ssl: ssl.value })}`,
      );
      result.replaceChildren(
        status(a.allow ? 'ok' : 'error', `${a.allow ? 'Allowed' : 'Refused'}: ${a.explanation ?? a.reason}`),
        h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Reason code'),
          h('dd', {}, a.reason),
          a.rule ? h('dt', {}, 'Rule') : null,
          a.rule ? h('dd', {}, a.rule) : null,
          a.subnet ? h('dt', {}, 'Subnet') : null,
          a.subnet ? h('dd', {}, a.subnet) : null,
          a.error ? h('dt', {}, 'Client would see') : null,
          a.error ? h('dd', {}, h('code', {}, `${a.error.sqlstate} ${a.error.message}`)) : null,
        ),
      );
    } catch (err) {
      result.replaceChildren(status('error', message(err)));
    }
  });
  return form;
}

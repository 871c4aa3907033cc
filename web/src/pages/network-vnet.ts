// The VNet rules of one server: which virtual network subnets may connect.
import { api } from '../api.js';
import { confirmDialog, field, h, resultSlot, select, status, table } from '../dom.js';
import type { PageContext } from '../page.js';
import type { VirtualNetwork, VnetRule } from '../types.js';
import { RULE_NAME } from '../validate.js';
import { change } from './network-change.js';

export function vnetSection(ctx: PageContext, base: string, rules: VnetRule[], vnets: VirtualNetwork[]): HTMLElement {
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

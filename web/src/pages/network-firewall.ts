// The firewall rules of one server (IPv4 and IPv6 ranges): list, edit, delete, add, and add the
// address this browser connects from.
import { api } from '../api.js';
import { confirmDialog, field, h, resultSlot, status, table, time } from '../dom.js';
import type { PageContext } from '../page.js';
import type { FirewallRule } from '../types.js';
import { ipFamily, rangeProblem, RULE_NAME } from '../validate.js';
import { change } from './network-change.js';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

let myAddress: Promise<string> | null = null;
/** The address the control plane sees this browser connect from. */
function currentAddress(): Promise<string> {
  myAddress ??= fetch('/console/address', { cache: 'no-store', credentials: 'omit' })
    .then((r) => r.json() as Promise<{ address: string }>)
    .then((b) => b.address);
  return myAddress;
}

export function firewallSection(ctx: PageContext, base: string, rules: FirewallRule[]): HTMLElement {
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

// The forms that change the key of one server: to a customer-managed key in an HSM (PUT /keys
// with PKCS#11 module, token, PIN and key label) and back to the system-managed key.
import { api, get } from '../api.js';
import { confirmDialog, field, h } from '../dom.js';
import type { KeyInUse, Server } from '../types.js';

/** Runs a key change and repaints the key section with the answer (keySection's `act`). */
export type Act = (what: string, fn: () => Promise<KeyInUse>, done: (k: KeyInUse, s: Server) => string) => Promise<void>;

/** PUT /keys with an HSM key. The PIN goes to the API once: the field is emptied after every
 * submit, is never shown again and is never written to browser storage. */
export function customerKeyForm(name: string, base: string, k: KeyInUse, act: Act): HTMLElement {
  // A module is named, never given as a path: the platform's operator configures modules
  // (`pgwarden up --pkcs11-module NAME=PATH`); the list offers their names.
  const modules = h('datalist', { id: 'pkcs11-modules' });
  const module = h('input', {
    name: 'pkcs11Module',
    autocomplete: 'off',
    spellcheck: 'false',
    value: k.pkcs11?.module ?? '',
    placeholder: 'softhsm',
    list: modules.id,
  });
  void get<{ value: { name: string }[] }>('/pkcs11Modules').then(
    (r) => {
      for (const m of r.value) modules.append(h('option', { value: m.name }));
      if (!module.value && r.value.length === 1) module.value = r.value[0]!.name;
    },
    () => undefined,
  );
  const token = h('input', { name: 'tokenLabel', autocomplete: 'off', spellcheck: 'false', value: k.pkcs11?.tokenLabel ?? '' });
  const label = h('input', { name: 'keyLabel', autocomplete: 'off', spellcheck: 'false', value: k.pkcs11?.keyLabel ?? '' });
  const pin = h('input', { name: 'pin', type: 'password', autocomplete: 'off', spellcheck: 'false' });
  const create = h('input', { type: 'checkbox', id: 'cmk-create', name: 'createIfMissing' });
  const fModule = field('PKCS#11 module', module, 'Name of a module the platform operator configured (pgwarden up --pkcs11-module NAME=PATH).');
  const fToken = field('Token label', token);
  const fLabel = field('Key label', label, 'An AES or RSA key in that token.');
  const fPin = field('Token PIN', pin, 'Used to log in to the token; never shown again and not kept by the browser.');
  const title = k.type === 'CustomerManaged' ? 'Use another HSM key' : 'Use a customer-managed key';
  const form = h(
    'form',
    { class: 'subform', novalidate: true, 'aria-labelledby': 'cmk-title' },
    h('h3', { id: 'cmk-title' }, title),
    h('p', { class: 'hint' }, 'If this key is later deleted or disabled in the HSM, the server becomes Inaccessible until it is back and revalidated.'),
    h('div', { class: 'grid' }, fModule.row, fToken.row, fLabel.row, fPin.row),
    modules,
    h('label', { for: create.id, class: 'check' }, create, ' Create the key in the token if it does not exist (AES-256)'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Use this HSM key')),
  );
  const checks: [HTMLInputElement, HTMLElement, () => string | null][] = [
    [module, fModule.message, () => (module.value.trim() ? null : 'Give the name of a configured PKCS#11 module.')],
    [
      token,
      fToken.message,
      () => (!token.value.trim() ? 'Give the token label.' : token.value.trim().length > 32 ? 'A token label has at most 32 characters.' : null),
    ],
    [label, fLabel.message, () => (label.value.trim() ? null : 'Give the key label.')],
    [pin, fPin.message, () => (pin.value ? null : 'Give the token PIN.')],
  ];
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let first: HTMLInputElement | null = null;
    for (const [input, msg, check] of checks) {
      const p = check();
      msg.textContent = p ?? '';
      input.setAttribute('aria-invalid', p ? 'true' : 'false');
      if (p && !first) first = input;
    }
    if (first) {
      first.focus();
      return;
    }
    const body = {
      type: 'CustomerManaged',
      pkcs11Module: module.value.trim(),
      tokenLabel: token.value.trim(),
      keyLabel: label.value.trim(),
      pin: pin.value,
      ...(create.checked ? { createIfMissing: true } : {}),
    };
    pin.value = '';
    await act(
      `Switching ${name} to the HSM key '${body.keyLabel}'`,
      () => api<KeyInUse>('PUT', `${base}/keys`, body),
      (r) =>
        `Customer-managed key in use: '${r.pkcs11?.keyLabel ?? body.keyLabel}' on token '${r.pkcs11?.tokenLabel ?? body.tokenLabel}', KEK version ${r.kekVersion}.`,
    );
  });
  return form;
}

export function systemKeyForm(name: string, base: string, act: Act): HTMLElement {
  const back = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: async () => {
        if (
          !(await confirmDialog(
            `Use a system-managed key for ${name}?`,
            "The volume's data key is re-wrapped under a key derived from the platform root key; the HSM key is no longer used by this server.",
            'Use system-managed key',
          ))
        )
          return;
        await act(
          `Switching ${name} to a system-managed key`,
          () => api<KeyInUse>('PUT', `${base}/keys`, { type: 'SystemManaged' }),
          (r) => `System-managed key in use, KEK version ${r.kekVersion}.`,
        );
      },
    },
    'Switch to system-managed key',
  );
  return h('div', { class: 'subform' }, h('h3', {}, 'Back to a system-managed key'), h('div', { class: 'actions' }, back));
}

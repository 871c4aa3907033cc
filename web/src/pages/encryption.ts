// Encryption and backups of one server: the key-encryption key in use (system- or
// customer-managed, its last validation, the encrypted volume), rotate and revalidate, the switch
// to a customer key in an HSM and back; the encrypted backups with their sizes and WAL ranges,
// "back up now" and a restore to a point in time into a new server, both followed through
// GET /operations/{id} until they end. A role that may not change them sees the same facts and
// no control.
import { api, ApiError, enc, get } from '../api.js';
import { append, bytes, confirmDialog, field, h, status, table, time } from '../dom.js';
import type { Page, PageContext } from '../page.js';
import { serverHeader } from '../server-nav.js';
import type { Backup, KeyInUse, Operation, Server } from '../types.js';
import { serverNameProblem } from '../validate.js';

/** The client error of SPEC.md §4, shown as it is when the key cannot be reached. */
export const INACCESSIBLE = 'Server is inaccessible: its encryption key cannot be accessed.';

const POLL_MS = 500;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A failed read becomes its error, so one missing part does not hide the others. */
const settle = <T>(p: Promise<T>): Promise<T | ApiError> =>
  p.catch((err: unknown) => {
    if (err instanceof ApiError) return err;
    throw err;
  });

/** Operations started from this page that are still running, by `${server}:${kind}`: a page
 * opened again (or re-rendered) keeps following them. */
const running = new Map<string, string>();

export const encryptionPage: Page = {
  title: (p) => `Encryption and backups · ${p.name}`,
  async render(ctx) {
    const name = ctx.params.name!;
    const base = `/servers/${enc(name)}`;
    const [server, key, backups] = await Promise.all([
      get<Server>(base),
      settle(get<KeyInUse>(`${base}/keys`)),
      settle(get<{ value: Backup[] }>(`${base}/backups`)),
    ]);
    const banner = h('div', { class: 'key-banner-slot' });
    return h(
      'div',
      {},
      serverHeader(name, '/encryption', `Encryption and backups of ${name}`),
      banner,
      keySection(ctx, base, server, key, banner),
      backupSection(ctx, base, backups),
      ctx.session.canManage ? restoreSection(ctx, base) : null,
    );
  },
};

// ---------------------------------------------------------------------------------------------
// Key in use

/** Who may rotate, revalidate or change the key: the roles that manage servers (as for backups,
 * src/control/rbac.ts MANAGE); the API stays the authority and its refusal is shown as it is. */
const canChangeKey = (ctx: PageContext) => ctx.session.canManage;

function backendLabel(backend: string): string {
  if (backend === 'fscrypt') return 'fscrypt (kernel ext4 encryption, AES-256-XTS)';
  if (backend === 'gocryptfs') return 'gocryptfs (FUSE, AES-256-GCM)';
  return backend;
}

function ago(iso: string | null): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (Number.isNaN(s)) return '';
  return s < 90 ? ` (${s} s ago)` : s < 5400 ? ` (${Math.round(s / 60)} min ago)` : ` (${Math.round(s / 3600)} h ago)`;
}

function keyFacts(s: Server, k: KeyInUse): HTMLElement {
  const rows: [string, Node | string][] = [
    ['Server state', h('span', { class: `state state-${s.state.toLowerCase()}`, 'data-testid': 'server-state' }, s.state)],
    ['Key type', k.type === 'CustomerManaged' ? 'Customer-managed (HSM key through PKCS#11)' : 'System-managed (derived from the platform root key)'],
  ];
  if (k.pkcs11) {
    rows.push(['HSM module', h('code', {}, k.pkcs11.module)], ['Token', k.pkcs11.tokenLabel], ['Key label', k.pkcs11.keyLabel]);
    if (k.pkcs11.keyId) rows.push(['Key id', h('code', {}, k.pkcs11.keyId)]);
  }
  rows.push(
    ['Key reference', h('code', {}, k.keyRef)],
    ['KEK version', h('span', { 'data-testid': 'kek-version' }, String(k.kekVersion))],
    [
      'Status',
      h('span', {}, h('span', { class: `state state-${k.status.toLowerCase()}`, 'data-testid': 'key-status' }, k.status), k.reason ? ` ${k.reason}` : null),
    ],
    ['Last validated', k.lastValidatedAt ? `${time(k.lastValidatedAt)}${ago(k.lastValidatedAt)}` : 'never'],
    ['Checked', `every ${k.checkIntervalSeconds} s`],
  );
  if (k.volume) {
    rows.push(
      ['Volume', h('span', { 'data-testid': 'volume-backend' }, backendLabel(k.volume.backend))],
      ['Volume size', bytes(k.volume.sizeBytes)],
      ['Volume open', k.volume.open ? 'Open: its key is loaded while the server runs' : 'Closed: its key is not in memory'],
    );
  } else {
    rows.push(['Volume', 'No encrypted volume is recorded for this server.']);
  }
  return h('dl', { class: 'facts', 'data-testid': 'key-facts' }, ...rows.flatMap(([dt, dd]) => [h('dt', {}, dt), h('dd', {}, dd)]));
}

function keySection(ctx: PageContext, base: string, server0: Server, key0: KeyInUse | ApiError, banner: HTMLElement): HTMLElement {
  const name = server0.name;
  const body = h('div', {});
  const result = h('div', { class: 'result', id: 'key-result' });
  let busy = false;

  /** Runs a key change; the answer (the key document) repaints the section. */
  const act = async (what: string, fn: () => Promise<KeyInUse>, done: (k: KeyInUse, s: Server) => string) => {
    if (busy) return;
    busy = true;
    result.replaceChildren(status('pending', `${what}…`));
    try {
      const k = await fn();
      const s = await get<Server>(base).catch(() => server0);
      paint(s, k);
      const line = status('ok', done(k, s));
      line.setAttribute('tabindex', '-1');
      result.replaceChildren(line);
      line.focus();
    } catch (err) {
      result.replaceChildren(status('error', message(err)));
    } finally {
      busy = false;
    }
  };

  const revalidate = (primary: boolean, label: string) =>
    h(
      'button',
      {
        type: 'button',
        class: primary ? null : 'secondary',
        onclick: () =>
          void act(
            'Revalidating the key',
            () => api<KeyInUse>('POST', `${base}/keys/revalidate`, {}),
            (k, s) => `Key revalidated${k.lastValidatedAt ? ` at ${time(k.lastValidatedAt)}` : ''}: ${k.status}; the server is ${s.state}.`,
          ),
      },
      label,
    );

  const paint = (s: Server, k: KeyInUse | ApiError) => {
    const inaccessible = s.state === 'Inaccessible';
    const canEdit = canChangeKey(ctx);
    banner.replaceChildren(
      inaccessible
        ? h(
            'div',
            { class: 'status status-error key-banner', role: 'alert', 'data-testid': 'inaccessible-banner' },
            h('p', {}, h('strong', {}, INACCESSIBLE)),
            h(
              'p',
              {},
              'Clients are refused with this error and the server is stopped; nothing is lost. Bring the key back in the HSM (or enable it again), then revalidate.',
            ),
            canEdit ? h('div', { class: 'actions' }, revalidate(true, 'Revalidate key')) : null,
          )
        : '',
    );
    if (k instanceof ApiError) {
      body.replaceChildren(status('error', `The key in use cannot be read: ${k.message}`));
      return;
    }
    body.replaceChildren(keyFacts(s, k));
    if (!canEdit) return;
    if (inaccessible) {
      // The API refuses to rotate or change a key it cannot reach: revalidating comes first.
      body.append(h('p', { class: 'hint' }, 'Rotating or changing the key needs the key back: revalidate first.'));
      return;
    }
    const valid = k.status === 'Valid' && !inaccessible;
    const newLabel = h('input', { name: 'rotateKeyLabel', autocomplete: 'off', maxlength: '128' });
    const rotate = h(
      'button',
      {
        type: 'button',
        class: valid ? null : 'secondary',
        onclick: async () => {
          const label = newLabel.value.trim();
          const target = label ? ` under the HSM key '${label}'` : '';
          if (
            !(await confirmDialog(
              `Rotate the key of ${name}?`,
              `The volume's data key is re-wrapped under KEK version ${k.kekVersion + 1}${target}. No data is re-encrypted and the server stays online.`,
              'Rotate key',
            ))
          )
            return;
          await act(
            'Rotating the key',
            () => api<KeyInUse>('POST', `${base}/keys/rotate`, label ? { keyLabel: label } : {}),
            (r) => `Key rotated: KEK version ${r.kekVersion} in use${r.pkcs11 ? ` (HSM key '${r.pkcs11.keyLabel}')` : ''}.`,
          );
        },
      },
      'Rotate key',
    );
    append(
      body,
      k.pkcs11
        ? h(
            'div',
            { class: 'narrow-field' },
            field('New HSM key label for the rotation', newLabel, 'Optional: empty keeps the same HSM key and adds a version.').row,
          )
        : null,
      // When the key is unavailable, revalidating is the way back: it comes first and primary.
      h('div', { class: 'actions' }, ...(valid ? [rotate, revalidate(false, 'Revalidate now')] : [revalidate(true, 'Revalidate now'), rotate])),
      customerKeyForm(name, base, k, act),
      k.type === 'CustomerManaged' ? systemKeyForm(name, base, act) : null,
    );
  };
  paint(server0, key0);
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'key-title' },
    h('h2', { id: 'key-title' }, 'Key in use'),
    h(
      'p',
      { class: 'hint' },
      "Storage encryption is always on and cannot be turned off. The server's data directory, WAL and temporary files are on an encrypted volume whose data key is wrapped by this key-encryption key (KEK).",
    ),
    body,
    result,
  );
}

type Act = (what: string, fn: () => Promise<KeyInUse>, done: (k: KeyInUse, s: Server) => string) => Promise<void>;

/** PUT /keys with an HSM key. The PIN goes to the API once: the field is emptied after every
 * submit, is never shown again and is never written to browser storage. */
function customerKeyForm(name: string, base: string, k: KeyInUse, act: Act): HTMLElement {
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

function systemKeyForm(name: string, base: string, act: Act): HTMLElement {
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

// ---------------------------------------------------------------------------------------------
// Operations: backups and restores

const PHASES: Record<string, string> = {
  backup: 'Copying and encrypting the base backup',
  'wait-archive': 'Waiting for the last WAL segment to be archived',
  extract: 'Decrypting and extracting the base backup',
  replay: 'Replaying the archived WAL',
  done: 'Finishing',
};

function progressText(op: Operation): string {
  const p = op.progress;
  if (!p) return 'Starting…';
  const phase = PHASES[p.phase] ?? p.phase;
  if (p.unit === 'wal-files') return `${phase}: ${p.done} WAL files${p.total ? ` of about ${p.total}` : ''}`;
  const pct = p.total ? ` (${Math.min(100, Math.floor((100 * p.done) / p.total))}%)` : '';
  return `${phase}: ${bytes(p.done)}${p.total ? ` of about ${bytes(p.total)}` : ''}${pct}`;
}

/** Follows an operation in `slot` with a progress bar until it ends; null when the page was left
 * (the operation goes on; opening the page again resumes following it). */
async function follow(id: string, slot: HTMLElement, what: string): Promise<Operation | null> {
  const bar = h('progress', { max: '1', 'aria-label': `${what} progress` });
  const text = h('span', {});
  slot.replaceChildren(
    h(
      'div',
      { class: 'progress-row status status-pending', 'data-testid': 'operation-progress' },
      h('span', { class: 'progress-what' }, `${what}: `),
      text,
      bar,
    ),
  );
  for (let first = true; ; first = false) {
    if (!first && !slot.isConnected) return null;
    const op = await get<Operation>(`/operations/${enc(id)}`);
    if (op.status !== 'Running') return op;
    text.textContent = progressText(op);
    const p = op.progress;
    if (p && p.total > 0) {
      bar.max = p.total;
      bar.value = Math.min(p.done, p.total);
    } else {
      bar.removeAttribute('value'); // indeterminate
    }
    await sleep(POLL_MS);
  }
}

/** follow() for an operation this page started (`running`): once it ended, or following it
 * failed (shown in `slot`), the page stops tracking it. Null when it did not end here. */
async function followRunning(opKey: string, id: string, slot: HTMLElement, what: string): Promise<Operation | null> {
  let op: Operation | null;
  try {
    op = await follow(id, slot, what);
  } catch (err) {
    running.delete(opKey);
    slot.replaceChildren(status('error', message(err)));
    return null;
  }
  if (op) running.delete(opKey);
  return op;
}

function backupSection(ctx: PageContext, base: string, backups0: { value: Backup[] } | ApiError): HTMLElement {
  const name = ctx.params.name!;
  const list = h('div', { id: 'backup-list' });
  const result = h('div', { class: 'result', id: 'backup-result' });
  const show = (b: { value: Backup[] } | ApiError) => {
    if (b instanceof ApiError) {
      list.replaceChildren(status('error', `The backups cannot be listed: ${b.message}`));
      return;
    }
    const sorted = [...b.value].sort((x, y) => y.startTime.localeCompare(x.startTime));
    list.replaceChildren(
      table<Backup>(
        `Backups of ${name}, newest first`,
        [
          { label: 'Kind', cell: (x) => x.kind ?? 'Full' },
          { label: 'Started', cell: (x) => time(x.startTime) },
          { label: 'Ended', cell: (x) => time(x.stopTime) },
          { label: 'Size', cell: (x) => bytes(x.sizeBytes) },
          { label: 'Stored (encrypted)', cell: (x) => bytes(x.storedBytes) },
          { label: 'WAL range', cell: (x) => h('span', {}, h('code', {}, x.startLsn), ' → ', h('code', {}, x.stopLsn), ` (timeline ${x.timeline})`) },
          { label: 'Encryption', cell: (x) => `${x.cipher}, ${x.kek.provider} KEK v${x.kek.version}` },
          { label: 'Id', cell: (x) => h('code', {}, x.id) },
        ],
        sorted,
        'No backups yet.',
      ),
    );
  };
  const reload = async () => show(await settle(get<{ value: Backup[] }>(`${base}/backups`)));
  show(backups0);

  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'backups-title' },
    h('h2', { id: 'backups-title' }, 'Backups'),
    h(
      'p',
      { class: 'hint' },
      'Full base backups plus continuous WAL archiving. Every byte is encrypted with AES-256-GCM before it reaches the backup repository.',
    ),
    list,
  );
  const opKey = `${name}:backup`;
  const watch = async (id: string) => {
    const op = await followRunning(opKey, id, result, 'Backup');
    if (!op) return;
    if (op.status === 'Succeeded') {
      const r = op.result as unknown as Backup;
      result.replaceChildren(
        status('ok', `Backup ${r.id} completed: ${bytes(r.sizeBytes)} (${bytes(r.storedBytes)} stored encrypted), WAL ${r.startLsn} → ${r.stopLsn}.`),
      );
    } else {
      result.replaceChildren(status('error', op.error ?? 'The backup failed.'));
    }
    await reload();
  };
  if (ctx.session.canManage) {
    const now = h(
      'button',
      {
        type: 'button',
        onclick: async () => {
          if (running.has(opKey)) return; // one at a time from this page; the button says so
          now.setAttribute('aria-disabled', 'true');
          result.replaceChildren(status('pending', 'Backup: starting…'));
          try {
            const op = await api<Operation>('POST', `${base}/backups`, {});
            running.set(opKey, op.id);
            await watch(op.id);
          } catch (err) {
            result.replaceChildren(status('error', message(err)));
          } finally {
            if (!running.has(opKey)) now.removeAttribute('aria-disabled');
          }
        },
      },
      'Back up now',
    );
    section.append(h('div', { class: 'actions' }, now));
    const pending = running.get(opKey);
    if (pending) {
      now.setAttribute('aria-disabled', 'true');
      void watch(pending).finally(() => now.removeAttribute('aria-disabled'));
    }
  }
  section.append(result);
  return section;
}

/** 'YYYY-MM-DDTHH:MM[:SS]' of a datetime-local input, read in the browser's time zone, as an
 * ISO 8601 UTC string; null when it is not a valid local date and time. */
export function localToUtcIso(value: string): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!m) return null;
  const [y, mo, d, hh, mi, ss, ms] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number, number, number, number];
  const date = new Date(y, mo - 1, d, hh, mi, ss, ms);
  if (Number.isNaN(date.getTime()) || date.getMonth() !== mo - 1 || date.getDate() !== d) return null;
  return date.toISOString();
}

function zoneLabel(): string {
  const off = -new Date().getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return `${zone}, UTC${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

function restoreSection(ctx: PageContext, base: string): HTMLElement {
  const source = ctx.params.name!;
  const name = h('input', { name: 'restoreName', autocomplete: 'off', maxlength: '63' });
  const fName = field(
    'New server name',
    name,
    'Lowercase letters, digits and hyphens; 3 to 63 characters. The restore creates a new server; this one is not changed.',
  );
  const latest = h('input', { type: 'radio', name: 'restorePoint', id: 'restore-latest', value: 'latest', checked: true });
  const pointed = h('input', { type: 'radio', name: 'restorePoint', id: 'restore-at', value: 'at' });
  const at = h('input', { type: 'datetime-local', name: 'restorePointInTime', step: '1', disabled: true });
  const fAt = field('Point in time (your local time)', at);
  const utc = h('p', { class: 'hint', 'data-testid': 'restore-utc', 'aria-live': 'polite' });
  fAt.row.insertBefore(utc, fAt.message);
  const submit = h('button', { type: 'submit' }, 'Restore to a new server');
  const result = h('div', { class: 'result', id: 'restore-result' });
  const opKey = `${source}:restore`;

  const nameProblem = () => (name.value === '' ? null : serverNameProblem(name.value));
  const atProblem = (): string | null => {
    if (!pointed.checked) return null;
    if (!at.value) return 'Choose a date and time, or restore to the latest state.';
    const iso = localToUtcIso(at.value);
    if (!iso) return 'Not a valid date and time.';
    if (new Date(iso).getTime() > Date.now()) return 'The point in time is in the future.';
    return null;
  };
  const showAt = () => {
    at.disabled = !pointed.checked;
    const iso = pointed.checked && at.value ? localToUtcIso(at.value) : null;
    utc.textContent = `Time zone ${zoneLabel()}.${iso ? ` Sent as ${iso} (UTC).` : ''}`;
    const p = at.value ? atProblem() : null;
    fAt.message.textContent = p ?? '';
    at.setAttribute('aria-invalid', p ? 'true' : 'false');
  };
  name.addEventListener('input', () => {
    const p = nameProblem();
    fName.message.textContent = p ?? '';
    name.setAttribute('aria-invalid', p ? 'true' : 'false');
  });
  for (const el of [latest, pointed])
    el.addEventListener('change', () => {
      showAt();
      if (pointed.checked) at.focus();
    });
  at.addEventListener('input', showAt);
  showAt();

  const watch = async (id: string, newName: string, pointText: string) => {
    const op = await followRunning(opKey, id, result, `Restore into ${newName}`);
    if (!op) return;
    if (op.status === 'Succeeded') {
      const r = op.result as { name?: string; state?: string } | null;
      const restored = r?.name ?? newName;
      result.replaceChildren(
        h(
          'div',
          { class: 'status status-ok', role: 'status', 'data-testid': 'restore-done' },
          h(
            'p',
            {},
            `Server ${restored} restored from ${source} to ${pointText}; it is ${r?.state ?? 'created'}. Like the reference service, it starts with no firewall rules.`,
          ),
          h(
            'p',
            {},
            h('a', { href: `#/servers/${enc(restored)}` }, `Open server ${restored}`),
            ' · ',
            h('a', { href: `#/servers/${enc(restored)}/network` }, `Add a firewall rule to ${restored}`),
          ),
        ),
      );
    } else {
      result.replaceChildren(status('error', op.error ?? 'The restore failed.'));
    }
  };

  const form = h(
    'form',
    { class: 'card', novalidate: true, 'aria-labelledby': 'restore-title' },
    h('h2', { id: 'restore-title' }, 'Restore to a point in time'),
    h(
      'p',
      { class: 'hint' },
      `Creates a new server from the latest base backup of ${source} before that time, plus its archived WAL up to it, on its own encrypted volume.`,
    ),
    h('div', { class: 'grid' }, fName.row),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Restore point'),
      h('label', { for: latest.id, class: 'check' }, latest, ' Latest (everything archived so far)'),
      h('label', { for: pointed.id, class: 'check' }, pointed, ' A point in time'),
      h('div', { class: 'grid' }, fAt.row),
    ),
    h('div', { class: 'actions' }, submit),
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (running.has(opKey)) return;
    const np = serverNameProblem(name.value);
    fName.message.textContent = np ?? '';
    name.setAttribute('aria-invalid', np ? 'true' : 'false');
    const ap = atProblem();
    fAt.message.textContent = ap ?? '';
    if (np || ap) {
      (np ? name : at).focus();
      return;
    }
    const iso = pointed.checked ? localToUtcIso(at.value)! : undefined;
    const newName = name.value;
    const pointText = iso ? `${time(iso)} (${iso})` : 'the latest state';
    submit.setAttribute('aria-disabled', 'true');
    result.replaceChildren(status('pending', `Restore into ${newName}: starting…`));
    try {
      const op = await api<Operation>('POST', `${base}/restore`, iso ? { name: newName, restorePointInTime: iso } : { name: newName });
      running.set(opKey, op.id);
      await watch(op.id, newName, pointText);
    } catch (err) {
      result.replaceChildren(status('error', message(err)));
    } finally {
      if (!running.has(opKey)) submit.removeAttribute('aria-disabled');
    }
  });
  const pending = running.get(opKey);
  if (pending) {
    submit.setAttribute('aria-disabled', 'true');
    void watch(pending, 'the new server', 'the chosen point').finally(() => submit.removeAttribute('aria-disabled'));
  }
  return form;
}

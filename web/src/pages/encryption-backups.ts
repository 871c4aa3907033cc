// The encrypted backups of one server (sizes, WAL ranges, "back up now") and a restore to a point
// in time into a new server, both followed as operations until they end.
import { api, ApiError, enc, get } from '../api.js';
import { bytes, field, h, status, table, time } from '../dom.js';
import type { PageContext } from '../page.js';
import type { Backup, Operation } from '../types.js';
import { serverNameProblem } from '../validate.js';
import { followRunning, running } from './encryption-operations.js';

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** A failed read becomes its error, so one missing part does not hide the others. */
export const settle = <T>(p: Promise<T>): Promise<T | ApiError> =>
  p.catch((err: unknown) => {
    if (err instanceof ApiError) return err;
    throw err;
  });

export function backupSection(ctx: PageContext, base: string, backups0: { value: Backup[] } | ApiError): HTMLElement {
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
export function restoreSection(ctx: PageContext, base: string): HTMLElement {
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

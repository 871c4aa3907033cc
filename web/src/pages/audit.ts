// The audit log: search (user, class, outcome, time range, text) with paged results, one
// record's detail, export as JSON lines, and the last `verify` with its checkpoint. Reading the
// audit log is itself recorded by the platform.
import { api, get, query, text } from '../api.js';
import { field, h, select, status, table, time } from '../dom.js';
import type { Page } from '../page.js';
import type { AuditHit } from '../types.js';

const CLASSES = ['READ', 'WRITE', 'FUNCTION', 'ROLE', 'DDL', 'MISC', 'MISC_SET'];
const PAGE_SIZE = 25;
const VERIFY_KEY = 'pgwarden.lastVerify';

interface Checkpoint {
  index: number;
  size: number;
  root: string;
  time: string;
}

interface VerifyReport {
  ok: boolean;
  failure?: { reason: string; file: string; line: number; seq?: number; message: string };
  firstSeq?: number;
  lastSeq: number;
  records: number;
  checkpoints: number;
  lastCheckpoint?: Checkpoint;
  warnings: string[];
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** A short line saying what an event was. */
function summary(e: Record<string, unknown>): string {
  const s = (k: string) => (typeof e[k] === 'string' ? (e[k] as string) : '');
  if (e.type === 'statement') return s('text').slice(0, 160);
  if (e.type === 'admin.action') return `${s('action')} ${s('target')}`;
  return s('reason') || s('message') || s('action') || s('title') || '';
}

function who(e: Record<string, unknown>): string {
  if (typeof e.user === 'string') return e.user;
  const actor = e.actor as { name?: string; role?: string } | undefined;
  return actor?.name ? `${actor.name} (${actor.role ?? ''})` : '—';
}

export const auditPage: Page = {
  title: () => 'Audit log',
  async render(ctx) {
    if (!ctx.session.canReadAudit) {
      return h('div', {}, h('h1', {}, 'Audit log'), status('info', `Your role (${ctx.session.me.role}) cannot read the audit log.`));
    }
    const server = h('input', { name: 'server', autocomplete: 'off' });
    const user = h('input', { name: 'user', autocomplete: 'off' });
    const cls = select('class', ['', ...CLASSES]);
    const outcome = select('outcome', ['', 'success', 'failure']);
    const type = h('input', { name: 'type', autocomplete: 'off', placeholder: 'statement, auth.failed, admin.action…' });
    const since = h('input', { name: 'since', type: 'datetime-local', step: '1' });
    const until = h('input', { name: 'until', type: 'datetime-local', step: '1' });
    const words = h('input', { name: 'text', type: 'search', autocomplete: 'off' });
    for (const s of [cls, outcome]) s.options[0]!.textContent = 'Any';
    const results = h('div', { 'aria-live': 'polite', id: 'audit-results' });
    const detail = h('div', { id: 'audit-detail' });
    const exportResult = h('div', { class: 'result' });
    const iso = (v: string) => (v ? new Date(v).toISOString() : undefined);
    const params = () => ({
      server: server.value.trim(),
      user: user.value.trim(),
      class: cls.value,
      outcome: outcome.value,
      type: type.value.trim(),
      since: iso(since.value),
      until: iso(until.value),
      text: words.value,
    });
    const pages: (number | undefined)[] = [];

    const show = (hit: AuditHit, opener: HTMLElement) => {
      const back = h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          onclick: () => {
            detail.replaceChildren();
            opener.focus();
          },
        },
        'Close',
      );
      const heading = h('h2', { tabindex: '-1' }, `Record ${hit.seq}`);
      detail.replaceChildren(
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'record-title', 'data-testid': 'audit-record' },
          heading,
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Time'),
            h('dd', {}, time(hit.time)),
            h('dt', {}, 'Hash (chain)'),
            h('dd', {}, h('code', {}, hit.hash)),
            ...Object.entries(hit.event).flatMap(([k, v]) => [
              h('dt', {}, k),
              h('dd', {}, typeof v === 'object' && v !== null ? h('code', {}, JSON.stringify(v)) : String(v)),
            ]),
          ),
          h('div', { class: 'actions' }, back),
        ),
      );
      heading.id = 'record-title';
      heading.focus();
    };

    const search = async (after: number | undefined) => {
      results.replaceChildren(status('pending', 'Searching…'));
      try {
        const r = await get<{ value: AuditHit[]; next: number | null }>(`/audit/events${query({ ...params(), after, limit: PAGE_SIZE })}`);
        const prev =
          pages.length > 1
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'secondary',
                  onclick: () => {
                    pages.pop();
                    void search(pages.pop());
                  },
                },
                'Previous page',
              )
            : null;
        const next = r.next !== null ? h('button', { type: 'button', class: 'secondary', onclick: () => void search(r.next!) }, 'Next page') : null;
        pages.push(after);
        results.replaceChildren(
          h('p', {}, `Page ${pages.length}: ${r.value.length} record${r.value.length === 1 ? '' : 's'}${r.next !== null ? ', more follow' : ''}.`),
          table<AuditHit>(
            'Audit records, oldest first',
            [
              { label: 'Seq', cell: (x) => x.seq },
              { label: 'Time', cell: (x) => time(x.time) },
              { label: 'Type', cell: (x) => String(x.event.type ?? '') },
              { label: 'Server', cell: (x) => String(x.event.server ?? '—') },
              { label: 'Who', cell: (x) => who(x.event) },
              { label: 'Class', cell: (x) => String(x.event.class ?? '—') },
              {
                label: 'Outcome',
                cell: (x) => String(x.event.outcome ?? (x.event.type === 'auth.failed' || x.event.type === 'connection.denied' ? 'failure' : 'success')),
              },
              { label: 'Summary', cell: (x) => h('span', { class: 'summary' }, summary(x.event)) },
              {
                label: 'Detail',
                cell: (x) => {
                  const b: HTMLButtonElement = h(
                    'button',
                    { type: 'button', class: 'secondary', 'aria-label': `Show record ${x.seq}`, onclick: () => show(x, b) },
                    'Show',
                  );
                  return b;
                },
              },
            ],
            r.value,
            'No record matches.',
          ),
          h('div', { class: 'actions' }, prev, next),
        );
      } catch (err) {
        results.replaceChildren(status('error', message(err)));
      }
    };

    const form = h(
      'form',
      { class: 'card', novalidate: true, 'aria-labelledby': 'search-title' },
      h('h2', { id: 'search-title' }, 'Search'),
      h(
        'div',
        { class: 'grid' },
        field('Text', words, 'Anywhere in the record, case-insensitive.').row,
        field('User', user).row,
        field('Server', server).row,
        field('Statement class', cls).row,
        field('Outcome', outcome).row,
        field('Event type', type).row,
        field('From (local time)', since).row,
        field('To (local time)', until).row,
      ),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'submit' }, 'Search'),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            onclick: async () => {
              exportResult.replaceChildren(status('pending', 'Exporting…'));
              try {
                const body = await text(`/audit/export${query(params())}`, 'application/x-ndjson');
                const url = URL.createObjectURL(new Blob([body], { type: 'application/x-ndjson' }));
                const a = h('a', { href: url, download: `pgwarden-audit-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl` }, 'download');
                document.body.append(a);
                a.click();
                a.remove();
                setTimeout(() => URL.revokeObjectURL(url), 60_000);
                const n = body ? body.split('\n').filter(Boolean).length : 0;
                exportResult.replaceChildren(status('ok', `Exported ${n} record${n === 1 ? '' : 's'} as JSON lines.`));
              } catch (err) {
                exportResult.replaceChildren(status('error', message(err)));
              }
            },
          },
          'Export JSON lines',
        ),
      ),
      exportResult,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      pages.length = 0;
      detail.replaceChildren();
      void search(undefined);
    });
    await search(undefined);
    return h('div', {}, h('h1', {}, 'Audit log'), form, results, detail, verifySection());
  },
};

function verifyView(r: VerifyReport, at: string): HTMLElement {
  const cp = r.lastCheckpoint;
  return h(
    'div',
    { 'data-testid': 'verify-report' },
    status(
      r.ok ? 'ok' : 'error',
      r.ok
        ? `Verified at ${time(at)}: ${r.records} records (seq ${r.firstSeq ?? '—'} to ${r.lastSeq}) and ${r.checkpoints} signed checkpoints; nothing was changed, removed, reordered or cut off.`
        : `Verification FAILED at ${time(at)}: ${r.failure?.message ?? 'unknown problem'} (${r.failure?.reason ?? ''}, ${r.failure?.file ?? ''} line ${r.failure?.line ?? ''}).`,
    ),
    cp
      ? h(
          'dl',
          { class: 'facts' },
          h('dt', {}, 'Last checkpoint'),
          h('dd', {}, `#${cp.index}, covering records 1 to ${cp.size}`),
          h('dt', {}, 'Signed at'),
          h('dd', {}, time(cp.time)),
          h('dt', {}, 'Merkle root'),
          h('dd', {}, h('code', {}, cp.root)),
        )
      : h('p', {}, 'No checkpoint verified.'),
    r.warnings.length ? h('ul', {}, ...r.warnings.map((w) => h('li', {}, w))) : null,
  );
}

function verifySection(): HTMLElement {
  const out = h('div', { 'aria-live': 'polite' });
  const saved = sessionStorage.getItem(VERIFY_KEY);
  if (saved) {
    try {
      const { report, at } = JSON.parse(saved) as { report: VerifyReport; at: string };
      out.append(verifyView(report, at));
    } catch {
      sessionStorage.removeItem(VERIFY_KEY);
    }
  } else {
    out.append(h('p', {}, 'Not verified in this session yet.'));
  }
  const run = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        run.disabled = true;
        out.replaceChildren(status('pending', 'Verifying the hash chain and signed checkpoints…'));
        try {
          const report = await api<VerifyReport>('POST', '/audit/verify', {});
          const at = new Date().toISOString();
          sessionStorage.setItem(VERIFY_KEY, JSON.stringify({ report, at }));
          out.replaceChildren(verifyView(report, at));
        } catch (err) {
          out.replaceChildren(status('error', message(err)));
        } finally {
          run.disabled = false;
        }
      },
    },
    'Verify now',
  );
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'verify-title' },
    h('h2', { id: 'verify-title' }, 'Integrity (verify)'),
    out,
    h('div', { class: 'actions' }, run),
  );
}

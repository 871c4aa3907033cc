// Backups and restores run as operations: GET /operations/{id} is followed with a progress bar
// until they end, and a page opened again keeps following the ones it started.
import { enc, get } from '../api.js';
import { bytes, h, status } from '../dom.js';
import type { Operation } from '../types.js';

const POLL_MS = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Operations started from this page that are still running, by `${server}:${kind}`: a page
 * opened again (or re-rendered) keeps following them. */
export const running = new Map<string, string>();

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

export /** follow() for an operation this page started (`running`): once it ended, or following it
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

// A server's connection pooling on its page: the mode and size, the gateway's pools of it now
// (clients, waiting clients, server connections, waits), and for Owner and Contributor a form to
// change the mode and size (src/control/rbac.ts MANAGE). A Reader sees the settings and the pools.
import { api, get } from '../api.js';
import { field, h, select, status, table } from '../dom.js';
import type { PageContext } from '../page.js';
import { poolSizeProblem } from '../validate.js';
import { showWhenLive } from '../live.js';
import type { PoolMode, PoolStats, Server, ServerPool } from '../types.js';

const MODES: readonly PoolMode[] = ['none', 'session', 'transaction'];
const MODE_TEXT: Record<PoolMode, string> = {
  none: 'No pooling: one server connection per client session',
  session: 'Session: a client that disconnects leaves its server connection warm for the next client',
  transaction: 'Transaction: a server connection is lent for one transaction at a time',
};

function poolsTable(pools: readonly PoolStats[]): HTMLElement {
  const n = (pick: (p: PoolStats) => number) => (p: PoolStats) => String(pick(p));
  return table<PoolStats>(
    'Pools',
    [
      { label: 'User', cell: (p) => p.user },
      { label: 'Database', cell: (p) => p.database },
      { label: 'Mode', cell: (p) => p.mode },
      { label: 'Clients', cell: n((p) => p.clients) },
      { label: 'Waiting', cell: n((p) => p.waiting) },
      { label: 'Active', cell: n((p) => p.active) },
      { label: 'Idle', cell: n((p) => p.idle) },
      { label: 'Opening', cell: n((p) => p.opening) },
      { label: 'Pool size', cell: n((p) => p.poolSize) },
      { label: 'Waits', cell: n((p) => p.waits) },
      { label: 'Wait ms', cell: n((p) => Math.round(p.waitMs)) },
      { label: 'Opened', cell: n((p) => p.opened) },
      { label: 'Reused', cell: n((p) => p.reused) },
    ],
    pools,
    'No pools: no client has connected through a pool since the gateway started.',
  );
}

export function poolSection(ctx: PageContext, s: Server, pool: ServerPool): HTMLElement {
  const base = `/servers/${encodeURIComponent(s.name)}`;
  const summary = h('p', { id: 'pool-summary' }, `${MODE_TEXT[s.poolMode]}. Pool size: ${s.poolSize} server connections per role and database.`);
  const slot = h('div', { id: 'pool-table' }, poolsTable(pool.pools));
  const reload = h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      onclick: async () => {
        try {
          slot.replaceChildren(poolsTable((await get<ServerPool>(`${base}/pool`)).pools));
        } catch (err) {
          slot.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
        }
      },
    },
    'Refresh pools',
  );
  const section = h(
    'section',
    { class: 'card', 'aria-labelledby': 'pool-title' },
    h('h2', { id: 'pool-title' }, 'Connection pooling'),
    summary,
    slot,
    h('div', { class: 'actions' }, reload),
  );
  if (!ctx.session.canManage) return section;

  const mode = select('poolMode', MODES, s.poolMode);
  const size = h('input', { type: 'number', name: 'poolSize', min: '1', max: '10000', step: '1', value: String(s.poolSize), inputmode: 'numeric' });
  const sizeField = field('Pool size', size, 'Server connections per (role, database) when pooling: 1 to 10000.');
  const result = h('div', { class: 'result' });
  const save = h(
    'button',
    {
      type: 'button',
      onclick: async () => {
        const problem = poolSizeProblem(size.value);
        sizeField.message.textContent = problem ?? '';
        if (problem) {
          size.setAttribute('aria-invalid', 'true');
          return;
        }
        size.removeAttribute('aria-invalid');
        const t0 = Date.now();
        try {
          const updated = await api<Server>('PATCH', base, { poolMode: mode.value, poolSize: Number(size.value) });
          summary.textContent = `${MODE_TEXT[updated.poolMode]}. Pool size: ${updated.poolSize} server connections per role and database.`;
          await showWhenLive(result, 'Pool settings', t0);
        } catch (err) {
          result.replaceChildren(status('error', err instanceof Error ? err.message : String(err)));
        }
      },
    },
    'Save pool settings',
  );
  section.append(h('h3', {}, 'Change pooling'), field('Pool mode', mode).row, sizeField.row, h('div', { class: 'actions' }, save), result);
  return section;
}

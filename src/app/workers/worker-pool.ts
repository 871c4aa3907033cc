// The platform process's side of `up --gateway-workers N`: it forks N-1 more gateway processes,
// shares every listening socket its own gateway opens with them (and closes), and is the one
// place for what must be one: their events reach its bus (the audit log, the detectors), their
// SQL-watch findings its alerts, their session index changes its pgAudit join; the throttle's
// blocks and the audit log's state go out to them, and a CancelRequest no process recognised
// is asked of all of them. A process that ends unasked is recorded and started again.
import { fork, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { MetricsJson } from '../../services/metrics.js';
import { now, type EventBus } from '../../events/bus.js';
import type { AuditGate, ListenerSpec } from '../../gateway/context.js';
import type { ListenerEvent } from '../../gateway/gateway.js';
import type { SessionIndex } from '../../gateway/session-index.js';
import type { PoolStats } from '../../gateway/pool/types.js';
import type { Block } from '../../threat/protection/throttle.js';
import type { Finding } from '../../threat/finding.js';
import type { PlatformOptions } from '../options.js';
import type { FromWorker, ToWorker } from './messages.js';
import { IndexInbox } from './index-ops.js';
import { PendingRequests } from './requests.js';

const STATE_POLL_MS = 250;
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const RESTART_DELAY_MS = 1_000;
const CANCEL_WAIT_MS = 2_000;
const SCRAPE_WAIT_MS = 1_000;

interface Deps {
  readonly options: PlatformOptions;
  /** Gateway processes in all, this one included. */
  readonly count: number;
  readonly log: Logger;
  readonly bus: EventBus;
  readonly audit: AuditGate;
  /** The blocks in force (the platform process's throttle). */
  readonly blocks: () => readonly Block[];
  readonly addFinding: (f: Finding) => void;
  readonly sessionIndex: () => SessionIndex;
  /** A CancelRequest for this process's own sessions; false when none has the key. */
  readonly cancelHere: (processId: number, secretKey: Buffer) => Promise<boolean>;
  /** The gateway certificate now served, to tell the others when it is rotated. */
  readonly certificatePem: () => string | null;
}

interface Worker {
  readonly index: number;
  child: ChildProcess;
  ready: boolean;
  pools: readonly PoolStats[];
  /** The session index's changes from this process. */
  readonly changes: IndexInbox;
}

export class GatewayWorkers {
  private readonly workers: Worker[] = [];
  private readonly listeners = new Map<number, { spec: ListenerSpec; server: net.Server }>();
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private lastBlocks = '';
  private lastAccepts = true;
  private lastCertificate: string | null = null;
  private readonly cancels = new PendingRequests<boolean>();
  private readonly scrapes = new PendingRequests<MetricsJson>();

  constructor(private readonly d: Deps) {}

  /** Gateway.onListener of the platform process's gateway. */
  readonly onListener = (e: ListenerEvent): void => {
    if (e.kind === 'opened') {
      this.listeners.set(e.id, { spec: e.spec, server: e.server });
      for (const w of this.workers) if (w.ready) this.sendListener(w, e.id, e.spec, e.server);
    } else {
      this.listeners.delete(e.id);
      for (const w of this.workers) if (w.ready) this.post(w, { type: 'unlisten', id: e.id });
    }
  };

  /** Starts the other processes; resolves once each accepts connections. */
  async start(): Promise<void> {
    this.lastCertificate = this.d.certificatePem();
    const started: Promise<void>[] = [];
    for (let index = 1; index < this.d.count; index++) started.push(this.spawn(index));
    await Promise.all(started);
    this.timer = setInterval(() => this.pushState(false), STATE_POLL_MS);
    this.timer.unref();
    // A new block goes out at once, after the burst it came in (an attack from many addresses
    // makes many at a time); the poll covers unblocks, expiries and the rest.
    let queued = false;
    this.unsubscribe = this.d.bus.subscribe((e) => {
      if (e.type !== 'protection.blocked' || queued) return;
      queued = true;
      setImmediate(() => {
        queued = false;
        if (!this.stopped) this.pushState(false);
      });
    });
  }

  /** Pools of `server` in the other processes (rows as each last reported them). */
  poolStats(server: string): PoolStats[] {
    return this.workers.flatMap((w) => w.pools.filter((r) => r.server === server));
  }

  /** A CancelRequest for a session of none of the platform process's: asked of every other
   * process; resolves once they answered (or after a bound). */
  async cancelElsewhere(processId: number, secretKey: Buffer, except?: Worker): Promise<void> {
    const asked = this.workers
      .filter((w) => w.ready && w !== except)
      .map((w) => {
        const { req, answer } = this.cancels.open(CANCEL_WAIT_MS);
        this.post(w, { type: 'cancel', req, processId, secretKey });
        return answer;
      });
    await Promise.all(asked);
  }

  /** Each other process's gateway metrics now (a process that does not answer in time is left
   * out of this scrape). */
  async metrics(): Promise<MetricsJson[]> {
    const asked = this.workers
      .filter((w) => w.ready)
      .map((w) => {
        const { req, answer } = this.scrapes.open(SCRAPE_WAIT_MS);
        this.post(w, { type: 'metrics', req });
        return answer;
      });
    return (await Promise.all(asked)).filter((m): m is MetricsJson => m !== null);
  }

  get pids(): number[] {
    return this.workers.map((w) => w.child.pid ?? 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe?.();
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
            const kill = setTimeout(() => w.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
            w.child.once('exit', () => {
              clearTimeout(kill);
              resolve();
            });
            this.post(w, { type: 'stop' });
          }),
      ),
    );
  }

  private spawn(index: number, existing?: Worker): Promise<void> {
    const entry = fileURLToPath(new URL('./worker-main.js', import.meta.url));
    const child = fork(entry, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const w: Worker = existing ?? { index, child, ready: false, pools: [], changes: new IndexInbox() };
    // A process started again names its sessions anew.
    w.changes.clear();
    w.child = child;
    w.ready = false;
    if (!existing) this.workers.push(w);
    child.send({ type: 'init', options: this.d.options, index, count: this.d.count } satisfies ToWorker);
    return new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => fail(new Error(`gateway process ${index} did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      const fail = (err: Error) => {
        clearTimeout(timeout);
        child.kill('SIGKILL');
        reject(err);
      };
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          clearTimeout(timeout);
          w.ready = true;
          for (const [id, { spec, server }] of this.listeners) this.sendListener(w, id, spec, server);
          this.pushState(true, w);
          this.d.bus.publish({ type: 'gateway.worker_started', time: now(), details: { index, pid: child.pid } });
          resolve();
          return;
        }
        if (m.type === 'failed') return fail(new Error(`gateway process ${index} could not start: ${m.message}`));
        this.received(w, m);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timeout);
        const wasReady = w.ready;
        w.ready = false;
        w.pools = [];
        if (this.stopped || !wasReady) return;
        this.d.log.error({ index, pid: child.pid, code, signal }, 'a gateway process ended unasked: it is started again');
        this.d.bus.publish({ type: 'gateway.worker_exited', time: now(), details: { index, pid: child.pid, code, signal } });
        setTimeout(() => {
          if (!this.stopped) this.spawn(index, w).catch((err: Error) => this.d.log.error({ err, index }, 'a gateway process could not be started again'));
        }, RESTART_DELAY_MS).unref();
      });
    });
  }

  private received(w: Worker, m: FromWorker): void {
    switch (m.type) {
      case 'events': {
        if (m.index) w.changes.apply(m.index, this.d.sessionIndex());
        for (const e of m.events) {
          this.d.bus.publish(e);
          if (e.type === 'session.ended') w.changes.ended(e.connection.connId);
        }
        if (m.strict) {
          const seq = m.seq;
          void this.d.audit.durable().then(() => this.post(w, { type: 'ack', seq }));
        }
        return;
      }
      case 'finding':
        this.d.addFinding(m.finding);
        return;
      case 'pools':
        w.pools = m.rows;
        return;
      case 'metrics':
        this.scrapes.answer(m.req, m.metrics);
        return;
      case 'cancel': {
        const secretKey = Buffer.from(m.secretKey);
        void this.d
          .cancelHere(m.processId, secretKey)
          .then((found) => (found ? undefined : this.cancelElsewhere(m.processId, secretKey, w)))
          .then(() => this.post(w, { type: 'cancel-done', req: m.req }));
        return;
      }
      case 'cancel-done':
        this.cancels.answer(m.req, m.found);
        return;
      default:
        return;
    }
  }

  /** Blocks, the audit log's state and the certificate, to every process when they change
   * (`all`: to `only`, or every process, whatever changed). */
  private pushState(all: boolean, only?: Worker): void {
    const targets = only ? [only] : this.workers.filter((w) => w.ready);
    const blocks = this.d.blocks();
    const blockText = blocks.map((b) => `${b.id}:${b.until}`).join(',');
    if (all || blockText !== this.lastBlocks) for (const w of targets) this.post(w, { type: 'blocks', blocks });
    const accepts = this.d.audit.acceptsConnections;
    if (all || accepts !== this.lastAccepts) for (const w of targets) this.post(w, { type: 'audit-state', accepts });
    const pem = this.d.certificatePem();
    if (!only && pem !== this.lastCertificate) for (const w of targets) this.post(w, { type: 'certificate' });
    if (!only) {
      this.lastBlocks = blockText;
      this.lastAccepts = accepts;
      this.lastCertificate = pem;
    }
  }

  private sendListener(w: Worker, id: number, spec: ListenerSpec, server: net.Server): void {
    if (!w.child.connected) return;
    w.child.send({ type: 'listen', id, spec } satisfies ToWorker, server, (err) => {
      if (err) this.d.log.error({ err, index: w.index, spec }, 'a listening socket could not be shared with a gateway process');
    });
  }

  private post(w: Worker, m: ToWorker): void {
    if (w.child.connected) w.child.send(m);
  }
}

// Threat protection for every server (SPEC.md §6): reads the gateway's events from the bus,
// runs the detectors of servers whose policy is on, keeps the automatic protection's throttle,
// turns findings into alerts, and hands new alerts to the notifiers. Everything on the event
// path is in memory; the catalog is written behind (alerts at once, counts, baselines and login
// statistics every few seconds).
import type { Logger } from 'pino';
import type { EventBus } from '../events/bus.js';
import { now } from '../events/bus.js';
import type { AnyEvent, AuthFailed, AuthSucceeded, ConnectionDenied } from '../events/types.js';
import type { Alert } from './alert.js';
import type { ThreatStore } from './store.js';
import { AlertStore } from './alert-store.js';
import { Baselines } from './baselines.js';
import { BruteForceDetector } from './detectors/brute-force.js';
import { connectionFindings, loginFindings, type AnomalySources } from './detectors/login-anomaly.js';
import type { Finding } from './finding.js';
import { ALERT_KINDS } from './alert-types.js';
import { alertsOn, DEFAULT_POLICY, type SecurityAlertPolicy, type Webhook } from './policy.js';
import { LearnedShapes, type LearnedRow } from './sql/learned.js';
import { sqliAllowed } from './sql/allow.js';
import { Throttle, type Block } from './protection/throttle.js';
import { SqlWatch } from './sql-watch.js';
import type { SessionConsumer } from '../pgwire/observer/index.js';
import type { SqlCheckResult, SqlInspector } from './sql-inspector.js';

export type { SqlFinding, SqlInput, SqlInspector } from './sql-inspector.js';

/** Where a relayed session comes from, for the alerts it raises. */
export interface SessionSource {
  readonly clientAddress?: string;
  readonly database?: string;
  /** The watch stopped following the session (told once; the session should end). */
  readonly onStopped?: (reason: string) => void;
}

/** Stores learned application shapes (the catalog in the platform). */
export interface LearnedStore {
  learnedShapes(): Promise<(LearnedRow & { server: string })[]>;
  saveLearnedShapes(server: string, rows: readonly LearnedRow[]): Promise<void>;
}

export interface Notifier {
  deliver(alert: Alert & { consoleUrl?: string }, targets: { emails: readonly string[]; webhooks: readonly Webhook[] }): void;
  close(): Promise<void>;
}

export interface ThreatEngineOptions {
  readonly bus: EventBus;
  readonly repo: ThreatStore;
  readonly log: Logger;
  /** Policies by server name, as of the last catalog snapshot. */
  readonly policies: () => ReadonlyMap<string, SecurityAlertPolicy>;
  readonly serverId: (server: string) => number | undefined;
  readonly sources: AnomalySources;
  readonly sqlInspector: ((learned: LearnedShapes) => SqlInspector) | null;
  /** Where learned application shapes persist; without it they live in memory only. */
  readonly learnedStore?: LearnedStore;
  readonly notifier: Notifier | null;
  /** The console's address, linked from e-mails. */
  readonly consoleUrl?: () => string;
  /** A gateway process that is not the platform's (`up --gateway-workers N`): its SQL watches'
   * findings go to the platform process, which keeps the alerts. */
  readonly findingSink?: (f: Finding) => void;
}

const FLUSH_MS = 2_000;

export class ThreatEngine {
  readonly throttle = new Throttle();
  private readonly bruteForce = new BruteForceDetector();
  private readonly baselines = new Baselines();
  private readonly alerts: AlertStore;
  private readonly sql = new Map<string, SqlInspector>();
  private readonly learned = new Map<string, LearnedShapes>();
  private readonly learningEnds = new WeakMap<SecurityAlertPolicy, number>();
  private readonly loginCounts = new Map<string, [string, number, number, number]>();
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly o: ThreatEngineOptions) {
    this.alerts = new AlertStore(o.repo, o.serverId, {
      created: (alert) => this.onAlert(alert),
      error: (err, what) => o.log.error({ err }, what),
    });
  }

  /** `events: false`: only the SQL watch of a gateway process that is not the platform's (the
   * platform process reads every process's events); learned shapes still load and persist. */
  async start(opts: { events?: boolean } = {}): Promise<void> {
    this.baselines.load(await this.o.repo.baselines());
    if (this.o.learnedStore) {
      for (const row of await this.o.learnedStore.learnedShapes()) this.learnedShapes(row.server).load([row]);
    }
    if (opts.events !== false) this.unsubscribe = this.o.bus.subscribe((e) => this.handle(e));
    this.timer = setInterval(() => {
      this.flushing = this.flushing.then(() => this.flush());
    }, FLUSH_MS);
    this.timer.unref();
  }

  policy(server: string): SecurityAlertPolicy {
    return this.o.policies().get(server) ?? DEFAULT_POLICY;
  }

  /** The gateway's step 7: a block in force for this attempt, or null. */
  blocked(server: string, address: string, user: string): Block | null {
    if (this.policy(server).autoProtection.state !== 'Enabled') return null;
    return this.throttle.check(server, address, user, Date.now());
  }

  /** The server's learned application shapes (made empty on first use). */
  learnedShapes(server: string): LearnedShapes {
    let l = this.learned.get(server);
    if (!l) {
      l = new LearnedShapes();
      this.learned.set(server, l);
    }
    return l;
  }

  private inspector(server: string): SqlInspector | null {
    if (!this.o.sqlInspector) return null;
    let inspector = this.sql.get(server);
    if (!inspector) {
      inspector = this.o.sqlInspector(this.learnedShapes(server));
      this.sql.set(server, inspector);
    }
    return inspector;
  }

  /** True while the policy's learning period runs (from enabledAt). */
  private learning(p: SecurityAlertPolicy, nowMs: number): boolean {
    if (!p.enabledAt) return false;
    let end = this.learningEnds.get(p);
    if (end === undefined) {
      end = Date.parse(p.enabledAt) + p.detectors.learningPeriodSeconds * 1000;
      this.learningEnds.set(p, end);
    }
    return nowMs < end;
  }

  /** `threat sql-check --server`: verdicts against the server's learned shapes; no alert, no learning. */
  checkSql(server: string, texts: readonly string[], scope: { application: string | null; role: string | null }): SqlCheckResult[] | null {
    const inspector = this.inspector(server);
    if (!inspector) return null;
    const p = this.policy(server);
    return texts.map((text) => {
      const r = inspector.check(text, { ...scope, learned: true });
      if (r.verdict === 'SqlInjection' && sqliAllowed(p, r.fingerprint)) {
        return { ...r, detail: `${r.detail}; silenced on this server by --sqli-allow ${r.fingerprint}` };
      }
      return r;
    });
  }

  /** A tap for a relayed session when the server's SQL-injection alerts are on, else null. */
  sqlTap(server: string, role: string, application: string | undefined, source: SessionSource = {}): SessionConsumer | null {
    const p = this.policy(server);
    if (!this.o.sqlInspector || (!alertsOn(p, 'SqlInjection') && !alertsOn(p, 'SqlInjectionVulnerability'))) return null;
    const inspector = this.inspector(server)!;
    const app = application ?? '';
    const address = source.clientAddress ?? null;
    const database = source.database ?? null;
    const from = `${address ? ` from ${address}` : ''}${database ? ` on database "${database}"` : ''}`;
    const judge = (text: string, sqlstate?: string) => {
      const timeMs = Date.now();
      const policy = this.policy(server);
      const f = inspector.inspect({ role, application: app, text, ...(sqlstate ? { sqlstate } : {}), timeMs, learn: this.learning(policy, timeMs) });
      if (!f || !alertsOn(policy, f.type)) return;
      const vuln = f.type === 'SqlInjectionVulnerability';
      if (!vuln && sqliAllowed(policy, f.fingerprint)) return;
      this.addFinding({
        kind: vuln ? 'sqlInjectionVulnerability' : 'sqlInjection',
        server,
        incidentKey: vuln ? `sqlvuln:${role}:${app}` : `sqli:${role}:${app}:${f.fingerprint}`,
        principal: role,
        sourceAddress: address,
        description: vuln
          ? `Application "${app || '(none)'}" running as "${role}"${from} produced a burst of syntax errors: ${f.detail}`
          : `A statement from application "${app || '(none)'}" running as "${role}"${from} looks like SQL injection: ${f.detail}`,
        evidence: { statement: f.evidence, shapes: f.shapes, fingerprint: f.fingerprint, applicationName: app, databaseName: database, clientAddress: address },
        count: 1,
        timeMs,
      });
    };
    return new SqlWatch({
      statement: (text) => judge(text),
      error: (sqlstate, lastText) => {
        if (sqlstate === '42601') judge(lastText, sqlstate);
      },
      // While the policy's learning period runs, only shapes already learned: every new one is to be learned.
      settled: (text) => inspector.settled?.({ role, application: app, text, learning: this.learning(this.policy(server), Date.now()) }) === true,
      ...(source.onStopped ? { stopped: source.onStopped } : {}),
    });
  }

  handle(e: AnyEvent): void {
    switch (e.type) {
      case 'auth.failed':
        return this.failed(e);
      case 'auth.succeeded':
        return this.succeeded(e);
      case 'connection.denied':
        if (e.reason === 'throttled') return this.throttled(e);
        return;
      default:
        return;
    }
  }

  private failed(e: AuthFailed): void {
    const server = e.server;
    const user = e.user;
    if (!server || !user) return;
    const address = e.connection.clientAddress;
    const t = Date.parse(e.time);
    // A refusal that says nothing about the password (database missing, server gone) is not a guess.
    const guess = e.sqlstate === '28P01' || (e.method === 'token' && e.sqlstate === '28000');
    if (!guess) return;
    this.countLogin(server, t, false);
    const p = this.policy(server);
    if (p.autoProtection.state === 'Enabled') {
      for (const b of this.throttle.failure(server, address, user, p.autoProtection, t)) {
        this.o.bus.publish({
          type: 'protection.blocked',
          time: now(),
          server,
          scope: b.scope,
          address: b.address,
          user: b.user,
          until: new Date(b.until).toISOString(),
          failures: b.failures,
        });
      }
    }
    if (p.state !== 'Enabled') return;
    const validUser = e.reason.startsWith('wrong password') || e.reason.startsWith('server refused');
    this.raise(p, this.bruteForce.failure({ server, address, user, timeMs: t, validUser, throttled: false, applicationName: e.applicationName }, p.detectors));
    this.raise(p, connectionFindings({ server, address, user, applicationName: e.applicationName, timeMs: t }, this.o.sources));
  }

  private throttled(e: ConnectionDenied): void {
    const server = e.server;
    const user = e.user;
    if (!server || !user) return;
    const t = Date.parse(e.time);
    this.countLogin(server, t, false);
    const p = this.policy(server);
    if (p.state !== 'Enabled') return;
    const address = e.connection.clientAddress;
    this.raise(
      p,
      this.bruteForce.failure({ server, address, user, timeMs: t, validUser: false, throttled: true, applicationName: e.applicationName }, p.detectors),
    );
  }

  private succeeded(e: AuthSucceeded): void {
    const server = e.server;
    const user = e.user;
    if (!server || !user) return;
    const address = e.connection.clientAddress;
    const t = Date.parse(e.time);
    this.countLogin(server, t, true);
    this.throttle.success(server, address, user, t);
    const p = this.policy(server);
    if (p.state !== 'Enabled') return;
    this.raise(p, this.bruteForce.success({ server, address, user, timeMs: t, method: e.method }, p.detectors));
    this.raise(p, connectionFindings({ server, address, user, applicationName: e.applicationName, timeMs: t }, this.o.sources));
    this.raise(p, loginFindings({ server, address, user, applicationName: e.applicationName, method: e.method, timeMs: t }, p, this.baselines, this.o.sources));
  }

  /** An alert about the platform's own integrity (key lost, audit log failing): raised whatever
   * the server's threat policy says, since it is not a detection. */
  platformAlert(f: Finding): void {
    this.alerts.add(f);
  }

  /** A finding of this process's SQL watch, or one another gateway process sent (its policy
   * was checked there): an alert here, or sent on to the platform process. */
  addFinding(f: Finding): void {
    if (this.o.findingSink) this.o.findingSink(f);
    else this.alerts.add(f);
  }

  private raise(p: SecurityAlertPolicy, findings: readonly Finding[]): void {
    for (const f of findings) if (alertsOn(p, ALERT_KINDS[f.kind].type)) this.alerts.add(f);
  }

  private countLogin(server: string, t: number, ok: boolean): void {
    const bucket = t - (t % 60_000);
    const key = `${server}\u0000${bucket}`;
    let row = this.loginCounts.get(key);
    if (!row) {
      row = [server, bucket, 0, 0];
      this.loginCounts.set(key, row);
    }
    if (ok) row[2]++;
    else row[3]++;
  }

  private onAlert(alert: Alert): void {
    this.o.bus.publish({
      type: 'alert.raised',
      time: now(),
      server: alert.server,
      alertId: alert.id,
      alertType: alert.type,
      severity: alert.severity,
      title: alert.title,
      principal: alert.principal,
      sourceAddress: alert.sourceAddress,
      count: alert.count,
    });
    const p = this.policy(alert.server);
    if (this.o.notifier && (p.emailAddresses.length || p.webhooks.length)) {
      this.o.notifier.deliver(
        { ...alert, ...(this.o.consoleUrl ? { consoleUrl: `${this.o.consoleUrl()}/#/servers/${alert.server}/alerts/${alert.id}` } : {}) },
        { emails: p.emailAddresses, webhooks: p.webhooks },
      );
    }
  }

  /** Dismiss or resolve an alert (API). */
  setAlertState(server: string, id: string, state: 'Active' | 'Resolved' | 'Dismissed', by: string): Promise<Alert | null> {
    return this.alerts.setState(server, id, state, by);
  }

  /** A server's policy changed or the server is gone: forget what its detectors knew when off. */
  policyChanged(server: string, policy: SecurityAlertPolicy | undefined): void {
    if (policy?.state !== 'Enabled') {
      this.alerts.forgetServer(server);
      this.sql.delete(server);
    }
    if (!policy) this.learned.delete(server);
    if (policy?.autoProtection.state !== 'Enabled') this.throttle.forgetServer(server);
    if (!policy) this.baselines.forgetServer(server);
  }

  async flush(): Promise<void> {
    const rows = [...this.loginCounts.values()];
    this.loginCounts.clear();
    await this.o.repo.addLoginStats(rows).catch((err: Error) => this.o.log.warn({ err }, 'could not store login statistics'));
    await this.o.repo.saveBaselines(this.baselines.dirty()).catch((err: Error) => this.o.log.warn({ err }, 'could not store threat baselines'));
    if (this.o.learnedStore) {
      for (const [server, learned] of this.learned) {
        const rows = learned.takePending();
        if (!rows.length) continue;
        await this.o.learnedStore.saveLearnedShapes(server, rows).catch((err: Error) => {
          learned.returnPending(rows);
          this.o.log.warn({ err, server }, 'could not store learned SQL shapes');
        });
      }
    }
    await this.alerts.flush();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flushing;
    await this.alerts.close();
    await this.flush();
    await this.o.notifier?.close();
  }
}

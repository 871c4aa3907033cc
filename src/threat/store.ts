// What threat protection keeps between restarts, as interfaces: the platform's catalog
// (catalog/threat-repo.ts ThreatRepo) implements them. Declared here because catalog/ sits above
// threat/; app/ wires the one into the other.
import type { Alert, AlertState, NewAlert } from './alert.js';
import type { BaselineRow } from './baselines.js';
import type { DeliveryResult } from './notify/types.js';

/** Alerts: one row per open incident, counted. */
export interface AlertRecords {
  /** Inserts an alert, or adds to the open alert of the same incident. */
  raise(alert: NewAlert): Promise<{ id: string; created: boolean }>;
  addCount(id: string, count: number, lastSeen: string): Promise<void>;
  setState(server: string, id: string, state: AlertState, by: string): Promise<Alert | null>;
}

/** Everything the threat engine stores: alerts, the detectors' baselines, login counts. */
export interface ThreatStore extends AlertRecords {
  baselines(): Promise<BaselineRow[]>;
  saveBaselines(rows: readonly BaselineRow[]): Promise<void>;
  /** Adds per-minute login counts: [server name, bucket start ms, succeeded, failed]. */
  addLoginStats(rows: readonly (readonly [string, number, number, number])[]): Promise<void>;
}

/** Where the notifiers' outcomes are recorded. */
export interface DeliveryLog {
  recordDelivery(delivery: DeliveryResult): Promise<void>;
}

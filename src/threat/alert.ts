// An alert (SPEC.md §6) as threat protection raises it and the API shows it: one per incident,
// with a count. Declared here, in the threat domain; catalog/threat-repo.ts stores them.
import type { AlertType, Severity } from './alert-types.js';
import type { LocationView } from './finding.js';

export type AlertState = 'Active' | 'Resolved' | 'Dismissed';

export interface Alert {
  readonly id: string;
  readonly server: string;
  readonly type: AlertType;
  readonly severity: Severity;
  readonly state: AlertState;
  readonly title: string;
  readonly description: string;
  readonly tactic: string;
  readonly principal: string | null;
  readonly sourceAddress: string | null;
  readonly location: LocationView | null;
  readonly firstSeen: string;
  readonly lastSeen: string;
  readonly count: number;
  readonly evidence: Record<string, unknown>;
  readonly recommendedAction: string;
  readonly stateChangedBy: string | null;
  readonly stateChangedAt: string | null;
}

export interface NewAlert extends Omit<Alert, 'state' | 'stateChangedBy' | 'stateChangedAt'> {
  readonly serverId: number;
  readonly incidentKey: string;
}

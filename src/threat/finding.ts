// What a detector reports: one observation of an incident. The alert store turns findings into
// alerts, one per incident (server, type, incidentKey), counting repeated findings.
import type { AlertKindName } from './alert-types.js';

export interface LocationView {
  readonly kind: string;
  readonly country: string | null;
  readonly asn: number | null;
  readonly organization: string | null;
}

export interface Finding {
  readonly kind: AlertKindName;
  readonly server: string;
  /** Identifies the incident within (server, type): repeated findings with the same key are one alert. */
  readonly incidentKey: string;
  readonly principal: string | null;
  readonly sourceAddress: string | null;
  readonly location?: LocationView | null;
  /** What happened, in a sentence or two, with the numbers. */
  readonly description: string;
  /** Already redacted: never passwords, tokens or literal values of statements. */
  readonly evidence: Readonly<Record<string, unknown>>;
  /** How many attempts/occurrences this finding adds to the alert's count. */
  readonly count: number;
  readonly timeMs: number;
}

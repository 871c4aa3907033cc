// Runs a scripted conversation through a SessionAudit with a fake clock.

import { Classifier, type StatementInfo } from '../../../../src/audit/classify/index.js';
import { SessionAudit, type StatementEvent } from '../../../../src/audit/tap/index.js';

/** A conversation: client bytes, then the server's answer, in turn. */
export type Step = readonly ['client' | 'server', Buffer];

export interface Run {
  readonly events: StatementEvent[];
  readonly errors: string[];
  readonly audit: SessionAudit;
}

export function run(
  steps: readonly Step[],
  options: { classifier?: Classifier; logParameters?: boolean; end?: boolean; include?: (info: StatementInfo) => boolean } = {},
): Run {
  const events: StatementEvent[] = [];
  const errors: string[] = [];
  let clock = 0;
  const audit = new SessionAudit({
    classifier: options.classifier ?? new Classifier(),
    onStatement: (e) => events.push(e),
    onError: (reason) => errors.push(reason),
    now: () => (clock += 1),
    ...(options.logParameters !== undefined ? { logParameters: options.logParameters } : {}),
    ...(options.include !== undefined ? { include: options.include } : {}),
  });
  for (const [side, bytes] of steps) {
    if (side === 'client') audit.fromClient(bytes);
    else audit.fromServer(bytes);
  }
  if (options.end) audit.end();
  return { events, errors, audit };
}

/** Events without timing, for comparisons. */
export const summary = (events: readonly StatementEvent[]) => events.map(({ durationMs: _duration, ...rest }) => rest);

// Statement audit taps: decode both directions of a session and join statements with outcomes.

export { BackendTap, rowCount } from './backend-tap.js';
export type { BackendEvent, FrontendEvent, ParamValue, TapOptions } from './events.js';
export { FrontendTap, LONG_FIELD, type FrontendTapOptions } from './frontend-tap.js';
export { StatementJoiner, type JoinerOptions } from './joiner.js';
export { SessionAudit, type SessionAuditOptions } from './session.js';
export type { Outcome, Protocol, StatementEvent } from './statement-event.js';

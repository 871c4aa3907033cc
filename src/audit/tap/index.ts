// Statement audit of relayed sessions: the joiner pairs the observer's statements with outcomes.

export { StatementJoiner, type JoinerOptions, type QuerySummary } from './joiner.js';
export { SessionAudit, StatementAuditConsumer, type SessionAuditOptions } from './session.js';
export type { Outcome, Protocol, StatementEvent } from './statement-event.js';
export { DEFAULT_MAX_TEXT_BYTES } from './statement-event.js';
// The events the joiner reads come from the codec's session observer (pgwire/observer).
export type { BackendEvent, FrontendEvent, ParamValue } from '../../pgwire/observer/index.js';

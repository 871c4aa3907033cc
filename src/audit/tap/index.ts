// Statement audit of relayed sessions: the joiner pairs the observer's statements with outcomes.

export { StatementJoiner, type JoinerOptions } from './joiner.js';
export { SessionAudit, StatementAuditConsumer, type SessionAuditOptions } from './session.js';
export type { Outcome, Protocol, StatementEvent } from './statement-event.js';
// The decoders and their events live in the codec (pgwire/observer); the old names stay usable.
export {
  BackendDecoder as BackendTap,
  FrontendDecoder as FrontendTap,
  LONG_FIELD,
  rowCount,
  type BackendEvent,
  type FrontendDecoderOptions as FrontendTapOptions,
  type DecoderOptions as TapOptions,
  type FrontendEvent,
  type ParamValue,
} from '../../pgwire/observer/index.js';

// The session observer: one framing pass per direction of a relayed session, typed events to
// every consumer.

export { ObserverClock } from './clock.js';
export { SessionObserver, type DecodeNeeds, type QuerySummary, type SessionConsumer } from './observer.js';
export { FrontendDecoder, LONG_FIELD, type FrontendDecoderOptions } from './frontend-decoder.js';
export { BackendDecoder, rowCount, splitTag } from './backend-decoder.js';
export { framingCounters } from './framer.js';
export type { BackendEvent, DecoderOptions, FrontendEvent, FullText, ParamValue } from './events.js';

// An audit event as the store sends it to its writer: its JSON text, canonical where it can be made
// here, or the reason the event is refused.
import { canonicalJsonOfPlain, canonicalTextOf } from './canonical-json.js';
import { MAX_DEPTH } from './record.js';

/** The event's text, and whether it is canonical JSON already (else the writer canonicalizes
 * it); or why it is refused (not a JSON object, or larger than `maxRecordBytes`). */
export function eventText(event: unknown, maxRecordBytes: number): { readonly text: string; readonly canonical: boolean } | string {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return 'an audit event must be a JSON object';
  // Built with its canonical text (a statement event): an object's JSON by construction, left as
  // it was made (reading a character would flatten the text here, before the batch is joined).
  let text = canonicalTextOf(event);
  let canonical = true;
  if (text === undefined) {
    try {
      // Canonical here when the event is plain data (every event of the platform), which spares
      // the writer thread a JSON.parse and a re-serialization per record; else as JSON.stringify
      // writes it, for the writer to canonicalize.
      text = canonicalJsonOfPlain(event, MAX_DEPTH);
      if (text === undefined) {
        canonical = false;
        text = JSON.stringify(event) as string | undefined;
      }
    } catch (err) {
      return `the audit event is not JSON: ${err instanceof TypeError ? err.message : 'cannot encode'}`;
    }
    if (typeof text !== 'string' || text.charCodeAt(0) !== 0x7b) return 'an audit event must be a JSON object';
  }
  // The canonical form has the same characters in another order: the same length.
  if (text.length > maxRecordBytes / 3 && Buffer.byteLength(text) > maxRecordBytes) return `the audit event is larger than ${maxRecordBytes} bytes`;
  return { text, canonical };
}

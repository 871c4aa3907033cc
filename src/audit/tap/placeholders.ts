// Statement infos the joiner makes up when the client's text is not at hand: unknown statement
// or portal names, FunctionCall (an OID, no text), and Parse texts that are not one statement.

import type { StatementInfo } from '../classify/index.js';

export function unknownInfo(error: string): StatementInfo {
  return { class: 'UNKNOWN', classes: UNKNOWN, commandTag: '???', objects: [], text: '', redactedText: '', redactParams: [], error };
}

export function functionCallInfo(oid: number): StatementInfo {
  return {
    class: 'FUNCTION',
    classes: FUNCTION,
    commandTag: 'FUNCTION CALL',
    objects: [{ kind: 'function', name: `function oid ${oid}` }],
    text: '',
    redactedText: '',
    redactParams: [],
  };
}

/** The one statement of a Parse text (the server refuses more than one; none is the empty query). */
export function single(infos: readonly StatementInfo[]): StatementInfo {
  if (infos.length === 1) return infos[0]!;
  if (infos.length === 0) return EMPTY_STATEMENT;
  return {
    ...unknownInfo('cannot insert multiple commands into a prepared statement'),
    objects: infos.flatMap((i) => i.objects),
    text: infos.map((i) => i.text).join('; '),
    redactedText: infos.map((i) => i.redactedText).join('; '),
  };
}

const UNKNOWN: readonly 'UNKNOWN'[] = Object.freeze(['UNKNOWN']);
const FUNCTION: readonly 'FUNCTION'[] = Object.freeze(['FUNCTION']);

const EMPTY_STATEMENT: StatementInfo = Object.freeze({
  class: 'MISC',
  classes: Object.freeze(['MISC' as const]),
  commandTag: '',
  objects: [],
  text: '',
  redactedText: '',
  redactParams: [],
});

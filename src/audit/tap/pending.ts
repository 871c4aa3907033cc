// What the joiner still waits an answer for, in protocol order.

import type { StatementInfo } from '../classify/index.js';
import type { FullText, ParamValue } from '../../pgwire/observer/index.js';
import type { Prepared } from './prepared.js';

export type Pending =
  | {
      kind: 'query';
      infos: readonly StatementInfo[];
      next: number;
      mark: number;
      truncated: boolean;
      full: FullText | undefined;
      copyBytes: number;
      copy: boolean;
      seq: number;
    }
  | {
      kind: 'execute';
      info: StatementInfo;
      params: readonly ParamValue[] | undefined;
      start: number;
      truncated: boolean;
      full: FullText | undefined;
      copyBytes: number;
      copy: boolean;
      seq: number;
    }
  /** `declared`: what the Parse put under its name; `previous`: what was there before (the server keeps it if the Parse fails). */
  | {
      kind: 'parse';
      name: string;
      info: StatementInfo;
      start: number;
      truncated: boolean;
      full: FullText | undefined;
      declared: Prepared;
      previous: Prepared | undefined;
    }
  /** Close: applied at the server's CloseComplete (a Close the server skips after an error closes nothing). */
  | { kind: 'close'; target: 'statement' | 'portal'; name: string; seq: number }
  | { kind: 'function'; oid: number; args: readonly ParamValue[] | undefined; start: number }
  /** A run of Sync (`count`) and CopyData (`bytes`) messages: the same thing in copy mode or not. */
  | { kind: 'sync'; count: number; bytes: number }
  /** CopyDone or CopyFail, queued while a copy may be starting. */
  | { kind: 'copyEnd' }
  /** Any other message, queued while a copy may be starting. */
  | { kind: 'other' };

export type Statement = Extract<Pending, { kind: 'query' | 'execute' }>;

export const COPY_END: Pending = { kind: 'copyEnd' };
export const OTHER: Pending = { kind: 'other' };

// The prepared statements and portals of one session, as the client declared them: the unnamed
// ones (the common case) in a field, named ones in maps. Nothing is ever forgotten while the
// server may still execute it (a forgotten statement would be logged without its text): the
// named ones are held under a byte budget, and a session that goes over it makes the audit stop
// (the session is then ended, see SessionAudit) instead of evicting anything. Long texts are held
// cut, with the length and SHA-256 of the whole text, so the budget counts what is kept.

import type { StatementInfo } from '../classify/index.js';
import type { FullText, ParamValue } from '../../pgwire/observer/index.js';
import { unknownInfo } from './placeholders.js';

export interface Prepared {
  readonly info: StatementInfo;
  readonly truncated: boolean;
  /** The whole text's length and hash when the kept text is cut. */
  readonly full?: FullText | undefined;
  /** Order of the message that declared it (see forgetBefore). */
  readonly seq?: number;
}

export interface Portal extends Prepared {
  readonly params: readonly ParamValue[] | undefined;
}

/** Bytes of JavaScript heap a kept entry costs beyond its strings (a rough, safe estimate). */
const ENTRY_OVERHEAD = 256;

export class PreparedStatements {
  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  private unnamedStatement: Prepared | undefined;
  private unnamedPortal: Portal | undefined;
  private bytes = 0;

  /** `maxBytes`: what the named statements and portals may hold together. */
  constructor(readonly maxBytes: number) {}

  /** Bytes held by named statements and portals (estimate). */
  get heldBytes(): number {
    return this.bytes;
  }

  /** The unnamed statement and portal were replaced by messages relayed unobserved (the native
   * relay's quiet statements): what is known of them is gone, so nothing is attributed to them. */
  forgetUnnamed(): void {
    this.unnamedStatement = undefined;
    this.unnamedPortal = undefined;
  }

  /** False when the budget would be exceeded (nothing is changed then). */
  setStatement(name: string, statement: Prepared | undefined): boolean {
    if (name === '') {
      this.unnamedStatement = statement;
      return true;
    }
    const old = this.statements.get(name);
    const cost = statement === undefined ? 0 : size(statement, name);
    if (statement !== undefined && this.bytes - (old ? size(old, name) : 0) + cost > this.maxBytes) return false;
    if (old) this.bytes -= size(old, name);
    if (statement === undefined) this.statements.delete(name);
    else {
      this.statements.set(name, statement);
      this.bytes += cost;
    }
    return true;
  }

  /** The entry the session holds under this name, if any. */
  entry(name: string): Prepared | undefined {
    return name === '' ? this.unnamedStatement : this.statements.get(name);
  }

  /**
   * A Parse failed or was skipped by the server: the statement it declared (`declared`) is
   * replaced by what was there before it (`previous`), which the server still has; unless a
   * later Parse replaced it meanwhile.
   */
  restore(name: string, declared: Prepared, previous: Prepared | undefined): void {
    if (this.entry(name) === declared) this.setStatement(name, previous);
  }

  /** The server closed the statement (CloseComplete): forgotten, unless declared again after the Close. */
  closeStatement(name: string, seq: number): void {
    const p = this.entry(name);
    if (p !== undefined && (p.seq ?? 0) < seq) this.setStatement(name, undefined);
  }

  statement(name: string): Prepared {
    return (
      (name === '' ? this.unnamedStatement : this.statements.get(name)) ?? {
        info: unknownInfo(`unknown prepared statement "${name}"`),
        truncated: false,
      }
    );
  }

  /** False when the budget would be exceeded. */
  bind(portal: string, statement: string, params: readonly ParamValue[] | undefined, seq = 0): boolean {
    const prepared = this.statement(statement);
    const bound: Portal = { info: prepared.info, truncated: prepared.truncated, full: prepared.full, params, seq };
    if (portal === '') {
      this.unnamedPortal = bound;
      return true;
    }
    const old = this.portals.get(portal);
    const cost = portalSize(bound, portal);
    if (this.bytes - (old ? portalSize(old, portal) : 0) + cost > this.maxBytes) return false;
    if (old) this.bytes -= portalSize(old, portal);
    this.portals.set(portal, bound);
    this.bytes += cost;
    return true;
  }

  portal(name: string): Portal {
    return (
      (name === '' ? this.unnamedPortal : this.portals.get(name)) ?? {
        info: unknownInfo(`unknown portal "${name}"`),
        truncated: false,
        params: undefined,
      }
    );
  }

  /** The server closed the portal (CloseComplete): forgotten, unless bound again after the Close (`seq`). */
  closePortal(name: string, seq = Number.MAX_SAFE_INTEGER): void {
    if (name === '') {
      if ((this.unnamedPortal?.seq ?? 0) < seq) this.unnamedPortal = undefined;
      return;
    }
    const old = this.portals.get(name);
    if (old === undefined || (old.seq ?? 0) >= seq) return;
    this.bytes -= portalSize(old, name);
    this.portals.delete(name);
  }

  /** Portals live until the end of their transaction. */
  endTransaction(): void {
    this.unnamedPortal = undefined;
    if (this.portals.size === 0) return;
    for (const [name, p] of this.portals) this.bytes -= portalSize(p, name);
    this.portals.clear();
  }

  /**
   * SQL DEALLOCATE name / DEALLOCATE ALL / DISCARD ALL succeeded: forgets what was declared
   * before it (`seq`); what the client declared after it (pipelined) stays.
   */
  forgetBefore(seq: number, name: string | null): void {
    for (const [n, p] of this.statements) {
      if ((name === null || n === name) && (p.seq ?? 0) < seq) this.setStatement(n, undefined);
    }
  }
}

function size(p: Prepared, name: string): number {
  return ENTRY_OVERHEAD + 2 * (name.length + p.info.text.length + p.info.redactedText.length) + 64 * p.info.objects.length;
}

function portalSize(p: Portal, name: string): number {
  let bytes = ENTRY_OVERHEAD + 2 * name.length;
  if (p.params) for (const v of p.params) bytes += 16 + (v === null ? 0 : 2 * v.length);
  return bytes;
}

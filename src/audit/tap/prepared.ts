// The prepared statements and portals of one session, as the client declared them: the unnamed
// ones (the common case) in a field, named ones in bounded maps (oldest dropped beyond the bound).

import type { StatementInfo } from '../classify/index.js';
import type { ParamValue } from './events.js';
import { unknownInfo } from './placeholders.js';

export interface Prepared {
  readonly info: StatementInfo;
  readonly truncated: boolean;
}

export interface Portal extends Prepared {
  readonly params: readonly ParamValue[] | undefined;
}

export class PreparedStatements {
  private readonly statements = new Map<string, Prepared>();
  private readonly portals = new Map<string, Portal>();
  private unnamedStatement: Prepared | undefined;
  private unnamedPortal: Portal | undefined;

  constructor(private readonly max: number) {}

  setStatement(name: string, statement: Prepared | undefined): void {
    if (name === '') this.unnamedStatement = statement;
    else if (statement === undefined) this.statements.delete(name);
    else remember(this.statements, name, statement, this.max);
  }

  statement(name: string): Prepared {
    return (name === '' ? this.unnamedStatement : this.statements.get(name)) ?? {
      info: unknownInfo(`unknown prepared statement "${name}"`),
      truncated: false,
    };
  }

  bind(portal: string, statement: string, params: readonly ParamValue[] | undefined): void {
    const prepared = this.statement(statement);
    const bound: Portal = { info: prepared.info, truncated: prepared.truncated, params };
    if (portal === '') this.unnamedPortal = bound;
    else remember(this.portals, portal, bound, this.max);
  }

  portal(name: string): Portal {
    return (name === '' ? this.unnamedPortal : this.portals.get(name)) ?? {
      info: unknownInfo(`unknown portal "${name}"`),
      truncated: false,
      params: undefined,
    };
  }

  closePortal(name: string): void {
    if (name === '') this.unnamedPortal = undefined;
    else this.portals.delete(name);
  }

  /** Portals live until the end of their transaction. */
  endTransaction(): void {
    this.unnamedPortal = undefined;
    if (this.portals.size > 0) this.portals.clear();
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}

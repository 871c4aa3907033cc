// The SQL-injection detector's contract (SPEC.md §6): what the engine hands it per statement and
// what it answers. Apart from engine.ts and sql/detector.ts so that neither imports the other.

export interface SqlInput {
  readonly role: string;
  readonly application: string;
  readonly text: string;
  readonly sqlstate?: string;
  readonly timeMs: number;
  /** The policy's learning period runs: remember the application's shapes. */
  readonly learn?: boolean;
}

export interface SqlFinding {
  readonly type: 'SqlInjection' | 'SqlInjectionVulnerability';
  readonly shapes: readonly string[];
  readonly evidence: string;
  readonly fingerprint: string;
  readonly detail: string;
}

/** The SQL-injection detector, one per server. */
export interface SqlInspector {
  inspect(input: SqlInput): SqlFinding | null;
  /**
   * After `inspect` found nothing in `text`: the same holds for every statement of its shape (the
   * text with other literal values) from (role, application) for as long as what is learned
   * stays: its shape has no injection pattern, and it is a learned shape of theirs or nothing is
   * learned for them. Such statements may go uninspected (the native relay's quiet statements).
   * While the learning period runs (`learning`) only a shape already learned is settled: every
   * new one is still to be learned.
   */
  settled?(input: { readonly role: string; readonly application: string; readonly text: string; readonly learning?: boolean }): boolean;
  /** A verdict without side effects (`threat sql-check`). */
  check(text: string, scope: { application: string | null; role: string | null; learned: boolean }): SqlCheckResult;
}

/** The verdict on one statement (`pgwarden threat sql-check`). */
export interface SqlCheckResult {
  readonly verdict: 'SqlInjection' | 'none';
  readonly shapes: readonly string[];
  readonly detail: string;
  readonly fingerprint: string;
}

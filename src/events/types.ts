// The typed events every pipeline stage emits (SPEC.md §3). Audit and threat protection
// consume them; nothing here does I/O.

export type ListenerKind = 'public' | 'private' | 'private-link';

export interface ConnectionContext {
  /** Gateway-assigned session id, unique per platform run. */
  readonly connId: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly listener: ListenerKind;
  /** Virtual network name for a private listener. */
  readonly listenerName?: string;
  readonly privateEndpoint?: string;
}

interface Base {
  /** ISO 8601 UTC with milliseconds. */
  readonly time: string;
  readonly connection: ConnectionContext;
  readonly server?: string;
  readonly user?: string;
  readonly database?: string;
  readonly applicationName?: string;
  /** Identity object id of a token login. */
  readonly objectId?: string;
}

export interface ConnectionAccepted extends Base {
  readonly type: 'connection.accepted';
}
export interface ConnectionDenied extends Base {
  readonly type: 'connection.denied';
  /** Machine-readable reason code of the stage that refused. */
  readonly reason: string;
  readonly sqlstate: string;
  readonly ssl: boolean;
}
export interface TlsEstablished extends Base {
  readonly type: 'tls.established';
  readonly version: string;
  readonly cipher: string;
  readonly sni?: string;
  readonly alpn?: string;
}
export type AuthMethod = 'scram-sha-256' | 'scram-sha-256-plus' | 'token';
export interface AuthSucceeded extends Base {
  readonly type: 'auth.succeeded';
  readonly method: AuthMethod;
}
export interface AuthFailed extends Base {
  readonly type: 'auth.failed';
  readonly method: AuthMethod;
  readonly sqlstate: string;
  /** Why, for the audit log only: never sent to the client. */
  readonly reason: string;
}
export interface SessionEnded extends Base {
  readonly type: 'session.ended';
  readonly bytesFromClient: number;
  readonly bytesToClient: number;
  readonly durationMs: number;
}

/** A statement the gateway saw executed, decoded from the relayed protocol and classified. */
export interface StatementExecuted extends Base {
  readonly type: 'statement';
  readonly text: string;
  readonly class: string;
  readonly classes: readonly string[];
  readonly commandTag: string;
  readonly objects: readonly { readonly kind: string; readonly name: string }[];
  readonly params?: readonly unknown[];
  readonly outcome: 'success' | 'failure' | 'unknown';
  readonly sqlstate?: string;
  readonly errorMessage?: string;
  readonly rows?: number;
  readonly copyBytes?: number;
  readonly durationMs: number;
  readonly protocol: string;
  /** The text was cut (longer than an event keeps); then its whole length and SHA-256. */
  readonly truncated?: boolean;
  readonly textLength?: number;
  readonly textSha256?: string;
}

/** The gateway's statement audit of a session stopped (a bound reached, a stream it cannot
 * follow, an internal failure): the session was ended with SQLSTATE 58030 (fail closed). */
export interface AuditTapStopped extends Base {
  readonly type: 'audit.tap-stopped';
  readonly reason: string;
}

/** The SQL-injection watch could not follow a session (framing error, an internal failure): the
 * session was ended with SQLSTATE 58030 (fail closed). */
export interface ThreatWatchStopped extends Base {
  readonly type: 'threat.watch-stopped';
  readonly reason: string;
}

export type GatewayEvent =
  | AuditTapStopped
  | ThreatWatchStopped
  | StatementExecuted
  | ConnectionAccepted
  | ConnectionDenied
  | TlsEstablished
  | AuthSucceeded
  | AuthFailed
  | SessionEnded;

/** Events of the platform itself: control-plane actions and server supervision. */
export interface AdminAction {
  readonly type: 'admin.action';
  readonly time: string;
  /** Who: the API token's id, name and role. */
  readonly actor: { readonly tokenId: string; readonly name: string; readonly role: string };
  readonly action: string;
  readonly target: string;
  readonly outcome: 'success' | 'failure';
  readonly details?: Record<string, unknown>;
  readonly error?: string;
}

export interface ServerLifecycle {
  readonly type:
    | 'server.crashed'
    | 'server.restarted'
    | 'server.restart_failed'
    | 'server.started'
    | 'server.stopped'
    | 'server.inaccessible'
    /** An attached server's primary moved (details.from, details.to: HOST:PORT). */
    | 'server.failover'
    /** The platform revoked pg_read_all_data / pg_write_all_data at start (details.revoked). */
    | 'server.data_roles_revoked';
  readonly time: string;
  readonly server: string;
  readonly details?: Record<string, unknown>;
}

export interface PlatformLifecycle {
  /** audit.record-dropped: an event the store could not write even cut down (details say which). */
  /** gateway.worker_exited: a gateway process of `up --gateway-workers N` ended unasked (details:
   * index, pid, code, signal); it is started again. */
  readonly type:
    | 'platform.started'
    | 'platform.stopped'
    | 'audit.retention'
    | 'audit.interrupted'
    | 'audit.record-dropped'
    | 'gateway.worker_started'
    | 'gateway.worker_exited';
  readonly time: string;
  readonly details?: Record<string, unknown>;
}

/** A statement the server itself logged through pgAudit (inside functions and DO blocks too),
 * joined to the gateway session by backend process id. */
export interface ServerStatementAudited {
  readonly type: 'statement.pgaudit';
  readonly time: string;
  readonly server: string;
  /** The gateway session (connection.connId), or null for a session the gateway did not relay. */
  readonly sessionId: string | null;
  readonly backendPid: number;
  readonly user?: string;
  readonly database?: string;
  readonly applicationName?: string;
  readonly auditType: string;
  readonly statementId: number;
  readonly substatementId: number;
  readonly class: string;
  readonly command: string;
  readonly objectType: string;
  readonly objectName: string;
  /** Passwords in role statements are redacted. */
  readonly statement: string;
  readonly parameter: string;
  /** The statement was cut (longer than an event keeps); then its whole length and SHA-256. */
  readonly truncated?: boolean;
  readonly textLength?: number;
  readonly textSha256?: string;
}

/** Threat protection raised an alert (or the first of an incident's alerts). */
export interface AlertRaised {
  readonly type: 'alert.raised';
  readonly time: string;
  readonly server: string;
  readonly alertId: string;
  readonly alertType: string;
  readonly severity: string;
  readonly title: string;
  readonly principal: string | null;
  readonly sourceAddress: string | null;
  readonly count: number;
}

/** The gateway's automatic protection started throttling an address or a (user, address) pair. */
export interface ProtectionBlocked {
  readonly type: 'protection.blocked';
  readonly time: string;
  readonly server: string;
  readonly scope: string;
  readonly address: string;
  readonly user: string | null;
  readonly until: string;
  readonly failures: number;
}

/** Connections the gateway closed before they authenticated, over its pre-auth caps or its
 * descriptor reserve, or silent past the first-byte timeout: one summary per interval. */
export interface PreauthRefused {
  readonly type: 'gateway.preauth_refused';
  readonly time: string;
  /** The interval summed up. */
  readonly from: string;
  readonly to: string;
  readonly refused: number;
  /** By reason: global, per-address, descriptor-reserve, first-byte-timeout. */
  readonly reasons: Readonly<Record<string, number>>;
  /** The addresses (an IPv6 /64 as one) refused most, at most 10, most first. */
  readonly addresses: readonly { readonly address: string; readonly refused: number }[];
}

/** A virtual network's listener came into force or stopped being served (and why). */
export interface VnetListenerChanged {
  readonly type: 'gateway.vnet_listener';
  readonly time: string;
  readonly vnet: string;
  readonly address: string;
  readonly state: 'Ready' | 'Failed';
  readonly reason?: string;
}

/** The gateway lost its catalog connection (it decides on its last snapshot meanwhile:
 * fail-static), or has it back (on whichever host is the primary now) and re-reads everything. */
export interface CatalogConnectionChanged {
  readonly type: 'catalog.disconnected' | 'catalog.reconnected';
  readonly time: string;
  /** The catalog host lost, or reached again (host:port or socket path); null when unknown. */
  readonly host: string | null;
  readonly error?: string;
  /** reconnected: how long the gateway was without its catalog. */
  readonly downSeconds?: number;
}

export type PlatformEvent =
  | CatalogConnectionChanged
  | AdminAction
  | ServerLifecycle
  | PlatformLifecycle
  | ServerStatementAudited
  | AlertRaised
  | ProtectionBlocked
  | PreauthRefused
  | VnetListenerChanged;
export type AnyEvent = GatewayEvent | PlatformEvent;

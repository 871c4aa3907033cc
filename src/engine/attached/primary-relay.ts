// The local socket of one attached server. Everything in pgwarden that talks to a server does
// so over a Unix socket in a directory (the gateway's logins, pooled connections, cancel
// requests, maintenance queries); for an attached server that socket is this relay, which
// carries each connection over TLS (verify-full) to whichever node is the primary now. So the
// one thing that knows where an attached server is lives here, and nothing above changes.
//
// The primary is found by probing every endpoint (probe.ts), again when a connection to it
// fails, every second while connections are open, and before use when the last check is older
// than that. When it moves, the connections to the old one end with FATAL 08006.
import { EventEmitter } from 'node:events';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { errorResponse } from '../../pgwire/backend.js';
import { endpointText, type Endpoint } from './endpoints.js';
import { connectTls } from './tls-connect.js';
import { probeNode, type NodeCredentials, type NodeProbe } from './probe.js';
import { MessageBoundary } from './message-boundary.js';

export interface AttachedSpec extends NodeCredentials {
  readonly id: number;
  readonly name: string;
  readonly endpoints: readonly Endpoint[];
}

export interface PrimaryRelayEvents {
  /** The primary moved (`from` null: the first one found). */
  primary: [from: Endpoint | null, to: Endpoint];
  /** A connection could not reach any primary. */
  unreachable: [error: Error];
}

/** A primary confirmed this recently is used without probing again. */
const FRESH_MS = 1_000;
const POLL_MS = 1_000;

interface Pipe {
  readonly client: net.Socket;
  readonly server: net.Socket;
  readonly endpoint: Endpoint;
  readonly boundary: MessageBoundary;
  /** The client sent Terminate: the server closing next is the normal end. */
  terminated: boolean;
}

/** Terminate ('X', length 4): how a client ends a session. */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

export class PrimaryRelay extends EventEmitter<PrimaryRelayEvents> {
  private listener: net.Server | null = null;
  private current: Endpoint | null = null;
  private checkedAt = 0;
  private finding: Promise<Endpoint> | null = null;
  private readonly pipes = new Set<Pipe>();
  /** Every accepted socket, piped or not yet, so close() ends them all. */
  private readonly accepted = new Set<net.Socket>();
  private poll: NodeJS.Timeout | null = null;

  constructor(
    private spec: AttachedSpec,
    readonly socketDir: string,
    private readonly probe: NodeProbe = probeNode,
  ) {
    super();
  }

  get primaryEndpoint(): Endpoint | null {
    return this.current;
  }

  /** New settings (endpoints, CA, credentials): the primary is looked for again. */
  update(spec: AttachedSpec): void {
    this.spec = spec;
    this.checkedAt = 0;
  }

  async listen(): Promise<void> {
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    chmodSync(this.socketDir, 0o700); // only the platform's own account reaches the server this way
    const file = path.join(this.socketDir, '.s.PGSQL.5432');
    rmSync(file, { force: true });
    const listener = net.createServer({ pauseOnConnect: true }, (c) => void this.accept(c));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(file, () => resolve());
    });
    listener.on('error', () => undefined);
    this.listener = listener;
  }

  async close(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    for (const p of this.pipes) this.end(p, 'the platform is stopping');
    for (const c of this.accepted) c.destroy();
    const l = this.listener;
    this.listener = null;
    if (l) await new Promise<void>((resolve) => l.close(() => resolve()));
    rmSync(this.socketDir, { recursive: true, force: true });
  }

  /** The primary: the known one when confirmed within a second, else found again. */
  primary(): Promise<Endpoint> {
    if (this.current && Date.now() - this.checkedAt < FRESH_MS) return Promise.resolve(this.current);
    return this.find();
  }

  /** Probes every endpoint (one search at a time); the writable one is the primary. */
  find(): Promise<Endpoint> {
    this.finding ??= this.search().finally(() => {
      this.finding = null;
    });
    return this.finding;
  }

  private async search(): Promise<Endpoint> {
    const spec = this.spec;
    const results = await Promise.allSettled(spec.endpoints.map((e) => this.probe(e, spec)));
    const writable = spec.endpoints.filter((_, i) => {
      const r = results[i]!;
      return r.status === 'fulfilled' && r.value.writable;
    });
    if (writable.length === 0) {
      const why = results.map(
        (r, i) => `${endpointText(spec.endpoints[i]!)}: ${r.status === 'fulfilled' ? 'read-only (standby)' : (r.reason as Error).message}`,
      );
      throw new Error(`no endpoint of server "${spec.name}" accepts writes (${why.join('; ')})`);
    }
    // Two writable nodes (a split brain the engine has not fenced yet): stay with the known one.
    const same = this.current && writable.find((e) => sameEndpoint(e, this.current!));
    const next = same ?? writable[0]!;
    const previous = this.current;
    this.current = next;
    this.checkedAt = Date.now();
    if (!previous || !sameEndpoint(previous, next)) {
      this.emit('primary', previous, next);
      if (previous) {
        for (const p of this.pipes) {
          if (sameEndpoint(p.endpoint, previous)) this.end(p, `server "${spec.name}" failed over to a new primary`);
        }
      }
    }
    return next;
  }

  private async accept(client: net.Socket): Promise<void> {
    this.accepted.add(client);
    client.once('close', () => this.accepted.delete(client));
    client.on('error', () => client.destroy());
    let endpoint: Endpoint;
    let server: net.Socket;
    try {
      endpoint = await this.primary();
      server = await connectTls(endpoint, this.spec.ca).catch(async () => {
        // The primary we knew is gone or moved: look again, once.
        this.checkedAt = 0;
        endpoint = await this.find();
        return connectTls(endpoint, this.spec.ca);
      });
    } catch (err) {
      this.emit('unreachable', err as Error);
      client.end(fatal(`could not connect to the primary of server "${this.spec.name}"`, (err as Error).message));
      client.resume(); // read to the peer's end, so the socket closes
      return;
    }
    if (client.destroyed) {
      server.destroy();
      return;
    }
    const pipe: Pipe = { client, server, endpoint, boundary: new MessageBoundary(), terminated: false };
    this.pipes.add(pipe);
    this.startPolling();
    server.on('error', () => server.destroy());
    server.on('data', (chunk: Buffer) => {
      pipe.boundary.feed(chunk);
      if (!client.write(chunk)) server.pause();
    });
    client.on('drain', () => server.resume());
    client.on('data', (chunk: Buffer) => {
      if (chunk.length >= 5 && chunk.subarray(chunk.length - 5).equals(TERMINATE)) pipe.terminated = true;
      if (!server.write(chunk)) client.pause();
    });
    server.on('drain', () => client.resume());
    server.on('close', () => {
      if (!this.pipes.delete(pipe)) return;
      if (pipe.terminated) {
        client.end();
        client.resume();
        return;
      }
      // The node went away: tell the client why (unless it said so itself), and look again.
      if (pipe.boundary.atBoundary && !pipe.boundary.endedWithError) client.end(fatal(`the primary of server "${this.spec.name}" closed the connection`));
      else client.destroy();
      client.resume();
      this.checkedAt = 0;
      void this.find().catch(() => undefined);
    });
    client.on('close', () => {
      this.pipes.delete(pipe);
      server.destroy();
    });
    client.resume();
  }

  /** Ends one relayed connection: a FATAL 08006 to the client when between messages. */
  private end(p: Pipe, why: string): void {
    if (!this.pipes.delete(p)) return;
    if (p.boundary.atBoundary && !p.boundary.endedWithError) p.client.end(fatal(`terminating connection because ${why}`));
    else p.client.destroy();
    p.client.resume();
    p.server.destroy();
  }

  /** Every second while connections are open, the primary is checked (a switchover ends the
   * old primary's sessions and moves new ones within the poll). */
  private startPolling(): void {
    if (this.poll) return;
    this.poll = setInterval(() => {
      if (this.pipes.size === 0) {
        clearInterval(this.poll!);
        this.poll = null;
        return;
      }
      void this.find().catch(() => undefined);
    }, POLL_MS);
    this.poll.unref();
  }
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.host === b.host && a.port === b.port;
}

function fatal(message: string, detail?: string): Buffer {
  return errorResponse({ severity: 'FATAL', sqlstate: '08006', message, ...(detail ? { detail } : {}) });
}

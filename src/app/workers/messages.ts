// What the platform process and its other gateway processes (`up --gateway-workers N`) say to
// each other over the IPC channel of child_process.fork (V8 serialization: Buffers and plain
// objects survive as they are).
import type { MetricsJson } from '../../services/metrics.js';
import type { AnyEvent } from '../../events/types.js';
import type { ListenerSpec } from '../../gateway/context.js';
import type { PoolStats } from '../../gateway/pool/types.js';
import type { Block } from '../../threat/protection/throttle.js';
import type { Finding } from '../../threat/finding.js';
import type { PlatformOptions } from '../options.js';
import type { IndexChanges } from './index-ops.js';

export type ToWorker =
  | { readonly type: 'init'; readonly options: PlatformOptions; readonly index: number; readonly count: number }
  /** Comes with the listening socket as the message's handle. */
  | { readonly type: 'listen'; readonly id: number; readonly spec: ListenerSpec }
  | { readonly type: 'unlisten'; readonly id: number }
  | { readonly type: 'blocks'; readonly blocks: readonly Block[] }
  | { readonly type: 'audit-state'; readonly accepts: boolean }
  /** Strict durability: every event of batches up to `seq` is on disk. */
  | { readonly type: 'ack'; readonly seq: number }
  | { readonly type: 'cancel'; readonly req: number; readonly processId: number; readonly secretKey: Buffer }
  | { readonly type: 'cancel-done'; readonly req: number }
  /** The platform process's gateway certificate changed (rotation): read the files again. */
  | { readonly type: 'certificate' }
  /** /metrics is being scraped: this process's gateway metrics, please. */
  | { readonly type: 'metrics'; readonly req: number }
  | { readonly type: 'stop' };

export type FromWorker =
  | { readonly type: 'ready'; readonly port: number }
  | { readonly type: 'failed'; readonly message: string }
  | {
      readonly type: 'events';
      readonly seq: number;
      readonly events: readonly AnyEvent[];
      /** The session index's changes since the last message (index-ops.ts), applied before the events. */
      readonly index: IndexChanges | null;
      /** Ask for an ack once the events are on disk (strict durability). */
      readonly strict: boolean;
    }
  | { readonly type: 'finding'; readonly finding: Finding }
  | { readonly type: 'cancel'; readonly req: number; readonly processId: number; readonly secretKey: Buffer }
  | { readonly type: 'cancel-done'; readonly req: number; readonly found: boolean }
  | { readonly type: 'pools'; readonly rows: readonly PoolStats[] }
  | { readonly type: 'metrics'; readonly req: number; readonly metrics: MetricsJson }
  | { readonly type: 'stopped' };

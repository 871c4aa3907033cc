// A part of a running process (catalog, servers, API, gateway, ...): something it started and
// must stop. Each composition (platform.ts, gateway-process.ts) says in which order its parts stop.
import type { Logger } from 'pino';

export interface Part {
  stop(): Promise<unknown> | unknown;
}

/** Stops each part that was started, in the order given. Every step runs even when one before it
 * failed: a half-stopped platform would leave PostgreSQL processes running and volumes unlocked. */
export async function stopInOrder(log: Logger, parts: readonly (readonly [what: string, part: Part | undefined])[]): Promise<void> {
  for (const [what, part] of parts) {
    if (!part) continue;
    try {
      await part.stop();
    } catch (err) {
      log.error({ err }, `stopping: ${what}`);
    }
  }
}

/** A part the caller needs started: a clear error instead of a TypeError when it is not (yet). */
export function started<T>(part: T | undefined, what: string): T {
  if (part === undefined) throw new Error(`not started: ${what}`);
  return part;
}

// The typed event bus every stage publishes to; audit and threat protection subscribe.
import type { AnyEvent } from './types.js';

/**
 * Listeners are called in subscription order, synchronously, each with the event (what an
 * EventEmitter does, without its per-publish copy of the listener list: the list is replaced, never
 * changed, when someone subscribes or unsubscribes, so a publish in progress is not affected). A
 * listener that throws stops the publish and the error reaches the publisher, as with emit().
 */
export class EventBus {
  private listeners: readonly ((event: AnyEvent) => void)[] = [];

  publish(event: AnyEvent): void {
    const listeners = this.listeners;
    for (let i = 0; i < listeners.length; i++) {
      const listener = listeners[i]!;
      listener(event);
    }
  }

  subscribe(listener: (event: AnyEvent) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      // Like EventEmitter.off: the most recently added registration of this listener goes.
      const i = this.listeners.lastIndexOf(listener);
      if (i >= 0) this.listeners = [...this.listeners.slice(0, i), ...this.listeners.slice(i + 1)];
    };
  }
}

let nowMs = Number.NaN;
let nowText = '';

/** The current time, ISO 8601 UTC with milliseconds (one Date per distinct millisecond: events come in bursts). */
export function now(): string {
  return isoTime(Date.now());
}

/** A time (Date.now() ms) as now() writes it. */
export function isoTime(ms: number): string {
  if (ms !== nowMs) {
    nowText = new Date(ms).toISOString();
    nowMs = ms;
  }
  return nowText;
}

// The typed event bus every stage publishes to; audit and threat protection subscribe.
import { EventEmitter } from 'node:events';
import type { AnyEvent } from './types.js';

export class EventBus {
  private readonly emitter = new EventEmitter<{ event: [AnyEvent] }>();

  constructor() {
    this.emitter.setMaxListeners(50);
  }

  publish(event: AnyEvent): void {
    this.emitter.emit('event', event);
  }

  subscribe(listener: (event: AnyEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}

export function now(): string {
  return new Date().toISOString();
}

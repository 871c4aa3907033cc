// Requests over the IPC channel that wait for an answer (a cancel asked of the other processes,
// a metrics scrape): each gets an id, and its promise resolves with the answer, or with null once
// `ms` passed (a process that died or is stuck never holds its asker up for long).
export class PendingRequests<T> {
  private next = 1;
  private readonly waiting = new Map<number, (value: T | null) => void>();

  open(ms: number): { readonly req: number; readonly answer: Promise<T | null> } {
    const req = this.next++;
    const answer = new Promise<T | null>((resolve) => {
      const timer = setTimeout(() => finish(null), ms);
      const finish = (value: T | null) => {
        clearTimeout(timer);
        this.waiting.delete(req);
        resolve(value);
      };
      this.waiting.set(req, finish);
    });
    return { req, answer };
  }

  /** The answer to request `req` came (one that timed out already is ignored). */
  answer(req: number, value: T): void {
    this.waiting.get(req)?.(value);
  }
}

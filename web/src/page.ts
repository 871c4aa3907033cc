// What a page module exports: a title and a render function. One module per page; the router
// (main.ts) maps a hash route to one of them.
import type { Session } from './session.js';

export interface PageContext {
  readonly session: Session;
  /** Route parameters, e.g. { name: 'orders' } for #/servers/orders/network. */
  readonly params: Readonly<Record<string, string>>;
  /** Goes to a hash route, e.g. navigate('/servers/orders'). */
  navigate(path: string): void;
  /** Renders the current page again (after a change). */
  refresh(): void;
}

export interface Page {
  title(params: Readonly<Record<string, string>>): string;
  render(ctx: PageContext): Promise<Node>;
}

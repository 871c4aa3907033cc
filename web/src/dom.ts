// DOM building without innerHTML: every piece of data goes through textContent or a property,
// so nothing the API returns can become markup (XSS-safe by construction).
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** h('button', { type: 'button', onclick: fn }, 'Save') → <button type="button">Save</button>. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = String(value);
    } else if (key === 'value' && 'value' in el) {
      (el as HTMLInputElement).value = String(value);
    } else if (key === 'checked' && 'checked' in el) {
      (el as HTMLInputElement).checked = Boolean(value);
    } else if (key.startsWith('style')) {
      throw new Error('inline styles are refused by the Content-Security-Policy: use a class');
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

let ids = 0;
/** A unique id for label/input pairs. */
export function uid(prefix: string): string {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form control with an optional hint and a live message slot for validation. */
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): { row: HTMLDivElement; message: HTMLParagraphElement } {
  if (!control.id) control.id = uid('f');
  const message = h('p', { class: 'field-message', id: `${control.id}-msg`, 'aria-live': 'polite' });
  const describedBy = [message.id];
  let hintEl: HTMLParagraphElement | null = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${control.id}-hint` }, hint);
    describedBy.unshift(hintEl.id);
  }
  control.setAttribute('aria-describedby', describedBy.join(' '));
  const row = h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl, message);
  return { row, message };
}

export function select(name: string, options: readonly string[], value?: string): HTMLSelectElement {
  const el = h('select', { name });
  for (const o of options) el.appendChild(h('option', { value: o }, o));
  if (value !== undefined) el.value = value;
  return el;
}

/** A table with a caption, column headers and one row per item. */
export function table<T>(caption: string, columns: readonly { label: string; cell: (item: T) => Child }[], items: readonly T[], empty: string): HTMLElement {
  if (items.length === 0) return h('p', { class: 'empty' }, empty);
  const head = h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c.label)));
  const body = h('tbody');
  for (const item of items) body.appendChild(h('tr', {}, ...columns.map((c) => h('td', { 'data-label': c.label }, c.cell(item)))));
  return h('div', { class: 'table-wrap' }, h('table', {}, h('caption', {}, caption), h('thead', {}, head), body));
}

/** A status line that screen readers announce: 'ok', 'error', 'pending' or 'info'. */
export function status(kind: 'ok' | 'error' | 'pending' | 'info', text: string): HTMLParagraphElement {
  return h('p', { class: `status status-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** A native modal dialog (focus trapped by the browser, Escape cancels); resolves true on confirm. */
export function confirmDialog(title: string, text: string, confirmLabel: string): Promise<boolean> {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const ok = h('button', { type: 'button', class: 'danger' }, confirmLabel);
    const titleId = uid('dlg');
    const dialog = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, title), h('p', {}, text), h('div', { class: 'actions' }, cancel, ok));
    const done = (value: boolean) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancel.addEventListener('click', () => done(false));
    ok.addEventListener('click', () => done(true));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

export function time(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** Status elements that survive a page refresh: a change's "is it live yet" line keeps
 * updating in the re-rendered page's slot of the same id. */
const carried = new Map<string, HTMLElement>();

/** A result slot; it adopts the status carried over from before a refresh, if any. */
export function resultSlot(id: string): HTMLDivElement {
  const slot = h('div', { class: 'result', id });
  const c = carried.get(id);
  if (c) {
    carried.delete(id);
    slot.append(c);
  }
  return slot;
}

/** Moves `slot`'s status into an element that the next render of the page adopts. */
export function carryOver(slot: HTMLElement): HTMLElement {
  const inner = h('div');
  slot.replaceChildren(inner);
  if (slot.id) carried.set(slot.id, inner);
  return inner;
}

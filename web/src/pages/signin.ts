// Sign-in: the API token is pasted once and kept in sessionStorage (gone when the tab closes);
// it never appears in a URL. The token is checked against GET /me before it is kept.
import { ApiError, clearToken, setToken } from '../api.js';
import { field, h, status } from '../dom.js';

export function renderSignIn(onSignedIn: () => Promise<void>, problem?: string): HTMLElement {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true });
  const token = field('API token', input, 'Paste a token made with `pgwarden token create`. It is kept only for this browser tab.');
  const result = h('div', { class: 'result' }, problem ? status('error', problem) : null);
  const form = h(
    'form',
    { class: 'card signin', novalidate: true },
    h('h1', {}, 'Sign in to pgwarden'),
    token.row,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Sign in')),
    result,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value.trim();
    if (!value) {
      token.message.textContent = 'Enter an API token.';
      input.focus();
      return;
    }
    setToken(value);
    result.replaceChildren(status('pending', 'Checking the token…'));
    try {
      await onSignedIn();
    } catch (err) {
      clearToken();
      result.replaceChildren(status('error', err instanceof ApiError ? err.message : String(err)));
      input.focus();
    }
  });
  queueMicrotask(() => input.focus());
  return h('main', { id: 'main', class: 'signin-page' }, form);
}

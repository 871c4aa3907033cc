// How a delivery target is written in results and logs: a webhook URL without user name,
// password, query values or fragment (they often carry tokens); e-mail addresses as given.

/** `https://hooks.example/alerts?token=redacted`, or `invalid URL`. */
export function webhookTarget(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'invalid URL';
  }
  u.username = '';
  u.password = '';
  u.hash = '';
  const names = [...new Set(u.searchParams.keys())];
  u.search = '';
  const query = names.map((n) => `${encodeURIComponent(n)}=redacted`).join('&');
  return query ? `${u.toString()}?${query}` : u.toString();
}

/** The URL when it is an absolute http(s) URL, else null. */
export function parseWebhookUrl(url: string): URL | null {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u : null;
  } catch {
    return null;
  }
}

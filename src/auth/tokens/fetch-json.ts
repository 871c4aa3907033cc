// One bounded HTTPS GET of a JSON document: HTTPS only, optional CA bundle, no redirects, status
// 200 only, a size cap enforced while reading, and one deadline for the whole exchange.

import { request } from 'node:https';

export interface FetchJsonOptions {
  /** PEM bundle to trust instead of Node's default roots. */
  readonly ca?: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export function fetchJson(url: string, options: FetchJsonOptions): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      reject(new Error(`invalid URL ${JSON.stringify(url)}`));
      return;
    }
    if (target.protocol !== 'https:') {
      reject(new Error(`${url}: only https URLs are fetched`));
      return;
    }
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(new Error(`GET ${url}: ${message}`));
    };
    const req = request(target, {
      method: 'GET',
      headers: { accept: 'application/json' },
      agent: false,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
    const timer = setTimeout(() => fail(`no complete answer within ${options.timeoutMs} ms`), options.timeoutMs);
    req.on('error', (err) => fail(err.message));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        fail(`HTTP status ${res.statusCode ?? '?'}`);
        res.resume();
        return;
      }
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > options.maxBytes) {
        fail(`document larger than ${options.maxBytes} bytes`);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) fail(`document larger than ${options.maxBytes} bytes`);
        else chunks.push(chunk);
      });
      res.on('error', (err) => fail(err.message));
      res.on('close', () => fail('connection closed before the document ended'));
      res.on('end', () => {
        if (settled) return;
        let value: unknown;
        try {
          value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          fail('not JSON');
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(value);
      });
    });
    req.end();
  });
}

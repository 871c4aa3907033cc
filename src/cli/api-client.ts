// The CLI's HTTPS client of the REST API. It finds the API through PGWARDEN_API_URL +
// PGWARDEN_TOKEN (+ PGWARDEN_CA_FILE), or through the data dir's client.json.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface ApiTarget {
  readonly url: string;
  readonly token: string;
  readonly ca?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function resolveTarget(dataDir: string | undefined): ApiTarget {
  const env = process.env;
  if (env.PGWARDEN_API_URL && env.PGWARDEN_TOKEN) {
    return {
      url: env.PGWARDEN_API_URL,
      token: env.PGWARDEN_TOKEN,
      ca: env.PGWARDEN_CA_FILE ? readFileSync(env.PGWARDEN_CA_FILE, 'utf8') : undefined,
    };
  }
  const dir = path.resolve(dataDir ?? env.PGWARDEN_DATA_DIR ?? '.pgwarden');
  const file = path.join(dir, 'client.json');
  if (!existsSync(file)) {
    throw new Error(`No pgwarden platform found in ${dir}: start one with 'pgwarden up', pass --data-dir, or set PGWARDEN_API_URL and PGWARDEN_TOKEN.`);
  }
  let cfg: { apiUrl: string; token: string; caFile: string };
  try {
    cfg = JSON.parse(readFileSync(file, 'utf8')) as typeof cfg;
  } catch (err) {
    throw new Error(`Cannot read ${file}: ${(err as Error).message}`);
  }
  return {
    url: env.PGWARDEN_API_URL ?? cfg.apiUrl,
    token: env.PGWARDEN_TOKEN ?? cfg.token,
    ca: readFileSync(cfg.caFile, 'utf8'),
  };
}

export async function callApi<T>(target: ApiTarget, method: string, route: string, body?: unknown): Promise<T> {
  const url = new URL(route, target.url);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  // Loaded on the first call, so that help and argument errors do not load TLS.
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: target.ca,
        headers: {
          authorization: `Bearer ${target.token}`,
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        },
        timeout: 600_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          const isJson = (res.headers['content-type'] ?? '').startsWith('application/json');
          const data: unknown = isJson && text ? JSON.parse(text) : text;
          if (status >= 400) {
            const e = (data as { error?: { code?: string; message?: string } }).error;
            reject(new ApiError(status, e?.code ?? String(status), e?.message ?? text));
          } else resolve(data as T);
        });
      },
    );
    req.on('error', (err) => reject(new Error(`Cannot reach the pgwarden API at ${target.url}: ${err.message}`)));
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    if (payload) req.write(payload);
    req.end();
  });
}

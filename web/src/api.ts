// Calls to the control plane's API with the session cookie (sent by the browser, never read here).

/** Thrown when the session is missing or has ended (HTTP 401). */
export class SessionEnded extends Error {}

async function parse<T>(res: Response): Promise<T> {
  if (res.status === 401) throw new SessionEnded('session ended');
  const body = (await res.json().catch(() => ({}))) as { error?: { message: string } };
  if (!res.ok) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
  return body as T;
}

/** GET a JSON route of the API. */
export async function get<T>(path: string): Promise<T> {
  return parse<T>(await fetch(path, { credentials: 'same-origin', cache: 'no-store' }));
}

/** POST to the API with the header that marks the dashboard's own requests (the CSRF check). */
export async function post<T>(path: string, body: unknown): Promise<T> {
  return parse<T>(
    await fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-understudy-ui': '1' },
      body: JSON.stringify(body),
    }),
  );
}

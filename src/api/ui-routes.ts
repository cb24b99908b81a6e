import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { HistorySample } from '../control/index.js';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { ApiControl } from './api-control.js';
import type { UiSessions } from './ui-session.js';

/** The dashboard's static files, built by `npm run build:web` next to the compiled API (dist/web). */
export const DEFAULT_WEB_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'web');

/** Query of `GET /v1/services/:name/samples`. */
export const historyQuery = z.strictObject({
  /** Only samples taken after this time (ms since the epoch). @default 0 */
  after: z.coerce.number().int().min(0).default(0),
});

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Headers of every dashboard page and asset: no framing (the failover button), no sniffing, no referrer. */
const UI_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

interface Asset {
  type: string;
  body: Buffer;
}

/** The files of the built dashboard, read once (a fixed map: no path from a URL reaches the disk). */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(dir)) return assets;
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return assets;
}

function page(reply: FastifyReply, status: number, title: string, text: string): FastifyReply {
  const html = `<!doctype html><html lang="en"><meta charset="utf-8"><title>${title}</title><link rel="stylesheet" href="/ui/assets/app.css"><main class="notice"><h1>${title}</h1><p>${text}</p></main></html>`;
  return reply
    .code(status)
    .headers(UI_HEADERS)
    .header('cache-control', 'no-store')
    .type(TYPES['.html']!)
    .send(html);
}

/** What the dashboard routes need. */
export interface UiRouteContext {
  control: ApiControl;
  sessions: UiSessions;
  /** Where the built dashboard is. @default {@link DEFAULT_WEB_DIR} */
  webDir?: string;
}

async function knownService(control: ApiControl, name: string): Promise<void> {
  if (!(await control.services()).some((s) => s.name === name))
    throw new UnderstudyError(ErrorCode.NotFound, `no service named '${name}'`);
}

/**
 * Registers the dashboard: its static files under `/ui/` (public: they hold no data), the login-code
 * exchange at `/ui/login`, `POST /v1/ui/login-codes` (bearer token only) and the data the charts read
 * (`/v1/services/:name/samples`, `/v1/services/:name/forecast`).
 */
export function registerUiRoutes(app: FastifyInstance, ctx: UiRouteContext): void {
  const { control, sessions } = ctx;
  const assets = loadAssets(ctx.webDir ?? DEFAULT_WEB_DIR);

  app.get('/ui/', async (_req, reply) => {
    const index = assets.get('index.html');
    if (!index)
      return page(
        reply,
        404,
        'Dashboard not built',
        'This installation has no dashboard files: run <code>npm run build:web</code> (part of <code>npm run build</code>).',
      );
    return reply.headers(UI_HEADERS).header('cache-control', 'no-store').type(index.type).send(index.body);
  });
  app.get<{ Params: { file: string } }>('/ui/assets/:file', async (req, reply) => {
    const asset = assets.get(req.params.file);
    if (!asset || req.params.file === 'index.html')
      throw new UnderstudyError(ErrorCode.NotFound, `no dashboard asset '${req.params.file}'`);
    return reply.headers(UI_HEADERS).header('cache-control', 'no-cache').type(asset.type).send(asset.body);
  });
  app.get<{ Querystring: { code?: string } }>('/ui/login', async (req, reply) => {
    // A HEAD (a link preview, a prefetch) must not use up the one-time code.
    if (req.method === 'HEAD')
      return reply.code(200).headers(UI_HEADERS).header('cache-control', 'no-store').send();
    const code = typeof req.query.code === 'string' ? req.query.code : '';
    const session = code ? sessions.redeem(code) : undefined;
    if (!session)
      return page(
        reply,
        401,
        'Login link expired or already used',
        'A login link works once, within a minute. Run <code>understudy dashboard</code> again for a new one.',
      );
    // A redirect to a URL without the code: the code leaves the address bar (and history's last entry).
    return reply
      .code(303)
      .headers(UI_HEADERS)
      .header('cache-control', 'no-store')
      .header('set-cookie', sessions.cookie(session))
      .header('location', '/ui/')
      .send();
  });
  app.post('/v1/ui/login-codes', async () => {
    const { code, expiresAt } = sessions.issueCode();
    return { code, expiresAt, path: `/ui/login?code=${code}` };
  });

  app.get<{ Params: { name: string }; Querystring: unknown }>('/v1/services/:name/samples', async (req) => {
    const q = historyQuery.safeParse(req.query ?? {});
    if (!q.success)
      throw new UnderstudyError(
        ErrorCode.ApiRequest,
        q.error.issues.map((i) => `query.${i.path.join('.')}: ${i.message}`).join('; '),
      );
    await knownService(control, req.params.name);
    const samples: HistorySample[] = control.history?.(req.params.name, q.data.after) ?? [];
    return { service: req.params.name, intervalMs: 1000, samples };
  });
  app.get<{ Params: { name: string } }>('/v1/services/:name/forecast', async (req) => {
    await knownService(control, req.params.name);
    const accuracy = control.forecastAccuracy?.(req.params.name);
    if (!accuracy)
      return {
        service: req.params.name,
        forecasting: false,
        note: 'this service makes no forecast (scaling.max equals scaling.min and it has no shadows)',
      };
    return { service: req.params.name, forecasting: true, ...accuracy };
  });
}

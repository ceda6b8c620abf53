// The directory sync (SCIM 2.0) of @boxyhq/saml-jackson behind a plain Node HTTP server, for
// deskgate's benchmark (bench/scim_targets.py starts it; nothing else should).
//
//   JACKSON_ENGINE=mem|postgres|sqlite  JACKSON_DB_URL=...  PORT=0  node server.mjs
//
// It builds Jackson's controllers the way an embedding app does, creates one "okta-scim-v2"
// directory, prints one JSON line {"port", "base_path", "token", "engine"} on stdout and then
// serves `{base_path}/Users[/{id}]` and `/Groups[/{id}]` on 127.0.0.1 by handing each request
// to `directorySyncController.requests.handle()`, shaped as Jackson's own Next.js route
// (`pages/api/scim/v2.0/[...directory].ts`) does: the first path segment is the directory id,
// count and startIndex are integers, the bearer token is the API secret. Webhook events go to a
// no-op callback, so no event is sent anywhere.
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const jackson = require('@boxyhq/saml-jackson');

const engine = process.env.JACKSON_ENGINE || 'mem';
const dbUrl = process.env.JACKSON_DB_URL || '';
const SCIM_PATH = '/api/scim/v2.0';
const MAX_BODY = 1024 * 1024;

function dbOptions() {
  if (engine === 'mem') return { engine: 'mem' };
  if (engine === 'postgres') return { engine: 'sql', type: 'postgres', url: dbUrl };
  if (engine === 'sqlite') return { engine: 'sql', type: 'sqlite', url: dbUrl };
  throw new Error(`unknown JACKSON_ENGINE ${engine} (mem, postgres or sqlite)`);
}

const quiet = { info: () => {}, warn: () => {}, error: (...args) => console.error(...args) };
const noEvents = async () => {};

const controllers = await jackson.controllers({
  externalUrl: 'http://127.0.0.1',
  samlPath: '/api/oauth/saml',
  scimPath: SCIM_PATH,
  db: dbOptions(),
  noAnalytics: true,
  logger: quiet,
  dsync: { callback: noEvents },
});
const dsync = controllers.directorySyncController;

const { data: directory, error } = await dsync.directories.create({
  name: 'deskgate bench',
  tenant: 'bench',
  product: 'deskgate',
  type: 'okta-scim-v2',
});
if (error) throw new Error(`could not create the directory: ${JSON.stringify(error)}`);

function send(res, status, data) {
  const body = data === undefined ? '' : JSON.stringify(data);
  res.writeHead(status, { 'content-type': 'application/scim+json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function bearer(header) {
  if (!header) return '';
  const match = /^bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : header;
}

function intOrUndefined(value) {
  return value ? parseInt(value, 10) : undefined;
}

async function handle(req, res, raw) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (!url.pathname.startsWith(`${SCIM_PATH}/`)) return send(res, 404, { detail: 'not found' });
  const [directoryId, resource, resourceId] = url.pathname.slice(SCIM_PATH.length + 1).split('/');
  if (resource !== 'Users' && resource !== 'Groups') return send(res, 404, { detail: 'not found' });
  let body;
  if (raw.length) {
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, 400, { detail: 'invalid JSON' });
    }
  }
  const { status, data } = await dsync.requests.handle(
    {
      method: req.method,
      body,
      directoryId,
      resourceId,
      resourceType: resource === 'Users' ? 'users' : 'groups',
      apiSecret: bearer(req.headers.authorization),
      query: {
        count: intOrUndefined(url.searchParams.get('count')),
        startIndex: intOrUndefined(url.searchParams.get('startIndex')),
        filter: url.searchParams.get('filter') || undefined,
      },
    },
    noEvents
  );
  return send(res, status, data);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return send(res, 413, { detail: 'body too large' });
    handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((problem) => {
      console.error(problem);
      send(res, 500, { detail: 'internal error' });
    });
  });
});
server.keepAliveTimeout = 30_000;

server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  console.log(
    JSON.stringify({ port, base_path: `${SCIM_PATH}/${directory.id}`, token: directory.scim.secret, engine })
  );
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, async () => {
    server.close();
    await controllers.close().catch(() => {});
    process.exit(0);
  });
}

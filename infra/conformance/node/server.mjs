// A small resource server on another stack, for the conformance kit to report on
// (infra/conformance/foreign.sh). Written the way the library's documentation suggests:
// panva's `jose` verifies RS256 JWTs against the issuer's JWKS (createRemoteJWKSet,
// jwtVerify with issuer and audience), the route requires one scope, and refusals carry a
// hand-written RFC 6750 challenge. Nothing here is tuned to the kit's cases: what the kit
// reports is what a typical server on this stack gets wrong.
//
// Settings come from the kit (it starts this process): CONFORMANCE_ISSUER,
// CONFORMANCE_JWKS_URI, CONFORMANCE_AUDIENCE, CONFORMANCE_SCOPE; PORT to listen on.
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`server.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};
const issuer = env('CONFORMANCE_ISSUER');
const audience = env('CONFORMANCE_AUDIENCE');
const requiredScope = env('CONFORMANCE_SCOPE');
const jwks = createRemoteJWKSet(new URL(env('CONFORMANCE_JWKS_URI')));
const port = Number(process.env.PORT ?? 7063);

function refuse(res, status, error, description) {
  const challenge = error
    ? `Bearer error="${error}", error_description="${description}"`
    : 'Bearer';
  res.writeHead(status, {
    'content-type': 'application/json',
    'www-authenticate': challenge,
  });
  res.end(JSON.stringify({ status, error: error ?? 'unauthorized' }));
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  if (req.method !== 'GET' || path !== '/weatherforecast') {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":"not found"}');
    return;
  }
  const match = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
  if (!match) {
    refuse(res, 401);
    return;
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(match[1], jwks, {
      issuer,
      audience,
      algorithms: ['RS256'],
    }));
  } catch {
    refuse(res, 401, 'invalid_token', 'The access token is not valid');
    return;
  }
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
  if (!scopes.includes(requiredScope)) {
    refuse(res, 403, 'insufficient_scope', `Requires ${requiredScope}`);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify([{ date: new Date().toISOString().slice(0, 10), temperatureC: 21 }]));
});

server.listen(port, '127.0.0.1', () => {
  console.error(`server.mjs: listening on http://127.0.0.1:${port}/weatherforecast`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

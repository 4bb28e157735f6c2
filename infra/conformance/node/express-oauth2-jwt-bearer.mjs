// Auth0's resource-server middleware for Express, `express-oauth2-jwt-bearer`, configured
// as its README's "Getting started" says: `auth({ issuerBaseURL, audience })` on the app
// (discovery and the JWKS from the issuer), `requiredScopes(...)` on the route, the
// library's own RFC 6750 errors through Express's default error handler. Nothing here is
// tuned to the kit's cases (infra/conformance/foreign.sh runs it).
//
// Settings come from the kit (it starts this process): CONFORMANCE_ISSUER,
// CONFORMANCE_AUDIENCE, CONFORMANCE_SCOPE; PORT to listen on. foreign.sh runs it as in
// production: NODE_ENV=production, the kit's issuer over https (`--https`), its CA
// trusted through NODE_EXTRA_CA_CERTS.
import express from 'express';
import { auth, requiredScopes } from 'express-oauth2-jwt-bearer';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`express-oauth2-jwt-bearer.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};
const port = Number(process.env.PORT ?? 7064);

const app = express();
app.use(auth({ issuerBaseURL: env('CONFORMANCE_ISSUER'), audience: env('CONFORMANCE_AUDIENCE') }));
app.get('/weatherforecast', requiredScopes(env('CONFORMANCE_SCOPE')), (req, res) => {
  res.json([{ date: new Date().toISOString().slice(0, 10), temperatureC: 21 }]);
});

const server = app.listen(port, '127.0.0.1', () => {
  console.error(`express-oauth2-jwt-bearer.mjs: listening on http://127.0.0.1:${port}/weatherforecast`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}

// A user at my-bff, in Debian's headless Chromium (playwright-core): starts mock-issuer
// (with the dev user alice), my-service and my-bff with user login, then:
//   1. my-bff's page at / says "Not logged in" and offers Log in;
//   2. Log in: the issuer's login form, alice's name and password, back at my-bff;
//   3. the page says who is logged in (from /bff/user);
//   4. "Forecasts as me": five forecasts from my-service, fetched with alice's token;
//   5. reload: still logged in (the session cookie, HttpOnly, holds no token);
//   6. Log out: the issuer's end-session page sends the browser back; not logged in,
//      /bff/user is 401, and the issuer revoked alice's refresh token.
// A screenshot per step goes to test-output/browser/. Run: `just test-browser`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_ID, CLIENT_SECRET, SHOTS, browser, startSystem } from './harness.mjs';

const PASSWORD = 'alice-browser-password';
const ADMIN_TOKEN = 'browser-test-admin-token-0123456789';

const issuerToml = ({ bffPort }) => `[[resource_servers]]
identifier = "MyService"
scopes = ["weather_read", "weather_write"]
[[clients]]
client_id = "${CLIENT_ID}"
client_secret = "${CLIENT_SECRET}"
allowed_scopes = ["MyService/weather_read"]
allowed_grant_types = ["client_credentials", "authorization_code", "refresh_token"]
redirect_uris = ["http://127.0.0.1:${bffPort}/bff/callback"]
post_logout_redirect_uris = ["http://127.0.0.1:${bffPort}/"]
[[users]]
username = "alice"
password = "${PASSWORD}"
sub = "alice"
name = "Alice Example"
`;

test('my-bff: log in as alice, forecasts as alice, reload, log out', { timeout: 180_000 }, async () => {
  const system = await startSystem({
    issuerToml,
    issuerArgs: ['--admin', '--admin-token', ADMIN_TOKEN],
    bffEnv: ({ issuerPort, bffPort }) => ({
      BFF_PUBLIC_URL: `http://127.0.0.1:${bffPort}`,
      BFF_LOGIN_AUTHORITY: `http://127.0.0.1:${issuerPort}`,
    }),
  });
  const stats = async () =>
    (await fetch(`${system.issuer}/admin/stats`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
  const { context, page, step, failed, steps } = await browser('user');
  const status = page.locator('#status');
  try {
    await step('not-logged-in', async () => {
      await page.goto(`${system.bff}/`);
      await page.locator('#login').waitFor({ state: 'visible', timeout: 15_000 });
      assert.equal((await status.innerText()).trim(), 'Not logged in.');
    });
    await step('issuer-login-form', async () => {
      await page.locator('#login').click();
      await page.locator('#username').waitFor({ timeout: 15_000 });
      await page.locator('#username').fill('alice');
      await page.locator('#password').fill(PASSWORD);
    });
    await step('logged-in', async () => {
      await page.locator('#login').click();
      await page.waitForURL(`${system.bff}/`, { timeout: 15_000 });
      await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('Logged in'), null, {
        timeout: 15_000,
      });
      assert.match(await status.innerText(), /Logged in as Alice Example \(alice\)/);
    });
    await step('forecasts-as-alice', async () => {
      await page.locator('#forecasts').click();
      await page.locator('#table').waitFor({ state: 'visible', timeout: 15_000 });
      assert.equal(await page.locator('#table tbody tr').count(), 5);
    });
    await step('reload-keeps-the-session', async () => {
      await page.reload();
      await page.waitForFunction(() => document.querySelector('#status').textContent.startsWith('Logged in'), null, {
        timeout: 15_000,
      });
      const cookies = await context.cookies(system.bff);
      const session = cookies.find((c) => c.name === 'bff-session');
      assert.ok(session, 'a session cookie');
      assert.ok(session.httpOnly, 'HttpOnly');
      assert.equal(session.sameSite, 'Lax');
    });
    await step('logged-out', async () => {
      await page.locator('#logout').click();
      await page.waitForURL(`${system.bff}/`, { timeout: 15_000 });
      await page.locator('#login').waitFor({ state: 'visible', timeout: 15_000 });
      assert.equal((await status.innerText()).trim(), 'Not logged in.');
      const user = await page.evaluate(async () => (await fetch('/bff/user', { headers: { 'X-CSRF': '1' } })).status);
      assert.equal(user, 401);
      assert.equal((await stats()).refresh_tokens_revoked, 1, 'the refresh token revoked at the issuer');
    });
  } catch (error) {
    await failed(error);
    throw error;
  } finally {
    await context.close();
    system.stop();
  }
  console.log(`my-bff users: ${steps()} steps passed; screenshots in ${SHOTS}`);
});

// Swagger UI as a person uses it, in Debian's headless Chromium (playwright-core; no browser
// download). Starts mock-issuer, my-service and my-bff (target/debug) on free loopback
// ports, then:
//   1. my-service's Swagger UI lists both weather operations, each with a lock icon;
//   2. "Try it out" on GET /weatherforecast without authorizing: 401 and WWW-Authenticate;
//   3. Authorize with the client-credentials flow (the browser posts to the issuer's token
//      endpoint: CORS allows this origin);
//   4. GET /weatherforecast: 200 with five forecasts;
//   5. POST /weatherforecast with only the read scope: 403 insufficient_scope;
//   6. my-bff's Swagger UI, GET /weatherforecast: 200.
// A screenshot per step goes to test-output/browser/. On failure the step and the page's
// console errors are printed. Run: `just test-browser` (after `cargo build --bins`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_ID, CLIENT_SECRET, SHOTS, browser, startSystem } from './harness.mjs';

const issuerToml = ({ servicePort, bffPort }) => `cors_allowed_origins = ["http://127.0.0.1:${servicePort}", "http://127.0.0.1:${bffPort}"]
[[resource_servers]]
identifier = "MyService"
scopes = ["weather_read", "weather_write"]
[[clients]]
client_id = "${CLIENT_ID}"
client_secret = "${CLIENT_SECRET}"
allowed_scopes = ["MyService/weather_read"]
`;

/** Waits until the operation's live response shows `status`; returns its text. */
async function liveResponse(page, op, status) {
  const cell = page.locator(`${op} .live-responses-table .response .response-col_status`).first();
  await cell.waitFor({ timeout: 15_000 });
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.textContent.trim().startsWith(want),
    [`${op} .live-responses-table .response .response-col_status`, String(status)],
    { timeout: 15_000 },
  );
  return page.locator(`${op} .live-responses-table .response .response-col_description`).first().innerText();
}

async function execute(page, op) {
  const tryOut = page.locator(`${op} .try-out__btn`);
  if ((await tryOut.innerText()).trim() === 'Try it out') await tryOut.click();
  await page.locator(`${op} .execute`).click();
}

test('Swagger UI: unauthorized, authorize with client credentials, read, forbidden write, BFF', { timeout: 180_000 }, async () => {
  const system = await startSystem({ issuerToml });
  const { context, page, step, failed, steps } = await browser('swagger');
  const service = `http://127.0.0.1:${system.servicePort}`;
  const GET = '#operations-weather-list';
  const POST = '#operations-weather-create';
  try {
    await step('operations-listed-with-locks', async () => {
      await page.goto(`${service}/swagger-ui/`);
      await page.locator(GET).waitFor({ timeout: 20_000 });
      await page.locator(POST).waitFor();
      assert.equal(await page.locator(`${GET} .authorization__btn`).count(), 1, 'GET has a lock icon');
      assert.equal(await page.locator(`${POST} .authorization__btn`).count(), 1, 'POST has a lock icon');
    });
    await step('get-without-token-401', async () => {
      await page.locator(`${GET} .opblock-summary-control`).click();
      await execute(page, GET);
      const text = await liveResponse(page, GET, 401);
      assert.match(text, /www-authenticate: ?Bearer/i);
    });
    await step('authorize-client-credentials', async () => {
      await page.locator('.btn.authorize').first().click();
      await page.locator('#client_id_clientCredentials').fill(CLIENT_ID);
      await page.locator('#client_secret_clientCredentials').fill(CLIENT_SECRET);
      await page.locator('label[for="MyService/weather_read-clientCredentials-checkbox-oauth2"]').click();
      await page.locator('.auth-btn-wrapper .btn.authorize').click();
      // Authorized: the modal offers Logout instead of Authorize.
      await page.locator('.auth-btn-wrapper .btn:has-text("Logout")').waitFor({ timeout: 15_000 });
      await page.locator('.auth-btn-wrapper .btn-done').click();
    });
    await step('get-with-token-200-five-forecasts', async () => {
      await execute(page, GET);
      const text = await liveResponse(page, GET, 200);
      assert.equal((text.match(/"temperatureC"/g) ?? []).length, 5, text);
    });
    await step('post-with-read-scope-403', async () => {
      await page.locator(`${POST} .opblock-summary-control`).click();
      await execute(page, POST);
      const text = await liveResponse(page, POST, 403);
      assert.match(text, /insufficient_scope/);
    });
    await step('bff-get-200', async () => {
      await page.goto(`http://127.0.0.1:${system.bffPort}/swagger-ui/`);
      const op = '#operations-weather-weatherforecast';
      await page.locator(op).waitFor({ timeout: 20_000 });
      await page.locator(`${op} .opblock-summary-control`).click();
      await execute(page, op);
      const text = await liveResponse(page, op, 200);
      assert.equal((text.match(/"temperatureC"/g) ?? []).length, 5, text);
    });
  } catch (error) {
    await failed(error);
    throw error;
  } finally {
    await context.close();
    system.stop();
  }
  console.log(`Swagger UI: ${steps()} steps passed; screenshots in ${SHOTS}`);
});

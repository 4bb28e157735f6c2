// What the browser tests share: free loopback ports, the services started from the built
// binaries (CARGO_TARGET_DIR/debug, else target/debug), Debian's headless Chromium, and a
// screenshot per step.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'debug');
export const SHOTS = join(ROOT, 'test-output/browser');

export const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

async function waitHealthy(port, child, name) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not become healthy on port ${port}`);
}

/** Processes started with `run`, stopped together. */
export function processes() {
  const children = [];
  const run = (name, bin, args, env, port) => {
    const child = spawn(join(BIN, bin), args, {
      env: { PATH: process.env.PATH, RUST_LOG: 'warn', BIND_ADDR: `127.0.0.1:${port}`, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(child);
    return waitHealthy(port, child, name);
  };
  return { run, stop: () => children.forEach((c) => c.kill('SIGTERM')) };
}

/** my-bff's client at the test issuer. */
export const CLIENT_ID = 'my-bff';
export const CLIENT_SECRET = 'browser-test-secret-0123';

/** The issuer (configured by `issuerToml(ports)`, with `issuerArgs`), my-service and
 * my-bff (its client settings plus `bffEnv(ports)`) on free loopback ports. */
export async function startSystem({ issuerToml, issuerArgs = [], bffEnv = () => ({}) }) {
  const ports = { issuerPort: await freePort(), servicePort: await freePort(), bffPort: await freePort() };
  const config = join(mkdtempSync(join(tmpdir(), 'browser-test-')), 'issuer.toml');
  writeFileSync(config, issuerToml(ports));
  const { run, stop } = processes();
  const issuer = `http://127.0.0.1:${ports.issuerPort}`;
  const service = `http://127.0.0.1:${ports.servicePort}`;
  await run('mock-issuer', 'mock-issuer', ['--config', config, ...issuerArgs], {}, ports.issuerPort);
  await run('my-service', 'my-service', [], { AUTH_AUTHORITY: issuer, AUTH_RESOURCE: service }, ports.servicePort);
  await run(
    'my-bff',
    'my-bff',
    [],
    {
      AUTH_SERVER_TOKEN_ENDPOINT_URL: `${issuer}/oauth2/token`,
      AUTH_SERVER_MYBFF_CLIENT_ID: CLIENT_ID,
      AUTH_SERVER_MYBFF_CLIENT_SECRET: CLIENT_SECRET,
      AUTH_SERVER_MYBFF_SCOPE: 'MyService/weather_read',
      MY_SERVICE_BASE_URL: service,
      ...bffEnv(ports),
    },
    ports.bffPort,
  );
  return { ...ports, issuer, service, bff: `http://127.0.0.1:${ports.bffPort}`, stop };
}

/** Headless Chromium with a fresh profile, its first page, and a step runner that takes a
 * screenshot after each step (`prefix-NN-name.png`) and says which step failed. */
export async function browser(prefix) {
  mkdirSync(SHOTS, { recursive: true });
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'chromium-')), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 1400 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  let current = 'start';
  let n = 0;
  const step = async (name, body) => {
    current = name;
    await body();
    n += 1;
    await page.screenshot({ path: join(SHOTS, `${prefix}-${String(n).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  const failed = async (error) => {
    console.error(`${prefix} test failed at step "${current}": ${error.message}`);
    console.error(`page console errors:\n  ${consoleErrors.join('\n  ') || '(none)'}`);
    await page.screenshot({ path: join(SHOTS, `${prefix}-failed-${current}.png`), fullPage: true }).catch(() => {});
  };
  return { context, page, step, failed, steps: () => n };
}

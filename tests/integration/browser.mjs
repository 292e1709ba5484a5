// Debian's Chromium driven by npm puppeteer-core (no browser download), for the
// tests of pages Parley serves (console, demo). tools/deps --with-test-clients
// installs chromium.
import { existsSync } from "node:fs";
import puppeteer from "puppeteer-core";

export const CHROMIUM = process.env.PARLEY_CHROMIUM ?? "/usr/bin/chromium";
// For describe(…, { skip }): why the browser tests cannot run here, or false.
export const NO_CHROMIUM = !existsSync(CHROMIUM) && `no ${CHROMIUM}`;

// Headless, as root (the tests run as root: no sandbox).
export function launchChromium() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}

import fs from 'node:fs';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';

/** Debian's Chromium, or the browser CHROMIUM_PATH names. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Starts the headless Chromium the end-to-end tests drive through the web mode. A missing browser is
 * an error that says what to install, not playwright's download hint (nothing is downloaded here).
 */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(
      `The end-to-end tests need Chromium at ${chromiumPath}, which does not exist: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome binary.`,
    );
  }
  return chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/**
 * Collects into `problems` what should fail an end-to-end test: uncaught page exceptions, console
 * errors and responses of 400 or more. The session token is masked in the addresses, so a failure
 * message never prints it.
 */
function recordPageProblems(page: Page, problems: string[]): void {
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url().replace(/token=[^&]+/, 'token=…')}`);
  });
}

/**
 * A page in a new context of `browser` whose problems go into `problems` (see recordPageProblems).
 * Waits default to 30 s: the page loads a library the test built before, and never asserts speed.
 */
export async function newRecordedPage(browser: Browser, context: BrowserContextOptions, problems: string[]): Promise<Page> {
  const page = await (await browser.newContext(context)).newPage();
  page.setDefaultTimeout(30_000);
  recordPageProblems(page, problems);
  return page;
}

// Functions below run in the page (passed to page.waitForFunction / addInitScript, never eval'd: the
// app's CSP forbids it). The document is reached through a loose type because tests are compiled
// without the DOM library.

/** True once the elements matching `selector` exist and every one of them has decoded its image. */
export function imagesLoaded(selector: string): boolean {
  const page = globalThis as unknown as { document: { querySelectorAll(query: string): ArrayLike<{ naturalWidth: number }> } };
  const images = Array.from(page.document.querySelectorAll(selector));
  return images.length > 0 && images.every((image) => image.naturalWidth > 0);
}

/**
 * Installed before any app script: every `securitypolicyviolation` becomes a console error, because
 * Chromium logs CSP violations outside the console API where a test would not see them.
 */
export function reportCspViolations(): void {
  const page = globalThis as unknown as {
    document: { addEventListener(type: string, listener: (event: { violatedDirective: string; blockedURI: string; sourceFile: string }) => void): void };
    console: { error(message: string): void };
  };
  page.document.addEventListener('securitypolicyviolation', (event) =>
    page.console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || '(inline)'} in ${event.sourceFile || '?'}`),
  );
}

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { API_URL, assignDoctor, createDoctor, createPatient, signUp } from './api.ts';

// Screenshots are kept as CI artifacts under target/clients/.
const artifacts = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'target', 'clients');

// Runs the named operation with the run button, once GraphiQL has re-read
// the edited document (it does so a moment after the last keystroke; until
// then it still knows only the welcome text's operations).
async function run(page: Page, operation: string): Promise<void> {
  await page.waitForFunction((name) => localStorage.getItem('graphiql:operationName') === name, operation);
  await page.locator('.graphiql-execute-button').click();
}

// Replaces the text of a GraphiQL editor as a paste would.
async function fill(page: Page, editor: string, text: string): Promise<void> {
  await page.locator(`${editor} .CodeMirror`).first().click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

test('GraphiQL in Chromium runs a query and a subscription with the token from its headers pane', async () => {
  const ann = await signUp('GraphiQL Ann');
  const patient = await createPatient(ann.token, 'Shown In GraphiQL');

  // What a person does in the playground.
  async function session(page: Page): Promise<void> {
    const response = await page.goto(`${API_URL}/graphql`);
    assert.equal(response?.status(), 200);
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor();

    // The token goes in through the headers pane.
    await page.getByRole('button', { name: 'Headers' }).click();
    await fill(
      page,
      '.graphiql-editor-tool .graphiql-editor:not(.hidden)',
      JSON.stringify({ Authorization: `Bearer ${ann.token}` }),
    );
    await fill(page, '.graphiql-query-editor', `query Mine {\n  me { email }\n  patient(id: "${patient}") { name }\n}`);
    await run(page, 'Mine');
    const result = page.locator('.graphiql-response');
    await result.getByText(ann.account.email).waitFor({ timeout: 10_000 });
    await result.getByText('Shown In GraphiQL').waitFor();
    await page.screenshot({ path: join(artifacts, 'graphiql-query.png') });

    // A subscription runs over /graphql/ws with the same headers.
    await fill(
      page,
      '.graphiql-query-editor',
      `subscription Live {\n  mappingEvents(patientId: "${patient}") { kind patientId doctorId }\n}`,
    );
    await run(page, 'Live');
    let shown = false;
    for (let attempt = 0; attempt < 20 && !shown; attempt++) {
      await assignDoctor(ann.token, patient, await createDoctor(ann.token, `Dr GraphiQL ${attempt}`));
      shown = await result
        .getByText('ASSIGNED')
        .waitFor({ timeout: 500 })
        .then(() => true)
        .catch(() => false);
    }
    assert.ok(shown, 'the subscription result never appeared');
    await page.screenshot({ path: join(artifacts, 'graphiql-subscription.png') });
  }

  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });

    await session(page).catch(async (error: unknown) => {
      // The page as it was is the first thing to look at.
      await page.screenshot({ path: join(artifacts, 'graphiql-failure.png') }).catch(() => {});
      throw error;
    });

    // Everything the page loaded came from the server itself.
    const origin = new URL(API_URL).origin;
    assert.deepEqual(
      requested.filter((url) => !url.startsWith(`${origin}/`)),
      [],
    );
    assert.ok(requested.some((url) => url.endsWith('/graphql/assets/graphiql.min.js')));
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

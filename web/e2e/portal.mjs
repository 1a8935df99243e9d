// A customer in the portal and an agent in the console, side by side (two browser contexts of
// Debian's Chromium): the customer signs in by the link we mail, opens a ticket; the agent sees it
// in the queue, adds an internal note and a public reply; the customer sees the reply and never
// the note. Prints one JSON line with what it did; exits non-zero on failure.
//
//   GATEWAY_URL=… CREDENTIALS=… SCREENSHOTS=… MAIL_DIR=var/mail PYTHON=.venv/bin/python node e2e/portal.mjs

import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  XSS_SUBJECT,
  accessibilityProblems,
  credentials,
  customer,
  gateway,
  mailIn,
  openTicket,
  politeFetch,
  screenshots,
  signInAsAdmin,
  signInLink,
} from "./common.mjs";

const run = Date.now().toString(36);
const SUBJECT = `Scanner jams on every page ${run}`;
const DESCRIPTION = `Since this morning the scanner jams.\n<b>not bold</b> (${run})`;
const NOTE = `Internal: probably the feed roller, order a spare (${run}).`;
const REPLY = `Hello Jane, please open the lid and remove the paper; a technician is booked (${run}).`;

/** Ask for a sign-in link; the gateway's rate limit on sign-in routes (shared with the other
 * journey) may ask to wait: wait as long as the page says and ask again.
 * @param {import("playwright-core").Page} page */
async function askForLink(page) {
  for (let attempt = 1; ; attempt++) {
    await page.getByRole("button", { name: "Mail me a sign-in link" }).click();
    const outcome = await Promise.race([
      page.getByText("If we know this address, a sign-in link is on its way.").waitFor().then(() => ""),
      page.locator(".problem").waitFor().then(async () => (await page.locator(".problem").textContent()) ?? ""),
    ]);
    if (!outcome) return;
    const wait = /try again in (\d+) seconds?\.$/.exec(outcome);
    assert.ok(wait && attempt < 10, `asking for a link failed: ${outcome}`);
    await page.waitForTimeout((Number(wait[1]) + 1) * 1000);
  }
}

mkdirSync(screenshots, { recursive: true });
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
/** @type {string[]} */
const dialogs = [];
/** @type {string[]} */
const pageErrors = [];
try {
  // Jane is a contact once any ticket of hers exists (the demo portal opens one, subject as markup).
  const xss = await openTicket(XSS_SUBJECT);

  const customerContext = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const portal = await customerContext.newPage();
  for (const page of [portal]) {
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("pageerror", (error) => pageErrors.push(String(error)));
    page.setDefaultTimeout(20_000);
  }

  // Not signed in: the portal asks for an address and mails a link.
  await portal.goto(`${gateway}/portal/tickets/${xss.id}`);
  await portal.waitForURL(/\/portal\/sign-in$/);
  assert.deepEqual(await accessibilityProblems(portal), [], "portal sign-in page");
  const asked = Date.now();
  await portal.getByLabel("Your email address").fill(customer);
  await askForLink(portal);
  const link = await signInLink(customer, asked);
  assert.match(link, /\/sign-in#token=/);

  // The link signs in once: the token leaves the address bar and storage stays empty.
  await portal.goto(link);
  await portal.getByRole("heading", { name: "Your tickets" }).waitFor();
  assert.equal(new URL(portal.url()).pathname, "/portal/");
  assert.equal(new URL(portal.url()).hash, "");
  const stored = await portal.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.equal(stored, "{}{}", "no token where a script could read it");
  const xssRow = portal.locator(`tr[data-ticket="${xss.number}"]`);
  await xssRow.waitFor();
  assert.equal(await xssRow.locator("a").textContent(), XSS_SUBJECT, "the subject is shown as text");
  assert.equal(await portal.locator("table.queue img").count(), 0);
  assert.deepEqual(await accessibilityProblems(portal), [], "portal ticket list");
  await xssRow.locator("a").click();
  await portal.getByRole("heading", { name: XSS_SUBJECT }).waitFor();
  assert.equal(await portal.locator("h1 img, .message img").count(), 0, "the subject is text on its page too");
  await portal.getByRole("link", { name: "Back to your tickets" }).click();

  // A used link does not sign in again.
  const again = await customerContext.newPage();
  await again.goto(link);
  await again.locator(".problem", { hasText: "already used" }).waitFor();
  await again.close();

  // The customer opens a ticket (the empty form is refused, next to the field).
  await portal.getByRole("link", { name: "Open a ticket" }).click();
  await portal.getByRole("heading", { name: "Open a ticket" }).waitFor();
  await portal.getByRole("button", { name: "Open the ticket" }).click();
  await portal.locator("#new-subject-problem").waitFor();
  assert.match((await portal.locator("#new-subject-problem").textContent()) ?? "", /^Subject: .+\.$/);
  assert.deepEqual(await accessibilityProblems(portal), [], "portal new ticket form");
  await portal.getByLabel("Subject").fill(SUBJECT);
  await portal.getByLabel("Describe what happened").fill(DESCRIPTION);
  await portal.getByLabel("How urgent is it?").selectOption("high");
  await portal.getByRole("button", { name: "Open the ticket" }).click();
  await portal.getByRole("heading", { name: SUBJECT }).waitFor();
  const number = ((await portal.locator(".ticket-number").textContent()) ?? "").trim();
  assert.match(number, /^TKT-\d+$/);
  assert.equal(await portal.locator(".message--description .message-body").textContent(), DESCRIPTION);
  await portal.locator(".facts", { hasText: "Received" }).waitFor();

  // The agent, in another browser, sees it in the queue and answers twice.
  const agentContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const consolePage = await agentContext.newPage();
  consolePage.on("pageerror", (error) => pageErrors.push(String(error)));
  consolePage.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  consolePage.setDefaultTimeout(20_000);
  await consolePage.goto(`${gateway}/`);
  await signInAsAdmin(consolePage);
  const row = consolePage.locator(`tr[data-ticket="${number}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.getByRole("link").click();
  await consolePage.getByRole("heading", { name: SUBJECT }).waitFor();
  await consolePage.getByLabel("Message", { exact: true }).fill(NOTE);
  await consolePage.getByRole("button", { name: "Add internal note" }).click();
  await consolePage.locator(".message--internal", { hasText: NOTE }).waitFor();
  await consolePage.getByLabel("Message", { exact: true }).fill(REPLY);
  await consolePage.getByRole("button", { name: "Send reply to customer" }).click();
  await consolePage.locator(".message--public", { hasText: REPLY }).waitFor();

  // The customer's page shows the reply (asked again every few seconds), never the note.
  await portal.locator(".message", { hasText: REPLY }).waitFor({ timeout: 30_000 });
  assert.equal(await portal.locator(".message", { hasText: REPLY }).locator(".badge").textContent(), "Support");
  await portal.locator(".facts", { hasText: "In progress" }).waitFor();
  assert.ok(!((await portal.locator("body").textContent()) ?? "").includes(NOTE), "the note never reaches the portal");
  await portal.reload(); // a reload forgets the customer's token: a new link is needed
  await portal.waitForURL(/\/portal\/sign-in$/);
  const link2asked = Date.now();
  await portal.getByLabel("Your email address").fill(customer);
  await portal.getByLabel("Ticket number (optional)").fill(number);
  await askForLink(portal);
  await portal.goto(await signInLink(customer, link2asked));
  await portal.getByRole("heading", { name: "Your tickets" }).waitFor();
  await portal.locator(`tr[data-ticket="${number}"] a`).click();
  await portal.locator(".message", { hasText: REPLY }).waitFor();
  assert.ok(!((await portal.locator("body").textContent()) ?? "").includes(NOTE));
  await portal.screenshot({ path: join(screenshots, "portal-ticket.png"), fullPage: true });
  assert.deepEqual(await accessibilityProblems(portal), [], "portal ticket page");

  // The customer writes back; the agent's page shows it as the customer's.
  const ANSWER = `Lid opened, works again (${run}).`;
  await portal.getByLabel("Your message").fill(ANSWER);
  await portal.getByRole("button", { name: "Send", exact: true }).click();
  await portal.locator(".message", { hasText: ANSWER }).waitFor();
  await consolePage.locator(".message--public", { hasText: ANSWER }).waitFor({ timeout: 30_000 });

  // Booking: once the ticket has a consultant, the portal offers their free times, behind the
  // signed-SLA rule (said as such while the organization has none on file).
  await consolePage.getByRole("button", { name: "Assign to me" }).click();
  await consolePage.getByRole("button", { name: "Assign to me" }).waitFor({ state: "detached" });
  const reopen = async () => {
    await portal.getByRole("link", { name: "Back to your tickets" }).click();
    await portal.locator(`tr[data-ticket="${number}"] a`).click();
    await portal.getByRole("heading", { name: SUBJECT }).waitFor();
  };
  await reopen();
  const offered = portal.locator("ul.slots button");
  const rule = portal.locator(".sla-rule");
  await offered.or(rule).first().waitFor({ timeout: 30_000 });
  if (await rule.isVisible()) {
    assert.match((await rule.textContent()) ?? "", /signed SLA/);
    const admin = await politeFetch(`${gateway}/api/v1/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: credentials.admin.email, password: credentials.admin.password }),
    });
    const { access_token } = /** @type {{access_token: string}} */ (await admin.json());
    const ticketNow = await (await politeFetch(`${gateway}/api/v1/tickets/by-number/${number}`, { headers: { Authorization: `Bearer ${access_token}` } })).json();
    const signed = await politeFetch(`${gateway}/api/v1/organizations/${ticketNow.organization_id}`, {
      method: "PATCH",
      headers: { Authorization: `Bearer ${access_token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ sla_signed: true }),
    });
    assert.equal(signed.status, 200, await signed.text());
    await reopen();
  }
  await offered.first().waitFor();
  // On the last day offered: far enough ahead to move or cancel within the notice period.
  const days = portal.getByLabel("Day", { exact: true });
  const lastDay = async () => days.selectOption({ index: (await days.locator("option").count()) - 1 });
  const booked = async (/** @type {string | null} */ startsAt) => {
    const shown = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" }).format(new Date(startsAt ?? ""));
    await portal.locator(".facts dd", { hasText: new RegExp(`^${shown} – `) }).waitFor();
  };
  await lastDay();
  const firstStart = await offered.first().getAttribute("data-starts");
  await offered.first().click();
  await booked(firstStart);
  await portal.getByRole("button", { name: "Reschedule" }).click();
  await portal.getByRole("heading", { name: "Pick a new time" }).waitFor();
  await lastDay();
  const secondStart = await offered.nth(1).getAttribute("data-starts");
  await offered.nth(1).click();
  await booked(secondStart);
  assert.equal(await portal.locator(".problem").count(), 0, "moved without a problem");
  await portal.screenshot({ path: join(screenshots, "portal-booked.png"), fullPage: true });
  assert.deepEqual(await accessibilityProblems(portal), [], "portal ticket with an appointment");
  await portal.getByRole("button", { name: "Cancel" }).click();
  await portal.locator(".facts dd", { hasText: "None booked" }).waitFor();

  // Mail on the ticket: the customer's with a file (downloadable in both areas), and a stranger's
  // naming the ticket, kept for agents only and flagged for review with its reason.
  const LOG = `paper jam at tray 2 (${run})\n`;
  mailIn({ from: `Jane <${customer}>`, subject: `Re: [${number}] ${SUBJECT}`, body: `The log is attached (${run}).`, file: { name: "scanner-log.txt", text: LOG } });
  const STRANGER = `Me too, same scanner (${run}).`;
  mailIn({ from: "Mallory <mallory@elsewhere.test>", subject: `Re: ${SUBJECT}`, body: STRANGER, answers: number });
  const fileButton = portal.getByRole("button", { name: /^Download scanner-log\.txt/ });
  await portal.reload(); // the token is gone; sign in again with a link, straight to the ticket
  await portal.waitForURL(/\/portal\/sign-in$/);
  const link3asked = Date.now();
  await portal.getByLabel("Your email address").fill(customer);
  await askForLink(portal);
  await portal.goto(await signInLink(customer, link3asked));
  await portal.locator(`tr[data-ticket="${number}"] a`).click();
  await fileButton.waitFor({ timeout: 30_000 });
  const [file] = await Promise.all([portal.waitForEvent("download"), fileButton.click()]);
  assert.equal(file.suggestedFilename(), "scanner-log.txt");
  const saved = await file.path();
  assert.equal((await import("node:fs")).readFileSync(saved, "utf8").replace(/\r\n/g, "\n"), LOG);
  assert.ok(!((await portal.locator("body").textContent()) ?? "").includes(STRANGER), "a stranger's mail stays internal");

  await consolePage.reload();
  await consolePage.getByRole("heading", { name: SUBJECT }).waitFor();
  const flag = consolePage.locator(".flagged li", { hasText: "mallory@elsewhere.test" });
  await flag.waitFor({ timeout: 30_000 });
  assert.match((await flag.locator(".review-reason").textContent()) ?? "", /\S/, "flagged with its reason");
  await consolePage.getByRole("button", { name: /^Download scanner-log\.txt/ }).waitFor();
  await consolePage.screenshot({ path: join(screenshots, "portal-agent-view.png"), fullPage: true });
  assert.deepEqual(await accessibilityProblems(consolePage), [], "console ticket with a flag and a file");

  assert.deepEqual(dialogs, [], "no script from user content ran");
  assert.deepEqual(pageErrors, []);
  console.log(JSON.stringify({ ticket: number, note: NOTE, reply: REPLY, answer: ANSWER }));
} catch (error) {
  // What the pages showed when the journey failed, for whoever reads the test's failure.
  for (const [index, context] of browser.contexts().entries()) {
    await context.pages()[0]?.screenshot({ path: join(screenshots, `portal-failure-${index}.png`), fullPage: true }).catch(() => null);
  }
  throw error;
} finally {
  await browser.close();
}

// One agent's day in the console, in Debian's Chromium driven by playwright-core, against a
// running stack (tests/web/test_console_journey.py boots it as `make run` does and reads the
// customer's mail afterwards). Prints one JSON line with what it did; exits non-zero on failure.
//
//   GATEWAY_URL=http://127.0.0.1:8080 CREDENTIALS=var/credentials.json SCREENSHOTS=var/screenshots \
//     node e2e/journey.mjs

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM, CHROMIUM_ARGS, XSS_SUBJECT, accessibilityProblems, credentials, gateway, openTicket, politeFetch, screenshots, signInAsAdmin } from "./common.mjs";

const run = Date.now().toString(36);
const SUBJECT = `Printer offline ${run}`;
const NOTE = `Internal: the customer's printer is on the old firmware (${run}).`;
const REPLY = `Hello Jane, please restart the printer once; we are on it (${run}).`;

const profile = mkdtempSync(join(tmpdir(), "helpdesk-chromium-"));
mkdirSync(screenshots, { recursive: true });
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_ARGS,
  viewport: { width: 1280, height: 900 },
});
/** @type {string[]} */
const dialogs = [];
/** @type {string[]} */
const pageErrors = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.setDefaultTimeout(20_000);

  // Every page of the app (the portal's deep links too) comes with a CSP admitting no inline script.
  for (const path of ["/", "/tickets/00000000-0000-0000-0000-000000000000", "/portal/", "/portal/tickets/x"]) {
    const answer = await politeFetch(`${gateway}${path}`);
    assert.equal(answer.status, 200, path);
    const csp = answer.headers.get("content-security-policy") ?? "";
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    assert.doesNotMatch(await answer.text(), /<script(?![^>]*\bsrc=)[^>]*>/, `${path}: an inline script`);
  }

  // Not signed in: the console asks for a password, and says so in sentences when it is wrong.
  await page.goto(`${gateway}/`);
  await page.waitForURL(/\/sign-in\?next=%2F$/);
  assert.deepEqual(await accessibilityProblems(page), [], "sign-in page");
  await page.getByLabel("Email", { exact: true }).fill(credentials.admin.email);
  let lockout = "";
  for (let attempt = 1; attempt <= 10 && !lockout; attempt++) {
    await page.getByLabel("Password", { exact: true }).fill(`wrong password ${attempt}`);
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.locator(".problem");
    await alert.waitFor();
    const text = (await alert.textContent()) ?? "";
    if (text.startsWith("Too many failed attempts")) lockout = text;
    else assert.equal(text, "Wrong email or password.");
    await page.getByRole("button", { name: "Sign in" }).waitFor({ state: "visible" });
  }
  assert.match(lockout, /^Too many failed attempts: try again in \d+ seconds?\.$/);
  const wait = Number(/in (\d+) second/.exec(lockout)?.[1] ?? "1");
  await page.screenshot({ path: join(screenshots, "console-lockout.png") });
  await page.waitForTimeout((wait + 1) * 1000);

  await page.getByLabel("Password", { exact: true }).fill(credentials.admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Queue" }).waitFor();
  assert.equal(new URL(page.url()).pathname, "/");

  // No token where a script could read it; the refresh token is an HttpOnly, Strict cookie.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.equal(stored, "{}{}");
  const cookies = await context.cookies(gateway);
  assert.equal(cookies.length, 0, "no cookie is sent to the console's own pages");
  const sessionCookies = await context.cookies(`${gateway}/api/v1/auth/session`);
  assert.equal(sessionCookies.length, 1);
  const [cookie] = sessionCookies;
  assert.ok(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === "Strict");
  assert.equal(await page.evaluate(() => document.cookie), "");

  // Tickets opened while the queue is on screen appear without a reload.
  await page.evaluate(() => Object.assign(window, { journeyMarker: "no reload" }));
  const ticket = await openTicket(SUBJECT);
  const xss = await openTicket(XSS_SUBJECT);
  const row = page.locator(`tr[data-ticket="${ticket.number}"]`);
  await row.waitFor({ timeout: 30_000 });
  await page.locator(`tr[data-ticket="${xss.number}"]`).waitFor();
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).journeyMarker), "no reload");
  const xssLink = page.locator(`tr[data-ticket="${xss.number}"] a`);
  assert.equal(await xssLink.textContent(), XSS_SUBJECT, "the subject is shown as text");
  assert.equal(await page.locator("table.queue img").count(), 0, "no element came from the subject");
  // The tabs count what the list holds and follow it without a reload: one more ticket, one more.
  const allCount = () => page.locator('[data-count="all"]').textContent().then(Number);
  await page.waitForFunction(() => Number(document.querySelector('[data-count="all"]')?.textContent) >= 2);
  const before = await allCount();
  const third = await openTicket(`${SUBJECT} (counted)`);
  await page.locator(`tr[data-ticket="${third.number}"]`).waitFor({ timeout: 30_000 });
  await page.waitForFunction((n) => Number(document.querySelector('[data-count="all"]')?.textContent) === n, before + 1);
  assert.equal(await page.locator('[data-count="unassigned"]').count(), 1, "the Unassigned tab has its count");
  await page.screenshot({ path: join(screenshots, "console-queue.png"), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), [], "queue");

  // Filters: the new ticket is unassigned (nobody is on shift in the seed) and new.
  await page.getByLabel("Status", { exact: true }).selectOption("closed");
  await row.waitFor({ state: "detached" });
  await page.getByLabel("Status", { exact: true }).selectOption("");
  await row.waitFor();

  // The ticket: an internal note and a public reply, unmistakably apart.
  await row.getByRole("link").click();
  await page.getByRole("heading", { name: SUBJECT }).waitFor();
  assert.equal(await page.locator(".message--description .message-body").textContent(),
    "It stopped this morning.\n<script>alert('description')</script>");
  await page.getByLabel("Message", { exact: true }).fill(NOTE);
  await page.getByRole("button", { name: "Add internal note" }).click();
  const note = page.locator(".message--internal", { hasText: NOTE });
  await note.waitFor();
  assert.match((await note.locator(".badge").textContent()) ?? "", /Internal note · not visible to the customer/);
  // An empty message is refused by the API, and the sentence stands next to the field.
  await page.getByRole("button", { name: "Send reply to customer" }).click();
  const fieldProblem = page.locator("#message-body-problem");
  await fieldProblem.waitFor();
  assert.match((await fieldProblem.textContent()) ?? "", /^Message: .+\.$/);
  await page.getByLabel("Message", { exact: true }).fill(REPLY);
  await page.getByRole("button", { name: "Send reply to customer" }).click();
  const reply = page.locator(".message--public", { hasText: REPLY });
  await reply.waitFor();
  assert.match((await reply.locator(".badge").textContent()) ?? "", /Public reply · sent to the customer/);
  await page.getByText("Reply sent to the customer.").waitFor();
  // The first reply opened the ticket; only the allowed changes are offered.
  await page.locator(".ticket-meta .status", { hasText: "Open" }).waitFor();
  const offered = await page.locator(".status-changer button").allTextContents();
  assert.deepEqual(offered, ["Mark waiting on customer", "Close"]);
  await page.getByRole("button", { name: "Mark waiting on customer" }).click();
  await page.locator(".ticket-meta .status", { hasText: "Waiting on customer" }).waitFor();

  // Triage's decision with its breakdown, and the SLA's resolution clock paused while waiting.
  await page.locator('[data-timer="resolution"].timer--paused').waitFor({ timeout: 30_000 });
  await page.locator("#triage-title + p", { hasText: /Priority P\d/ }).waitFor();
  await page.getByText("Why: the breakdown").click();
  assert.ok((await page.locator(".breakdown dt").count()) > 0, "the decision's breakdown is shown");

  // Reassign: to the signed-in admin (an agent too), then the history says so.
  await page.getByRole("button", { name: "Assign to me" }).click();
  await page.getByRole("button", { name: "Assign to me" }).waitFor({ state: "detached" });
  assert.notEqual(await page.getByLabel("Assigned to").inputValue(), "");

  // Time: log, edit, delete.
  await page.getByLabel("Minutes worked").fill("25");
  await page.getByLabel("What was done").fill(`Remote session ${run}`);
  await page.getByRole("button", { name: "Log time" }).click();
  const entry = page.locator("[data-time-entry]", { hasText: `Remote session ${run}` });
  await entry.waitFor();
  await entry.getByRole("button", { name: "Edit" }).click();
  await page.getByLabel("Minutes", { exact: true }).fill("30");
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("[data-time-entry]", { hasText: "30 min" }).waitFor();
  await page.locator("#time-title", { hasText: "Time (30 min)" }).waitFor();
  await page.locator("[data-time-entry]").getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Confirm delete" }).click();
  await page.locator("[data-time-entry]").waitFor({ state: "detached" });
  await page.locator("#time-title", { hasText: "Time (0 min)" }).waitFor();

  // The API out of reach (a 503, then no network at all): a banner offers to retry, and the
  // reply being written stays until it is sent.
  const DRAFT = `Draft that must survive the outage (${run}).`;
  const apiCall = (/** @type {URL} */ url) => url.pathname.startsWith("/api/");
  const unavailable = {
    status: 503,
    contentType: "application/problem+json",
    headers: { "Retry-After": "2" },
    body: JSON.stringify({ type: "urn:helpdesk:problem:service-unavailable", title: "Service unavailable", status: 503 }),
  };
  await page.route(apiCall, (route) => route.fulfill(unavailable));
  await page.getByLabel("Message", { exact: true }).fill(DRAFT);
  await page.getByRole("button", { name: "Add internal note" }).click();
  await page.locator(".retry-banner", { hasText: "unavailable for a moment" }).waitFor();
  assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), DRAFT);
  await page.unroute(apiCall);
  await context.setOffline(true);
  await page.getByRole("button", { name: "Retry now" }).click();
  await page.locator(".retry-banner", { hasText: "cannot be reached" }).waitFor();
  assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), DRAFT);
  await context.setOffline(false); // back online, the page asks again by itself
  await page.locator(".retry-banner").waitFor({ state: "detached" });
  await page.getByRole("button", { name: "Add internal note" }).click();
  await page.locator(".message--internal", { hasText: DRAFT }).waitFor();
  assert.equal(await page.getByLabel("Message", { exact: true }).inputValue(), "");

  await page.getByText("History").click();
  await page.locator("ol.audit li", { hasText: "assignee_id" }).first().waitFor();
  await page.screenshot({ path: join(screenshots, "console-ticket.png"), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), [], "ticket page");

  // A reload keeps the agent signed in (the cookie gives a new access token).
  const ticketUrl = page.url();
  await page.reload();
  await page.getByRole("heading", { name: SUBJECT }).waitFor();
  assert.equal(page.url(), ticketUrl);

  // An access token that stops working mid-session (expired, revoked; faked here for one call):
  // the app gets a new one from the cookie once and carries on. When the cookie is gone too, it
  // goes to sign-in, says why, and comes back afterwards.
  /** @type {string[]} */
  const refreshes = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname === "/api/v1/auth/session/refresh") refreshes.push(request.method());
  });
  const expired = {
    status: 401,
    contentType: "application/problem+json",
    body: JSON.stringify({ type: "urn:helpdesk:problem:unauthorized", title: "Authentication required", status: 401 }),
  };
  const queueCall = (/** @type {URL} */ url) => url.pathname === "/api/v1/tickets";
  await page.route(queueCall, (route) => route.fulfill(expired), { times: 1 });
  const retried = page.waitForResponse((answer) => queueCall(new URL(answer.url())) && answer.status() === 200);
  await page.getByRole("link", { name: "Back to the queue" }).click();
  await retried;
  await row.waitFor();
  assert.deepEqual(refreshes, ["POST"], "one silent refresh");
  assert.equal(new URL(page.url()).pathname, "/");

  await context.clearCookies();
  await page.route(queueCall, (route) => route.fulfill(expired), { times: 1 });
  await page.waitForURL(/\/sign-in\?next=%2F$/); // the queue asks again within seconds
  await page.getByText("Your session ended. Sign in again to continue.").waitFor();
  await signInAsAdmin(page);
  await row.waitFor();
  assert.equal(new URL(page.url()).pathname, "/");

  // Without the mouse: j/k through the queue, Enter opens, r writes, c closes, u goes back.
  await page.keyboard.press("j");
  await page.keyboard.press("j");
  await page.keyboard.press("k");
  const focused = await page.evaluate(() => document.activeElement?.closest("tr")?.getAttribute("data-ticket"));
  assert.equal(focused, await page.locator("table.queue tbody tr").first().getAttribute("data-ticket"));
  await page.locator(`tr[data-ticket="${ticket.number}"] a`).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: SUBJECT }).waitFor();
  await page.keyboard.press("r");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "message-body");
  await page.keyboard.type("c and u typed here are text, not shortcuts");
  assert.equal(new URL(page.url()).pathname.startsWith("/tickets/"), true);
  await page.getByLabel("Message", { exact: true }).fill("");
  await page.evaluate(() => /** @type {HTMLElement} */ (document.activeElement).blur());
  await page.keyboard.press("c");
  await page.locator(".ticket-meta .status", { hasText: "Closed" }).waitFor();
  await page.keyboard.press("u");
  await page.getByRole("heading", { name: "Queue" }).waitFor();

  // The subject that looks like markup is text on its own page too.
  await page.goto(`${gateway}/tickets/${xss.id}`);
  await page.getByRole("heading", { name: XSS_SUBJECT }).waitFor();
  assert.equal(await page.locator("h1 img").count(), 0);

  // Admin: an agent added (who can then sign in), a portal client created (its secret works
  // once shown), rotated and revoked (its secret stops working), webhooks and the mail log.
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("heading", { name: "Agents" }).waitFor();
  const newAgent = { email: `ada-${run}@helpdesk.test`, password: `Correct horse ${run} battery` };
  await page.getByLabel("Name", { exact: true }).fill(`Ada ${run}`);
  await page.getByLabel("Email", { exact: true }).fill(newAgent.email);
  await page.getByLabel("Skills (comma-separated)").fill("printers, network");
  await page.getByLabel("Timezone").fill("Europe/Berlin");
  await page.getByLabel("First password (optional)").fill(newAgent.password);
  await page.getByRole("button", { name: "Add the agent" }).click();
  await page.getByText(`Ada ${run} can sign in with the password given.`).waitFor();
  await page.locator(`tr[data-agent="${newAgent.email}"]`, { hasText: "printers, network" }).waitFor();
  assert.deepEqual(await accessibilityProblems(page), [], "admin: agents");
  const login = await politeFetch(`${gateway}/api/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(newAgent),
  });
  assert.equal(login.status, 200, "the new agent signs in");

  await page.getByRole("link", { name: "API clients" }).click();
  await page.getByRole("heading", { name: "Portal and API clients" }).waitFor();
  await page.getByLabel("Name", { exact: true }).fill(`Partner portal ${run}`);
  await page.getByLabel("Organization it serves").selectOption({ index: 1 });
  await page.getByRole("button", { name: "Create the client" }).click();
  const secretOf = async () => ({
    id: (await page.locator("[data-client-id]").textContent()) ?? "",
    secret: (await page.locator("[data-client-secret]").textContent()) ?? "",
  });
  await page.locator("[data-client-secret]").waitFor();
  const first = await secretOf();
  const tokenWith = (/** @type {{id: string, secret: string}} */ c) =>
    politeFetch(`${gateway}/api/v1/oauth/token`, {
      method: "POST",
      headers: { Authorization: `Basic ${Buffer.from(`${c.id}:${c.secret}`).toString("base64")}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials",
    });
  assert.equal((await tokenWith(first)).status, 200, "the new client's secret works");
  const clientRow = page.locator(`tr[data-client="Partner portal ${run}"]`);
  await clientRow.getByRole("button", { name: "Rotate secret" }).click();
  await page.waitForFunction((old) => document.querySelector("[data-client-secret]")?.textContent !== old, first.secret);
  const second = await secretOf();
  assert.equal((await tokenWith(second)).status, 200, "the rotated secret works");
  await page.screenshot({ path: join(screenshots, "console-admin.png"), fullPage: true });
  assert.deepEqual(await accessibilityProblems(page), [], "admin: clients");
  await clientRow.getByRole("button", { name: "Revoke" }).click();
  await clientRow.getByRole("button", { name: /^Confirm: revoke/ }).click();
  await clientRow.locator("td", { hasText: /^revoked / }).waitFor();
  assert.equal((await tokenWith(second)).status, 401, "a revoked client gets no token");

  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByRole("heading", { name: "Webhook subscriptions" }).waitFor();
  assert.deepEqual(await accessibilityProblems(page), [], "admin: webhooks");
  await page.getByRole("link", { name: "Notification log" }).click();
  await page.locator('tr[data-notification]', { hasText: ticket.number }).first().waitFor();
  assert.deepEqual(await accessibilityProblems(page), [], "admin: notification log");

  // Signing out ends the session: a reload stays signed out; signing in returns to the page.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  assert.equal((await context.cookies(`${gateway}/api/v1/auth/session`)).length, 0);
  await page.goto(ticketUrl);
  await page.waitForURL(/\/sign-in\?next=/);
  await signInAsAdmin(page);
  await page.getByRole("heading", { name: SUBJECT }).waitFor();
  assert.equal(page.url(), ticketUrl, "back where the agent was going");

  assert.deepEqual(dialogs, [], "no script from user content ran");
  assert.deepEqual(pageErrors, []);
  console.log(JSON.stringify({ ticket: ticket.number, xss: xss.number, note: NOTE, reply: REPLY, subject: SUBJECT }));
} catch (error) {
  // What the page showed when the journey failed, for whoever reads the test's failure.
  await context.pages()[0]?.screenshot({ path: join(screenshots, "console-failure.png"), fullPage: true }).catch(() => null);
  throw error;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

// What the browser journeys share: the stack they run against, Chromium, axe-core, and the demo
// portal's API client (to open tickets as a third-party portal would).

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** @param {string} name */
export function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

export const gateway = required("GATEWAY_URL");
export const credentials = JSON.parse(readFileSync(required("CREDENTIALS"), "utf8"));
export const screenshots = required("SCREENSHOTS");
export const customer = process.env.CUSTOMER_EMAIL ?? "jane@demo-customer.test";
export const XSS_SUBJECT = "<img src=x onerror=alert(1)>";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--no-first-run",
];
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** axe-core's serious and critical findings on the page as it is (the script is evaluated over
 * the DevTools protocol, which the page's Content-Security-Policy does not govern).
 * @param {import("playwright-core").Page} page */
export async function accessibilityProblems(page) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const results = await /** @type {any} */ (window).axe.run(document, { resultTypes: ["violations"] });
    return results.violations.map((/** @type {any} */ v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
  });
  return found.filter((/** @type {{impact: string}} */ v) => v.impact === "serious" || v.impact === "critical");
}

/** fetch as a well-behaved API client: a 429 from the gateway's rate limits (the token route
 * is limited per address, and the journeys share one) is waited out as Retry-After says, for
 * up to a minute, instead of failing the journey.
 * @param {string} url @param {RequestInit} [init] */
export async function politeFetch(url, init) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(url, init);
    if (response.status !== 429 || Date.now() > deadline) return response;
    const seconds = Number(response.headers.get("retry-after") ?? "1");
    await new Promise((resolve) => setTimeout(resolve, 1000 * Math.max(1, Number.isFinite(seconds) ? seconds : 1)));
  }
}

/** Open a ticket as the demo portal does (OAuth client credentials, then POST /tickets).
 * @param {string} subject @param {string} [description] */
export async function openTicket(subject, description = "It stopped this morning.\n<script>alert('description')</script>") {
  const basic = Buffer.from(`${credentials.portal.client_id}:${credentials.portal.client_secret}`).toString("base64");
  const token = await politeFetch(`${gateway}/api/v1/oauth/token`, {
    method: "POST",
    headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
    body: "grant_type=client_credentials",
  });
  assert.equal(token.status, 200, await token.clone().text());
  const { access_token } = /** @type {{access_token: string}} */ (await token.json());
  const created = await politeFetch(`${gateway}/api/v1/tickets`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${access_token}`,
      "Content-Type": "application/json",
      "Idempotency-Key": crypto.randomUUID(),
    },
    body: JSON.stringify({ contact: { email: customer, name: "Jane" }, subject, description, urgency: "high" }),
  });
  assert.equal(created.status, 201, await created.clone().text());
  return /** @type {{id: string, number: string}} */ (await created.json());
}

// The newest sign-in link mailed to an address, read from the SMTP sink's .eml files with
// Python's mail parser (MIME, quoted-printable), which the test's interpreter brings.
const FIND_LINK = `
import email, email.policy, pathlib, re, sys
folder, to, after = pathlib.Path(sys.argv[1]), sys.argv[2].lower(), float(sys.argv[3])
for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
    if path.stat().st_mtime < after:
        break
    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    if to not in str(mail["To"]).lower():
        continue
    part = mail.get_body(("plain", "html"))
    found = re.search(r"https?://[^\\s<>\\"']+/sign-in#token=[A-Za-z0-9._~-]+", part.get_content() if part else "")
    if found:
        print(found.group(0))
        break
`;

/** Wait for the sign-in link mailed to `to` since `after` (ms since the epoch).
 * @param {string} to @param {number} after */
export async function signInLink(to, after) {
  const mailDir = required("MAIL_DIR");
  const python = process.env.PYTHON ?? "python3";
  const deadline = Date.now() + 30_000;
  for (;;) {
    const link = execFileSync(python, ["-c", FIND_LINK, mailDir, to, String(after / 1000 - 1)], { encoding: "utf8" }).trim();
    if (link) return link;
    assert.ok(Date.now() < deadline, `no sign-in link mailed to ${to}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

const MAIL_IN = `
import email, email.policy, pathlib, smtplib, sys
from email.message import EmailMessage
port, sender, subject, body, mail_dir, answers, name, text = sys.argv[1:9]
m = EmailMessage(); m["From"] = sender; m["To"] = "support@helpdesk.test"; m["Subject"] = subject
if answers:  # a reply to the newest mail we sent about that ticket (threads by its Message-ID)
    for path in sorted(pathlib.Path(mail_dir).glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        ours = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if f"[{answers}]" in str(ours["Subject"]):
            m["In-Reply-To"] = m["References"] = ours["Message-ID"]
            break
    else:
        sys.exit(f"no mail about {answers} to answer")
m.set_content(body)
if name:
    m.add_attachment(text.encode(), maintype="text", subtype="plain", filename=name)
with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as smtp:
    smtp.send_message(m)
`;

/** Mail support through the inbound SMTP listener, as a mail program does; `answers` makes it
 * a reply to our last mail about that ticket number.
 * @param {{from: string, subject: string, body: string, answers?: string, file?: {name: string, text: string}}} mail */
export function mailIn(mail) {
  execFileSync(process.env.PYTHON ?? "python3", [
    "-c",
    MAIL_IN,
    required("INBOUND_SMTP_PORT"),
    mail.from,
    mail.subject,
    mail.body,
    required("MAIL_DIR"),
    mail.answers ?? "",
    mail.file?.name ?? "",
    mail.file?.text ?? "",
  ]);
}

/** Submit the sign-in form with the admin's password; while a lockout (the sign-in journey's
 * failures) still runs, wait as long as the page says and submit again.
 * @param {import("playwright-core").Page} page */
export async function signInAsAdmin(page) {
  await page.getByLabel("Email", { exact: true }).fill(credentials.admin.email);
  await page.getByLabel("Password", { exact: true }).fill(credentials.admin.password);
  for (let attempt = 1; ; attempt++) {
    await page.getByRole("button", { name: "Sign in" }).click();
    const outcome = await Promise.race([
      page.waitForURL((url) => url.pathname !== "/sign-in").then(() => ""),
      page.locator(".problem").waitFor().then(async () => (await page.locator(".problem").textContent()) ?? ""),
    ]);
    if (!outcome) return;
    const wait = /^Too many failed attempts: try again in (\d+) seconds?\.$/.exec(outcome);
    assert.ok(wait && attempt < 5, `signing in failed: ${outcome}`);
    await page.waitForTimeout((Number(wait[1]) + 1) * 1000);
  }
}


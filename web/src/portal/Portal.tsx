// The customers' portal at /portal/: sign in by a mailed link, their own tickets only, open one,
// follow and answer it, book time with the consultant. Loaded on its own (a lazy chunk), so agents
// never download it and customers never download the console.

import { useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { type Ticket, portalApi, portalCall } from "../client";
import { type Column, Link, ProblemBanner, RetryBanner, RowTable, TextField, usePages, useSubmit } from "../components";
import { formatTime } from "../labels";
import { type Problem, ProblemError } from "../problems";
import { expireCustomer, redeemLink, requestLink, useCustomer } from "../portalSession";
import { navigate, useLocation } from "../router";
import { NewTicket } from "./NewTicket";
import { PortalTicket } from "./PortalTicket";
import { CUSTOMER_STATUS } from "./words";

export const PORTAL = "/portal/";
const SIGN_IN = "/portal/sign-in";

/** The token of a sign-in link (`…/sign-in#token=…`), if the page was opened from one. */
export function linkToken(): string | null {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  return token && /^\/(portal\/)?sign-in$/.test(window.location.pathname) ? token : null;
}

export default function Portal() {
  const customer = useCustomer();
  const location = useLocation();
  const path = location.split("?")[0] ?? PORTAL;
  const token = linkToken(); // read on each render: leaving the link's page drops it

  useEffect(() => {
    if (token === null && customer.status === "signed-out" && path !== SIGN_IN) {
      navigate(SIGN_IN, { replace: true });
    } else if (customer.status === "signed-in" && path === SIGN_IN) {
      navigate(PORTAL, { replace: true });
    }
  }, [customer.status, path, token]);

  if (token !== null && customer.status === "signed-out") return <Redeem token={token} />;
  if (customer.status === "signed-out") return <AskForLink expired={customer.expired} />;
  const ticket = /^\/portal\/tickets\/([0-9a-f-]{36})$/.exec(path);
  return (
    <>
      <header className="top top--portal">
        <Link to={PORTAL} className="brand">
          Support portal
        </Link>
        <span className="who">
          Signed in as <strong>{customer.me.name}</strong>
        </span>
        <button type="button" className="secondary" onClick={() => expireCustomer(false)}>
          Sign out
        </button>
      </header>
      <RetryBanner />
      <main>
        {path === PORTAL || path === "/portal" ? (
          <MyTickets />
        ) : path === "/portal/new" ? (
          <NewTicket contactId={customer.me.contactId} />
        ) : ticket?.[1] ? (
          <PortalTicket ticketId={ticket[1]} />
        ) : (
          <p>
            No page here. <Link to={PORTAL}>Go to your tickets</Link>
          </p>
        )}
      </main>
    </>
  );
}

// A link's token works once: React's development double effects (and a double render) must not
// spend it twice, so the one redemption is kept per token. A 429 (the gateway's rate limit on
// sign-in routes) spent nothing: it is tried again after the wait the answer names.
const redemptions = new Map<string, Promise<void>>();
const MAX_TRIES = 5;

function redeemOnce(token: string): Promise<void> {
  let redemption = redemptions.get(token);
  if (!redemption) {
    redemption = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await redeemLink(token);
        } catch (error) {
          const wait = error instanceof ProblemError && error.problem.status === 429 ? (error.problem.retryAfterSeconds ?? 2) : null;
          if (wait === null || attempt >= MAX_TRIES) throw error;
          await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        }
      }
    })();
    redemptions.set(token, redemption);
  }
  return redemption;
}

function Redeem({ token }: { token: string }) {
  const [problem, setProblem] = useState<Problem | null>(null);
  useEffect(() => {
    redeemOnce(token).then(
      () => navigate(PORTAL, { replace: true }), // also drops the token from the address bar
      (error: unknown) => setProblem(error instanceof ProblemError ? error.problem : null),
    );
  }, [token]);
  return (
    <main className="sign-in">
      <h1>Support portal</h1>
      {problem ? (
        <>
          <ProblemBanner problem={problem} />
          <p>
            <Link to={SIGN_IN}>Ask for a new sign-in link</Link>
          </p>
        </>
      ) : (
        <p role="status">Signing you in…</p>
      )}
    </main>
  );
}

function AskForLink({ expired }: { expired: boolean }) {
  const [email, setEmail] = useState("");
  const [number, setNumber] = useState("");
  const [sent, setSent] = useState(false);
  const { busy, problem, submit } = useSubmit(async () => {
    setSent(false);
    await requestLink(email, number);
    setSent(true);
  });

  return (
    <main className="sign-in">
      <h1>Support portal</h1>
      <form onSubmit={submit} aria-labelledby="link-title" noValidate>
        <h2 id="link-title">Sign in by email</h2>
        {expired && <p className="notice">Your sign-in has ended. Ask for a new link to continue.</p>}
        <p className="hint">We mail you a link that signs you in once, for a few minutes. No password needed.</p>
        <TextField id="portal-email" label="Your email address" type="email" autoComplete="email" value={email} onChange={setEmail} problem={problem} field="email" />
        <TextField id="portal-number" label="Ticket number (optional)" placeholder="TKT-42" value={number} onChange={setNumber} problem={problem} field="ticket_number" />
        <ProblemBanner problem={problem} shown={["email", "ticket_number"]} />
        {sent && (
          <p className="notice" role="status">
            If we know this address, a sign-in link is on its way. Open it in this browser.
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Sending…" : "Mail me a sign-in link"}
        </button>
      </form>
    </main>
  );
}

const PORTAL_COLUMNS: Column<Ticket>[] = [
  { header: "Number", cell: (ticket) => ticket.number },
  { header: "Subject", cell: (ticket) => <Link to={`/portal/tickets/${ticket.id}`}>{ticket.subject}</Link> },
  { header: "State", cell: (ticket) => <span className={`status status--${ticket.status}`}>{CUSTOMER_STATUS[ticket.status]}</span> },
  { header: "Opened", cell: (ticket) => formatTime(ticket.created_at) },
];

function MyTickets() {
  const { cursor, pager } = usePages();
  const tickets = useQuery({
    queryKey: ["portal", "tickets", cursor],
    queryFn: () => portalCall(() => portalApi.GET("/api/v1/tickets", { params: { query: { limit: 25, cursor } } })),
    refetchInterval: 10_000,
  });
  const page = tickets.data;
  return (
    <section aria-labelledby="mine-title">
      <h1 id="mine-title">Your tickets</h1>
      <p>
        <Link to="/portal/new" className="button">
          Open a ticket
        </Link>
      </p>
      <ProblemBanner problem={tickets.error instanceof ProblemError ? tickets.error.problem : null} />
      {tickets.isPending ? (
        <p>Loading your tickets…</p>
      ) : page && page.items.length === 0 ? (
        <p className="empty">You have no tickets yet.</p>
      ) : (
        page && <RowTable rows={page.items} caption="Your tickets, newest first" columns={PORTAL_COLUMNS} rowProps={(ticket) => ({ "data-ticket": ticket.number })} />
      )}
      {pager(page?.next_cursor)}
    </section>
  );
}

import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { type Ticket, type TicketStatus, api, call } from "../client";
import { Link, ProblemBanner } from "../components";
import { STATUSES, STATUS_LABEL, formatTime } from "../labels";
import { ProblemError } from "../problems";
import type { Me } from "../session";

type Scope = "mine" | "unassigned" | "all";
const SCOPES: { value: Scope; label: string }[] = [
  { value: "mine", label: "Mine" },
  { value: "unassigned", label: "Unassigned" },
  { value: "all", label: "All" },
];
const PAGE_SIZE = 25;
/** New and changed tickets appear without a reload: the page is asked for again this often. */
export const QUEUE_POLL_MS = 4000;

export function Queue({ me }: { me: Me }) {
  const [scope, setScope] = useState<Scope>("all");
  const [status, setStatus] = useState<TicketStatus | "">("");
  const [cursors, setCursors] = useState<string[]>([]); // the cursors of the pages before this one
  const cursor = cursors.at(-1);

  const query = useQuery({
    queryKey: ["tickets", { scope, status, cursor, agent: me.agentId }],
    queryFn: () =>
      call(() =>
        api.GET("/api/v1/tickets", {
          params: {
            query: {
              limit: PAGE_SIZE,
              cursor,
              status: status ? [status] : undefined,
              assignee_id: scope === "mine" ? (me.agentId ?? undefined) : undefined,
              unassigned: scope === "unassigned" ? true : undefined,
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
    refetchInterval: QUEUE_POLL_MS,
  });

  function reset(change: () => void) {
    change();
    setCursors([]);
  }

  const page = query.data;
  return (
    <section aria-labelledby="queue-title">
      <h1 id="queue-title">Queue</h1>
      <div className="filters" role="group" aria-label="Filters">
        <div role="radiogroup" aria-label="Whose tickets" className="scopes">
          {SCOPES.map((option) => (
            <label key={option.value} className={scope === option.value ? "scope scope--on" : "scope"}>
              <input
                type="radio"
                name="scope"
                value={option.value}
                checked={scope === option.value}
                onChange={() => reset(() => setScope(option.value))}
              />
              {option.label}
            </label>
          ))}
        </div>
        <label htmlFor="status-filter">Status</label>
        <select
          id="status-filter"
          value={status}
          onChange={(event) => reset(() => setStatus(event.target.value as TicketStatus | ""))}
        >
          <option value="">Any</option>
          {STATUSES.map((value) => (
            <option key={value} value={value}>
              {STATUS_LABEL[value]}
            </option>
          ))}
        </select>
      </div>
      <ProblemBanner problem={query.error instanceof ProblemError ? query.error.problem : null} />
      {query.isPending ? (
        <p>Loading tickets…</p>
      ) : page && page.items.length === 0 ? (
        <p className="empty">No tickets here.</p>
      ) : (
        page && <TicketTable tickets={page.items} />
      )}
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <button
          type="button"
          disabled={!page?.next_cursor}
          onClick={() => page?.next_cursor && setCursors([...cursors, page.next_cursor])}
        >
          Older
        </button>
      </nav>
    </section>
  );
}

function TicketTable({ tickets }: { tickets: Ticket[] }) {
  return (
    <table className="queue">
      <caption className="visually-hidden">Tickets, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Number</th>
          <th scope="col">Subject</th>
          <th scope="col">Status</th>
          <th scope="col">Priority</th>
          <th scope="col">Opened</th>
        </tr>
      </thead>
      <tbody>
        {tickets.map((ticket) => (
          <tr key={ticket.id} data-ticket={ticket.number}>
            <td>{ticket.number}</td>
            <td>
              <Link to={`/tickets/${ticket.id}`}>{ticket.subject}</Link>
            </td>
            <td>
              <span className={`status status--${ticket.status}`}>{STATUS_LABEL[ticket.status]}</span>
            </td>
            <td>{ticket.priority ?? "—"}</td>
            <td>{formatTime(ticket.created_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { type Priority, type Ticket, type TicketStatus, api, call } from "../client";
import { type Column, Link, ProblemBanner, RowTable, usePages } from "../components";
import { moveFocus, useShortcuts } from "../keyboard";
import { STATUSES, STATUS_LABEL, formatTime } from "../labels";
import { ProblemError } from "../problems";
import type { Me } from "../session";
import { agentName, useAgents } from "./TicketPanels";

type Scope = "mine" | "unassigned" | "all";
const SCOPES: { value: Scope; label: string }[] = [
  { value: "mine", label: "Mine" },
  { value: "unassigned", label: "Unassigned" },
  { value: "all", label: "All" },
];
const PRIORITIES: Priority[] = ["P1", "P2", "P3", "P4"];
const PAGE_SIZE = 25;
/** New and changed tickets appear without a reload: every few seconds the queue asks only what
 * changed since the newest change it knows (`updated_since`, a few rows at most) and reloads the
 * page when something did. Conditional polling rather than server-sent events: it needs no new
 * endpoint or long-lived connection through the gateway, survives restarts and lost networks by
 * itself, and costs one indexed query per agent every 4 s. */
export const QUEUE_POLL_MS = 4000;
const ROW_LINKS = "table.queue tbody tr a";

/** The newest `updated_at` among tickets (ISO strings from the API compare as text). */
function newest(tickets: readonly Ticket[], known: string | null): string | null {
  return tickets.reduce<string | null>((max, ticket) => (max === null || ticket.updated_at > max ? ticket.updated_at : max), known);
}

export function Queue({ me }: { me: Me }) {
  const [scope, setScope] = useState<Scope>("all");
  const [status, setStatus] = useState<TicketStatus | "">("");
  const [priority, setPriority] = useState<Priority | "">("");
  const [organization, setOrganization] = useState("");
  const [assignee, setAssignee] = useState("");
  const { cursor, reset, pager } = usePages();
  const agents = useAgents();
  const organizations = useQuery({
    queryKey: ["organizations"],
    queryFn: () => call(() => api.GET("/api/v1/organizations", { params: { query: { limit: 200 } } })),
    staleTime: 60_000,
  });

  // The newest change known (`updated_at`), moved on by every answer: no state, no re-render.
  const seen = useRef<string | null>(null);
  const query = useQuery({
    queryKey: ["tickets", { scope, status, priority, organization, assignee, cursor, agent: me.agentId }],
    queryFn: async () => {
      const page = await call(() =>
        api.GET("/api/v1/tickets", {
          params: {
            query: {
              limit: PAGE_SIZE,
              cursor,
              status: status ? [status] : undefined,
              priority: priority ? [priority] : undefined,
              organization_id: organization || undefined,
              assignee_id: scope === "mine" ? (me.agentId ?? undefined) : assignee || undefined,
              unassigned: scope === "unassigned" ? true : undefined,
            },
          },
        }),
      );
      seen.current = newest(page.items, seen.current);
      return page;
    },
    placeholderData: keepPreviousData,
  });

  // The tabs' counts, with the filters of the list (one grouped query on the server).
  const counts = useQuery({
    queryKey: ["ticket-counts", { status, priority, organization, assignee }],
    queryFn: () =>
      call(() =>
        api.GET("/api/v1/tickets/counts", {
          params: {
            query: {
              status: status ? [status] : undefined,
              priority: priority ? [priority] : undefined,
              organization_id: organization || undefined,
              assignee_id: assignee || undefined,
            },
          },
        }),
      ),
    placeholderData: keepPreviousData,
  });
  const countOf: Record<Scope, number | null | undefined> = {
    mine: counts.data?.mine,
    unassigned: counts.data?.unassigned,
    all: counts.data?.total,
  };

  // What changed since the newest change seen: nothing (the usual answer) costs a few bytes.
  // Knowing no ticket yet, the newest one sets where to start from.
  const { refetch } = query;
  const refetchCounts = counts.refetch;
  useQuery({
    queryKey: ["tickets-changed-since"],
    queryFn: async () => {
      const since = seen.current;
      const changes = await call(() =>
        api.GET("/api/v1/tickets", { params: { query: since ? { updated_since: since, limit: 50 } : { limit: 1 } } }),
      );
      const changed = changes.items.filter((ticket) => since === null || ticket.updated_at > since);
      if (changed.length > 0) {
        seen.current = newest(changed, since);
        await Promise.all([refetch(), refetchCounts()]);
      }
      return seen.current;
    },
    enabled: query.isSuccess,
    refetchInterval: QUEUE_POLL_MS,
  });

  useShortcuts({ j: () => moveFocus(ROW_LINKS, 1), k: () => moveFocus(ROW_LINKS, -1) });

  function change<T>(set: (value: T) => void): (value: T) => void {
    return (value) => {
      set(value);
      reset();
    };
  }

  const agentList = agents.data?.items;
  const columns: Column<Ticket>[] = [
    { header: "Number", cell: (ticket) => ticket.number },
    { header: "Subject", cell: (ticket) => <Link to={`/tickets/${ticket.id}`}>{ticket.subject}</Link> },
    { header: "Status", cell: (ticket) => <span className={`status status--${ticket.status}`}>{STATUS_LABEL[ticket.status]}</span> },
    { header: "Priority", cell: (ticket) => <span className={`priority priority--${ticket.priority ?? "none"}`}>{ticket.priority ?? "—"}</span> },
    { header: "Consultant", cell: (ticket) => agentName(agentList, ticket.assignee_id) },
    { header: "Updated", cell: (ticket) => formatTime(ticket.updated_at) },
    { header: "Opened", cell: (ticket) => formatTime(ticket.created_at) },
  ];
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
                disabled={option.value === "mine" && !me.agentId}
                onChange={() => change(setScope)(option.value)}
              />
              {option.label}
              {countOf[option.value] != null && (
                <span className="count" data-count={option.value}>
                  {countOf[option.value]}
                </span>
              )}
            </label>
          ))}
        </div>
        <Select id="status-filter" label="Status" value={status} onChange={change(setStatus)} options={STATUSES.map((value) => [value, STATUS_LABEL[value]])} />
        <Select id="priority-filter" label="Priority" value={priority} onChange={change(setPriority)} options={PRIORITIES.map((value) => [value, value])} />
        <Select
          id="organization-filter"
          label="Organization"
          value={organization}
          onChange={change(setOrganization)}
          options={(organizations.data?.items ?? []).map((org) => [org.id, org.name])}
        />
        {scope === "all" && (
          <Select id="assignee-filter" label="Consultant" value={assignee} onChange={change(setAssignee)} options={(agentList ?? []).map((agent) => [agent.id, agent.name])} />
        )}
      </div>
      <ProblemBanner problem={query.error instanceof ProblemError ? query.error.problem : null} />
      {query.isPending ? (
        <p>Loading tickets…</p>
      ) : page && page.items.length === 0 ? (
        <p className="empty">No tickets here.</p>
      ) : (
        page && (
          <>
            <p className="hint" aria-live="polite">
              {page.items.length} ticket{page.items.length === 1 ? "" : "s"} on this page{page.next_cursor ? ", more on the next" : ""}.
            </p>
            <RowTable rows={page.items} caption="Tickets, newest first" columns={columns} rowProps={(ticket) => ({ "data-ticket": ticket.number, className: `row--${ticket.priority ?? "none"}` })} />
          </>
        )
      )}
      {pager(page?.next_cursor)}
      <p className="hint keys">
        Keyboard: <kbd>j</kbd> / <kbd>k</kbd> next / previous ticket, <kbd>Enter</kbd> open it; on a ticket <kbd>r</kbd> reply,{" "}
        <kbd>c</kbd> close, <kbd>u</kbd> back to the queue.
      </p>
    </section>
  );
}

function Select<T extends string>({
  id,
  label,
  value,
  onChange,
  options,
}: {
  id: string;
  label: string;
  value: T | "";
  onChange: (value: T | "") => void;
  options: [T, string][];
}) {
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <select id={id} value={value} onChange={(event) => onChange(event.target.value as T | "")}>
        <option value="">Any</option>
        {options.map(([option, text]) => (
          <option key={option} value={option}>
            {text}
          </option>
        ))}
      </select>
    </>
  );
}

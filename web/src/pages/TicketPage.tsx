import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { type Message, type Ticket, type TicketStatus, type Visibility, api, call } from "../client";
import { Attachments, Link, ProblemBanner, TextField } from "../components";
import { useDraft } from "../drafts";
import { useShortcuts } from "../keyboard";
import { navigate } from "../router";
import type { Me } from "../session";
import { AppointmentsAndCalls, Assignee, AuditHistory, FeedbackPanel, ReviewFlags, SlaTimers, TimeEntries, TriageDecision } from "./TicketPanels";
import { STATUS_LABEL, allowedTargets, formatTime } from "../labels";
import { ProblemError } from "../problems";

const MESSAGE_PAGE = 100;

async function allMessages(ticketId: string): Promise<Message[]> {
  const messages: Message[] = [];
  let cursor: string | undefined;
  do {
    const page = await call(() =>
      api.GET("/api/v1/tickets/{ticket_id}/messages", {
        params: { path: { ticket_id: ticketId }, query: { limit: MESSAGE_PAGE, cursor } },
      }),
    );
    messages.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return messages;
}

function problemOf(error: unknown) {
  return error instanceof ProblemError ? error.problem : null;
}

export function TicketPage({ ticketId, me }: { ticketId: string; me: Me }) {
  const ticket = useQuery({
    queryKey: ["ticket", ticketId],
    queryFn: () => call(() => api.GET("/api/v1/tickets/{ticket_id}", { params: { path: { ticket_id: ticketId } } })),
    refetchInterval: 15_000,
  });
  const messages = useQuery({
    queryKey: ["ticket", ticketId, "messages"],
    queryFn: () => allMessages(ticketId),
    refetchInterval: 10_000,
  });
  useShortcuts({
    r: () => document.getElementById("message-body")?.focus(),
    c: () => document.querySelector<HTMLButtonElement>('.status-changer button[data-target="closed"]')?.click(),
    u: () => navigate("/"),
  });
  const attachments = useQuery({
    queryKey: ["ticket", ticketId, "attachments"],
    queryFn: () => call(() => api.GET("/api/v1/tickets/{ticket_id}/attachments", { params: { path: { ticket_id: ticketId } } })),
  });

  if (ticket.isPending) return <p>Loading the ticket…</p>;
  // A failed refresh keeps the page (and what is being written) as it was; the banner says why.
  if (!ticket.data) {
    return (
      <section>
        <p>
          <Link to="/">Back to the queue</Link>
        </p>
        <ProblemBanner problem={problemOf(ticket.error)} />
      </section>
    );
  }
  const data = ticket.data;
  return (
    <article className="ticket" aria-labelledby="ticket-title">
      <p>
        <Link to="/">Back to the queue</Link>
      </p>
      <header>
        <p className="ticket-number">{data.number}</p>
        <h1 id="ticket-title">{data.subject}</h1>
        <p className="ticket-meta">
          <span className={`status status--${data.status}`}>{STATUS_LABEL[data.status]}</span> · urgency {data.urgency}
          {data.priority ? ` · priority ${data.priority}` : ""} · opened {formatTime(data.created_at)} by{" "}
          {data.channel}
        </p>
      </header>
      <StatusChanger ticket={data} />
      <div className="ticket-columns">
        <div className="ticket-main">
          <ReviewFlags ticketId={data.id} />
          <section aria-labelledby="conversation-title">
            <h2 id="conversation-title">Conversation</h2>
            <div className="message message--public message--description">
              <p className="message-label">Description from the customer</p>
              <p className="message-body">{data.description}</p>
            </div>
            <ProblemBanner problem={problemOf(messages.error)} />
            <ol className="conversation">
              {(messages.data ?? []).map((message) => (
                <MessageItem key={message.id} message={message} />
              ))}
            </ol>
          </section>
          <Attachments items={attachments.data ?? []} area="console" />
          <Composer ticketId={data.id} />
        </div>
        <aside className="ticket-side" aria-label="Ticket details">
          <Assignee ticket={data} myAgentId={me.agentId} />
          <SlaTimers ticketId={data.id} />
          <TriageDecision ticketId={data.id} />
          <AppointmentsAndCalls ticketId={data.id} />
          <TimeEntries ticketId={data.id} />
          <FeedbackPanel ticket={data} />
          <AuditHistory ticketId={data.id} />
        </aside>
      </div>
    </article>
  );
}

function MessageItem({ message }: { message: Message }) {
  const internal = message.visibility === "internal";
  const who = message.author_kind === "customer" ? "Customer" : message.author_kind === "agent" ? "Agent" : "System";
  return (
    <li className={internal ? "message message--internal" : "message message--public"} data-visibility={message.visibility}>
      <p className="message-label">
        {internal ? (
          <strong className="badge badge--internal">Internal note · not visible to the customer</strong>
        ) : (
          <strong className="badge badge--public">{message.author_kind === "customer" ? "From the customer" : "Public reply · sent to the customer"}</strong>
        )}{" "}
        <span className="message-meta">
          {who} · {formatTime(message.created_at)}
        </span>
      </p>
      <p className="message-body">{message.body}</p>
    </li>
  );
}

function Composer({ ticketId }: { ticketId: string }) {
  const [body, setBody, clearBody] = useDraft(`reply:${ticketId}`);
  const [sent, setSent] = useState<string | null>(null);
  const client = useQueryClient();
  const send = useMutation({
    mutationFn: (visibility: Visibility) =>
      call(() =>
        api.POST("/api/v1/tickets/{ticket_id}/messages", {
          params: { path: { ticket_id: ticketId } },
          body: { body, visibility },
        }),
      ),
    onSuccess: (_message, visibility) => {
      clearBody();
      setSent(visibility === "internal" ? "Internal note added." : "Reply sent to the customer.");
      void client.invalidateQueries({ queryKey: ["ticket", ticketId] });
    },
  });
  const problem = problemOf(send.error);

  function post(visibility: Visibility) {
    setSent(null);
    send.mutate(visibility);
  }

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    post("public");
  }

  return (
    <form className="composer" onSubmit={submit} aria-labelledby="composer-title">
      <h2 id="composer-title">Write</h2>
      <p className="hint">
        <kbd>r</kbd> writes here, <kbd>c</kbd> closes the ticket, <kbd>u</kbd> goes back to the queue.
      </p>
      <TextField id="message-body" label="Message" rows={6} value={body} onChange={setBody} problem={problem} field="body" />
      <ProblemBanner problem={problem} shown={["body"]} />
      {sent && (
        <p className="notice" role="status">
          {sent}
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={send.isPending}>
          Send reply to customer
        </button>
        <button
          type="button"
          className="secondary internal"
          disabled={send.isPending}
          onClick={() => post("internal")}
        >
          Add internal note
        </button>
      </div>
    </form>
  );
}

function StatusChanger({ ticket }: { ticket: Ticket }) {
  const client = useQueryClient();
  const change = useMutation({
    mutationFn: (status: TicketStatus) =>
      call(() =>
        api.POST("/api/v1/tickets/{ticket_id}/status", {
          params: { path: { ticket_id: ticket.id } },
          body: { status },
        }),
      ),
    onSuccess: (updated) => {
      client.setQueryData(["ticket", ticket.id], updated);
      void client.invalidateQueries({ queryKey: ["tickets"] });
      // the SLA clocks, the history and the rest of the page follow a status change
      void client.invalidateQueries({ queryKey: ["ticket", ticket.id], predicate: (q) => q.queryKey.length > 2 });
    },
  });
  const targets = allowedTargets(ticket.status);
  return (
    <div className="status-changer" role="group" aria-label="Change status">
      {targets.map((target) => (
        <button
          key={target}
          type="button"
          className="secondary"
          data-target={target}
          aria-keyshortcuts={target === "closed" ? "c" : undefined}
          disabled={change.isPending}
          onClick={() => change.mutate(target)}
        >
          {target === "closed" ? "Close" : target === "open" && ticket.status === "closed" ? "Reopen" : `Mark ${STATUS_LABEL[target].toLowerCase()}`}
        </button>
      ))}
      <ProblemBanner problem={problemOf(change.error)} />
    </div>
  );
}

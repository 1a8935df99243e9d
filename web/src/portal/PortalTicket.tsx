import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { type Appointment, type Message, type SlotList, type Ticket, portalApi, portalCall } from "../client";
import { Attachments, Link, ProblemBanner, TextField } from "../components";
import { useDraft } from "../drafts";
import { formatTime } from "../labels";
import { type Problem, ProblemError } from "../problems";
import { CUSTOMER_STATUS } from "./words";

function problemOf(error: unknown): Problem | null {
  return error instanceof ProblemError ? error.problem : null;
}

async function publicMessages(ticketId: string): Promise<Message[]> {
  const messages: Message[] = [];
  let cursor: string | undefined;
  do {
    const page = await portalCall(() =>
      portalApi.GET("/api/v1/tickets/{ticket_id}/messages", { params: { path: { ticket_id: ticketId }, query: { limit: 100, cursor } } }),
    );
    messages.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return messages;
}

export function PortalTicket({ ticketId }: { ticketId: string }) {
  const path = { params: { path: { ticket_id: ticketId } } };
  const ticket = useQuery({
    queryKey: ["portal", "ticket", ticketId],
    queryFn: () => portalCall(() => portalApi.GET("/api/v1/tickets/{ticket_id}", path)),
    refetchInterval: 10_000,
  });
  const messages = useQuery({
    queryKey: ["portal", "ticket", ticketId, "messages"],
    queryFn: () => publicMessages(ticketId),
    refetchInterval: 5_000,
  });
  const appointments = useQuery({
    queryKey: ["portal", "ticket", ticketId, "appointments"],
    queryFn: () => portalCall(() => portalApi.GET("/api/v1/tickets/{ticket_id}/appointments", path)),
  });
  const attachments = useQuery({
    queryKey: ["portal", "ticket", ticketId, "attachments"],
    queryFn: () => portalCall(() => portalApi.GET("/api/v1/tickets/{ticket_id}/attachments", path)),
  });
  const assigned = Boolean(ticket.data?.assignee_id);
  // The consultant's name and free times come together (a customer may not read agents).
  const slots = useQuery({
    queryKey: ["portal", "ticket", ticketId, "slots"],
    queryFn: () => portalCall(() => portalApi.GET("/api/v1/tickets/{ticket_id}/appointment-slots", path)),
    enabled: assigned,
  });

  if (ticket.isPending) return <p>Loading your ticket…</p>;
  if (ticket.isError || !ticket.data) {
    return (
      <section>
        <p>
          <Link to="/portal/">Back to your tickets</Link>
        </p>
        <ProblemBanner problem={problemOf(ticket.error)} />
      </section>
    );
  }
  const data = ticket.data;
  const booked = (appointments.data ?? []).filter((a) => a.status === "booked");
  const next = booked.filter((a) => new Date(a.ends_at) > new Date()).sort((a, b) => a.starts_at.localeCompare(b.starts_at))[0];
  return (
    <article className="ticket" aria-labelledby="ticket-title">
      <p>
        <Link to="/portal/">Back to your tickets</Link>
      </p>
      <header>
        <p className="ticket-number">{data.number}</p>
        <h1 id="ticket-title">{data.subject}</h1>
        <dl className="facts">
          <dt>State</dt>
          <dd>
            <span className={`status status--${data.status}`}>{CUSTOMER_STATUS[data.status]}</span>
          </dd>
          <dt>Consultant</dt>
          <dd>{assigned ? (slots.data?.agent_name ?? "Assigned") : "Not assigned yet (you will get an email)"}</dd>
          <dt>Next appointment</dt>
          <dd>{next ? `${formatTime(next.starts_at)} – ${formatTime(next.ends_at)}` : "None booked"}</dd>
          <dt>Opened</dt>
          <dd>{formatTime(data.created_at)}</dd>
        </dl>
      </header>
      <section aria-labelledby="conversation-title">
        <h2 id="conversation-title">Conversation</h2>
        <div className="message message--public message--description">
          <p className="message-label">
            <strong className="badge badge--public">You wrote</strong>
          </p>
          <p className="message-body">{data.description}</p>
        </div>
        <ProblemBanner problem={problemOf(messages.error)} />
        <ol className="conversation">
          {(messages.data ?? []).map((message) => (
            <li key={message.id} className="message message--public" data-author={message.author_kind}>
              <p className="message-label">
                <strong className="badge badge--public">{message.author_kind === "customer" ? "You" : message.author_kind === "agent" ? "Support" : "Update"}</strong>{" "}
                <span className="message-meta">{formatTime(message.created_at)}</span>
              </p>
              <p className="message-body">{message.body}</p>
            </li>
          ))}
        </ol>
      </section>
      <Attachments items={attachments.data ?? []} area="portal" />
      <Reply ticket={data} />
      <Appointments ticket={data} booked={booked} slots={slots.data} slotsProblem={problemOf(slots.error)} />
      <FeedbackPart ticket={data} />
    </article>
  );
}

function Reply({ ticket }: { ticket: Ticket }) {
  const [body, setBody, clear] = useDraft(`portal-reply:${ticket.id}`);
  const [sent, setSent] = useState(false);
  const client = useQueryClient();
  const send = useMutation({
    mutationFn: () =>
      portalCall(() =>
        portalApi.POST("/api/v1/tickets/{ticket_id}/messages", { params: { path: { ticket_id: ticket.id } }, body: { body, visibility: "public" } }),
      ),
    onSuccess: () => {
      clear();
      setSent(true);
      void client.invalidateQueries({ queryKey: ["portal", "ticket", ticket.id] });
    },
  });
  const problem = problemOf(send.error);
  function submit(event: FormEvent) {
    event.preventDefault();
    setSent(false);
    send.mutate();
  }
  return (
    <form className="composer" onSubmit={submit} aria-labelledby="reply-title">
      <h2 id="reply-title">Write to us</h2>
      {ticket.status === "closed" && <p className="hint">This ticket is closed; writing to us opens it again.</p>}
      <TextField id="portal-reply" label="Your message" rows={5} value={body} onChange={setBody} problem={problem} field="body" />
      <ProblemBanner problem={problem} shown={["body"]} />
      {sent && (
        <p className="notice" role="status">
          Sent. Your consultant is told.
        </p>
      )}
      <div className="actions">
        <button type="submit" disabled={send.isPending}>
          Send
        </button>
      </div>
    </form>
  );
}

function Appointments({
  ticket,
  booked,
  slots,
  slotsProblem,
}: {
  ticket: Ticket;
  booked: Appointment[];
  slots: SlotList | undefined;
  slotsProblem: Problem | null;
}) {
  const [moving, setMoving] = useState<string | null>(null); // the appointment being rescheduled
  const client = useQueryClient();
  const done = () => {
    setMoving(null);
    void client.invalidateQueries({ queryKey: ["portal", "ticket", ticket.id] });
  };
  const book = useMutation({
    mutationFn: (startsAt: string) =>
      moving
        ? portalCall(() =>
            portalApi.POST("/api/v1/appointments/{appointment_id}/reschedule", { params: { path: { appointment_id: moving } }, body: { starts_at: startsAt } }),
          )
        : portalCall(() =>
            portalApi.POST("/api/v1/tickets/{ticket_id}/appointments", {
              params: { path: { ticket_id: ticket.id } },
              body: { starts_at: startsAt, duration_minutes: slots?.duration_minutes ?? 60 },
            }),
          ),
    onSuccess: done,
  });
  const cancel = useMutation({
    mutationFn: (id: string) =>
      portalCall(() => portalApi.POST("/api/v1/appointments/{appointment_id}/cancel", { params: { path: { appointment_id: id } }, body: { reason: "Cancelled in the portal" } })),
    onSuccess: done,
  });
  return (
    <section aria-labelledby="appointments-title" className="panel">
      <h2 id="appointments-title">Appointments</h2>
      {booked.length > 0 && (
        <ul className="plain">
          {booked.map((appointment) => (
            <li key={appointment.id}>
              {formatTime(appointment.starts_at)} – {formatTime(appointment.ends_at)}{" "}
              <button type="button" className="secondary" onClick={() => setMoving(appointment.id)}>
                Reschedule
              </button>{" "}
              <button type="button" className="secondary" disabled={cancel.isPending} onClick={() => cancel.mutate(appointment.id)}>
                Cancel
              </button>
            </li>
          ))}
        </ul>
      )}
      <ProblemBanner problem={problemOf(cancel.error) ?? problemOf(book.error)} />
      {!ticket.assignee_id ? (
        <p className="hint">Booking opens once a consultant is assigned to this ticket (you will get an email).</p>
      ) : slotsProblem ? (
        <ProblemBanner problem={slotsProblem} />
      ) : !slots ? (
        <p>Loading free times…</p>
      ) : slots.not_bookable_reason ? (
        <p className="sla-rule">
          <strong>Why you cannot book yet:</strong> {slots.not_bookable_reason}
        </p>
      ) : (
        <div>
          <h3>{moving ? "Pick a new time" : `Book time with ${slots.agent_name}`}</h3>
          {slots.note && <p className="hint">{slots.note}</p>}
          <p className="hint">
            Times in {slots.timezone}. {slots.policy}
          </p>
          {slots.slots.length === 0 ? (
            <p>No free time in the next two weeks{slots.external_scheduling_url ? "; try the consultant's booking page." : "."}</p>
          ) : (
            <SlotPicker slots={slots} busy={book.isPending} onPick={(startsAt) => book.mutate(startsAt)} />
          )}
          {moving && (
            <button type="button" className="secondary" onClick={() => setMoving(null)}>
              Keep the current time
            </button>
          )}
        </div>
      )}
    </section>
  );
}

/** The free times, one day at a time (a day picked from a list, then a time of that day), in
 * the timezone the API offered them in (the customer's organization's), as the page says. */
function SlotPicker({ slots, busy, onPick }: { slots: SlotList; busy: boolean; onPick: (startsAt: string) => void }) {
  const DAY = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long", timeZone: slots.timezone });
  const HOUR = new Intl.DateTimeFormat(undefined, { timeStyle: "short", timeZone: slots.timezone });
  const days = [...new Set(slots.slots.map((slot) => DAY.format(new Date(slot.starts_at))))];
  const [day, setDay] = useState(days[0] ?? "");
  const shown = days.includes(day) ? day : (days[0] ?? "");
  return (
    <>
      <label htmlFor="slot-day">Day</label>{" "}
      <select id="slot-day" value={shown} onChange={(event) => setDay(event.target.value)}>
        {days.map((option) => (
          <option key={option}>{option}</option>
        ))}
      </select>
      <ul className="slots" aria-label={`Free times on ${shown}`}>
        {slots.slots
          .filter((slot) => DAY.format(new Date(slot.starts_at)) === shown)
          .map((slot) => (
            <li key={slot.starts_at}>
              <button type="button" className="secondary" disabled={busy} data-starts={slot.starts_at} onClick={() => onPick(slot.starts_at)}>
                {HOUR.format(new Date(slot.starts_at))}
              </button>
            </li>
          ))}
      </ul>
    </>
  );
}

function FeedbackPart({ ticket }: { ticket: Ticket }) {
  const feedback = useQuery({
    queryKey: ["portal", "ticket", ticket.id, "feedback"],
    queryFn: () => portalCall(() => portalApi.GET("/api/v1/tickets/{ticket_id}/feedback", { params: { path: { ticket_id: ticket.id } } })),
    enabled: ticket.status === "closed",
    retry: false,
  });
  if (ticket.status !== "closed") return null;
  return (
    <section aria-labelledby="feedback-title" className="panel">
      <h2 id="feedback-title">Your feedback</h2>
      {feedback.data ? (
        <p>
          You rated this ticket {feedback.data.rating === "happy" ? "🙂 happy" : "🙁 not happy"}
          {feedback.data.comment ? `: “${feedback.data.comment}”` : "."}
        </p>
      ) : (
        <p>
          Tell us how we did with the smiley links in the mail that said this ticket was closed (they need no sign-in).
        </p>
      )}
    </section>
  );
}

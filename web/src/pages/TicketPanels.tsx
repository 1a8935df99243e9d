// The side of a ticket's page: who has it, triage's decision, SLA timers, time, appointments and
// call tasks, feedback, mail flagged for review, and the audit history.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { type Agent, type Decision, type Ticket, type TimeEntry, type Timer, api, call, triageApi } from "../client";
import { ProblemBanner, TextField } from "../components";
import { countdown, formatTime } from "../labels";
import { useNow } from "../now";
import { type Problem, ProblemError } from "../problems";

function problemOf(error: unknown): Problem | null {
  return error instanceof ProblemError ? error.problem : null;
}

const path = (ticketId: string) => ({ params: { path: { ticket_id: ticketId } } });

/** Every active agent (one page of up to 200: the roster of a consultancy). */
export function useAgents() {
  return useQuery({
    queryKey: ["agents", "active"],
    queryFn: () => call(() => api.GET("/api/v1/agents", { params: { query: { active: true, limit: 200 } } })),
    staleTime: 60_000,
  });
}

export function agentName(agents: Agent[] | undefined, id: string | null | undefined): string {
  if (!id) return "Unassigned";
  return agents?.find((agent) => agent.id === id)?.name ?? "Another agent";
}

export function Assignee({ ticket, myAgentId }: { ticket: Ticket; myAgentId: string | null }) {
  const agents = useAgents();
  const client = useQueryClient();
  const assign = useMutation({
    mutationFn: (assigneeId: string | null) =>
      call(() => api.PATCH("/api/v1/tickets/{ticket_id}", { ...path(ticket.id), body: { assignee_id: assigneeId } })),
    onSuccess: (updated) => {
      client.setQueryData(["ticket", ticket.id], updated);
      void client.invalidateQueries({ queryKey: ["tickets"] });
      void client.invalidateQueries({ queryKey: ["ticket", ticket.id, "audit"] });
    },
  });
  return (
    <section className="panel" aria-labelledby="assignee-title">
      <h2 id="assignee-title">Consultant</h2>
      <label htmlFor="assignee">Assigned to</label>
      <select
        id="assignee"
        value={ticket.assignee_id ?? ""}
        disabled={assign.isPending}
        onChange={(event) => assign.mutate(event.target.value || null)}
      >
        <option value="">Unassigned</option>
        {(agents.data?.items ?? []).map((agent) => (
          <option key={agent.id} value={agent.id}>
            {agent.name}
          </option>
        ))}
      </select>{" "}
      {myAgentId && ticket.assignee_id !== myAgentId && (
        <button type="button" className="secondary" disabled={assign.isPending} onClick={() => assign.mutate(myAgentId)}>
          Assign to me
        </button>
      )}
      <ProblemBanner problem={problemOf(assign.error) ?? problemOf(agents.error)} />
    </section>
  );
}

const TIMER_LABEL: Record<string, string> = { first_response: "First response", resolution: "Resolution" };

function TimerLine({ timer, now }: { timer: Timer; now: number }) {
  const label = TIMER_LABEL[timer.target] ?? timer.target;
  let text: string;
  let level: string;
  if (timer.state === "paused") {
    text = `paused while waiting on the customer (since ${formatTime(timer.paused_at ?? timer.started_at)}; ${Math.round(timer.remaining_business_minutes)} business min left)`;
    level = "paused";
  } else if (timer.state === "met" || timer.state === "met_late") {
    text = `met ${formatTime(timer.met_at ?? "")}${timer.state === "met_late" ? " (late)" : ""}`;
    level = timer.state === "met_late" ? "breached" : "done";
  } else if (timer.state === "stopped" || !timer.due_at) {
    text = "stopped";
    level = "done";
  } else {
    const left = countdown(timer.due_at, now);
    text = `${left.text} (${formatTime(timer.due_at)})`;
    level = timer.breached ? "breached" : left.level;
  }
  return (
    <li className={`timer timer--${level}`} data-timer={timer.target}>
      <strong>{label}</strong>: {text}
    </li>
  );
}

export function SlaTimers({ ticketId }: { ticketId: string }) {
  const now = useNow();
  const sla = useQuery({
    queryKey: ["ticket", ticketId, "sla"],
    queryFn: () => call(() => triageApi.GET("/api/v1/triage/tickets/{ticket_id}/sla", path(ticketId))),
    // triage pauses and restarts clocks a moment after a status change (an event away)
    refetchInterval: 10_000,
    retry: false,
  });
  return (
    <section className="panel" aria-labelledby="sla-title">
      <h2 id="sla-title">SLA</h2>
      {sla.error ? (
        <p className="hint">{sla.error instanceof ProblemError && sla.error.problem.status === 404 ? "Not triaged yet." : <ProblemBanner problem={problemOf(sla.error)} />}</p>
      ) : !sla.data ? (
        <p>Loading…</p>
      ) : sla.data.timers.length === 0 ? (
        <p className="hint">No SLA timers for this ticket.</p>
      ) : (
        <ul className="plain">
          {sla.data.timers.map((timer) => (
            <TimerLine key={timer.target} timer={timer} now={now} />
          ))}
        </ul>
      )}
    </section>
  );
}

function Breakdown({ value }: { value: unknown }) {
  if (value === null || typeof value !== "object") return <>{String(value)}</>;
  return (
    <dl className="breakdown">
      {Object.entries(value as Record<string, unknown>).map(([key, inner]) => (
        <div key={key}>
          <dt>{key.replace(/_/g, " ")}</dt>
          <dd>
            <Breakdown value={inner} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

export function TriageDecision({ ticketId }: { ticketId: string }) {
  const decisions = useQuery({
    queryKey: ["ticket", ticketId, "decisions"],
    queryFn: () => call(() => triageApi.GET("/api/v1/triage/tickets/{ticket_id}/decisions", path(ticketId))),
    refetchInterval: 30_000,
  });
  const latest: Decision | undefined = decisions.data?.items.at(-1);
  return (
    <section className="panel" aria-labelledby="triage-title">
      <h2 id="triage-title">Triage</h2>
      <ProblemBanner problem={problemOf(decisions.error)} />
      {!latest ? (
        <p className="hint">{decisions.isPending ? "Loading…" : "No decision yet."}</p>
      ) : (
        <>
          <p>
            Priority <strong>{latest.priority}</strong> ({latest.trigger}, {formatTime(latest.created_at)})
            {latest.call_customer ? " · call the customer" : ""}
          </p>
          <details>
            <summary>Why: the breakdown</summary>
            <Breakdown value={latest.breakdown} />
          </details>
          {(decisions.data?.items.length ?? 0) > 1 && <p className="hint">{decisions.data?.items.length} decisions so far.</p>}
        </>
      )}
    </section>
  );
}

function TimeEntryRow({ entry, agents }: { entry: TimeEntry; agents: Agent[] | undefined }) {
  const [editing, setEditing] = useState(false);
  const [minutes, setMinutes] = useState(String(entry.minutes));
  const [description, setDescription] = useState(entry.description);
  const [confirming, setConfirming] = useState(false);
  const client = useQueryClient();
  const refresh = () => void client.invalidateQueries({ queryKey: ["ticket", entry.ticket_id, "time"] });
  const save = useMutation({
    mutationFn: () =>
      call(() =>
        api.PATCH("/api/v1/time-entries/{entry_id}", {
          params: { path: { entry_id: entry.id } },
          body: { minutes: Number(minutes), description },
        }),
      ),
    onSuccess: () => {
      setEditing(false);
      refresh();
    },
  });
  const remove = useMutation({
    mutationFn: () => call(() => api.DELETE("/api/v1/time-entries/{entry_id}", { params: { path: { entry_id: entry.id } } })),
    onSuccess: refresh,
  });
  const problem = problemOf(save.error) ?? problemOf(remove.error);
  if (editing) {
    return (
      <li>
        <form
          className="inline-form"
          onSubmit={(event) => {
            event.preventDefault();
            save.mutate();
          }}
        >
          <TextField id={`minutes-${entry.id}`} label="Minutes" type="number" value={minutes} onChange={setMinutes} problem={problem} field="minutes" />
          <TextField id={`what-${entry.id}`} label="What" value={description} onChange={setDescription} problem={problem} field="description" />
          <button type="submit" disabled={save.isPending}>
            Save
          </button>{" "}
          <button type="button" className="secondary" onClick={() => setEditing(false)}>
            Keep as it was
          </button>
          <ProblemBanner problem={problem} shown={["minutes", "description"]} />
        </form>
      </li>
    );
  }
  return (
    <li data-time-entry={entry.id}>
      <strong>{entry.minutes} min</strong> {entry.description || "(no description)"} · {agentName(agents, entry.agent_id)} ·{" "}
      {formatTime(entry.started_at)}
      {entry.billable ? "" : " · not billable"} {entry.source !== "manual" ? `· from ${entry.source}` : ""}{" "}
      <button type="button" className="link" onClick={() => setEditing(true)}>
        Edit
      </button>{" "}
      {confirming ? (
        <button type="button" className="link danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
          Confirm delete
        </button>
      ) : (
        <button type="button" className="link" onClick={() => setConfirming(true)}>
          Delete
        </button>
      )}
      <ProblemBanner problem={problem} />
    </li>
  );
}

export function TimeEntries({ ticketId }: { ticketId: string }) {
  const agents = useAgents();
  const entries = useQuery({
    queryKey: ["ticket", ticketId, "time"],
    queryFn: () => call(() => api.GET("/api/v1/tickets/{ticket_id}/time-entries", { params: { path: { ticket_id: ticketId }, query: { limit: 200 } } })),
  });
  const [minutes, setMinutes] = useState("");
  const [description, setDescription] = useState("");
  const [billable, setBillable] = useState(true);
  const client = useQueryClient();
  const log = useMutation({
    mutationFn: () =>
      call(() =>
        api.POST("/api/v1/tickets/{ticket_id}/time-entries", { ...path(ticketId), body: { minutes: Number(minutes), description, billable, source: "manual" } }),
      ),
    onSuccess: () => {
      setMinutes("");
      setDescription("");
      void client.invalidateQueries({ queryKey: ["ticket", ticketId, "time"] });
    },
  });
  const items = entries.data?.items ?? [];
  const total = items.reduce((sum, entry) => sum + entry.minutes, 0);
  function submit(event: FormEvent) {
    event.preventDefault();
    log.mutate();
  }
  const problem = problemOf(log.error);
  return (
    <section className="panel" aria-labelledby="time-title">
      <h2 id="time-title">Time ({total} min)</h2>
      <ProblemBanner problem={problemOf(entries.error)} />
      <ul className="plain">
        {items.map((entry) => (
          <TimeEntryRow key={entry.id} entry={entry} agents={agents.data?.items} />
        ))}
      </ul>
      <form className="inline-form" onSubmit={submit} aria-label="Log time">
        <TextField id="log-minutes" label="Minutes worked" type="number" value={minutes} onChange={setMinutes} problem={problem} field="minutes" />
        <TextField id="log-description" label="What was done" value={description} onChange={setDescription} problem={problem} field="description" />
        <label className="check">
          <input type="checkbox" checked={billable} onChange={(event) => setBillable(event.target.checked)} /> Billable
        </label>
        <button type="submit" disabled={log.isPending}>
          Log time
        </button>
        <ProblemBanner problem={problem} shown={["minutes", "description"]} />
      </form>
    </section>
  );
}

export function AppointmentsAndCalls({ ticketId }: { ticketId: string }) {
  const client = useQueryClient();
  const appointments = useQuery({
    queryKey: ["ticket", ticketId, "appointments"],
    queryFn: () => call(() => api.GET("/api/v1/tickets/{ticket_id}/appointments", path(ticketId))),
  });
  // The API lists call tasks by agent and status only: the open ones, this ticket's picked out.
  const calls = useQuery({
    queryKey: ["call-tasks", "open"],
    queryFn: () => call(() => api.GET("/api/v1/call-tasks", { params: { query: { status: "open" } } })),
    refetchInterval: 30_000,
  });
  const [outcome, setOutcome] = useState("");
  const [minutes, setMinutes] = useState("10");
  const done = useMutation({
    mutationFn: (taskId: string) =>
      call(() =>
        api.POST("/api/v1/call-tasks/{task_id}/complete", {
          params: { path: { task_id: taskId } },
          body: { outcome, minutes: Number(minutes), billable: true },
        }),
      ),
    onSuccess: () => {
      setOutcome("");
      void client.invalidateQueries({ queryKey: ["call-tasks"] });
      void client.invalidateQueries({ queryKey: ["ticket", ticketId] });
    },
  });
  const cancel = useMutation({
    mutationFn: (id: string) =>
      call(() => api.POST("/api/v1/appointments/{appointment_id}/cancel", { params: { path: { appointment_id: id } }, body: { reason: "Cancelled by the consultant" } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["ticket", ticketId, "appointments"] }),
  });
  const mine = (calls.data ?? []).filter((task) => task.ticket_id === ticketId);
  const list = appointments.data ?? [];
  return (
    <section className="panel" aria-labelledby="appointments-title">
      <h2 id="appointments-title">Appointments and calls</h2>
      <ProblemBanner problem={problemOf(appointments.error) ?? problemOf(cancel.error)} />
      {list.length === 0 ? (
        <p className="hint">No appointments.</p>
      ) : (
        <ul className="plain">
          {list.map((appointment) => (
            <li key={appointment.id}>
              {formatTime(appointment.starts_at)} – {formatTime(appointment.ends_at)} · {appointment.status}
              {appointment.late_cancellation ? " (late cancellation)" : ""}
              {appointment.cancel_reason ? `: ${appointment.cancel_reason}` : ""}{" "}
              {appointment.status === "booked" && (
                <button type="button" className="link" disabled={cancel.isPending} onClick={() => cancel.mutate(appointment.id)}>
                  Cancel
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {mine.map((task) => (
        <form
          key={task.id}
          className="inline-form call-task"
          onSubmit={(event) => {
            event.preventDefault();
            done.mutate(task.id);
          }}
        >
          <p>
            <strong>Call the customer</strong> (task since {formatTime(task.created_at)})
          </p>
          <TextField id={`outcome-${task.id}`} label="Outcome of the call" value={outcome} onChange={setOutcome} problem={problemOf(done.error)} field="outcome" />
          <TextField id={`call-minutes-${task.id}`} label="Minutes on the phone" type="number" value={minutes} onChange={setMinutes} problem={problemOf(done.error)} field="minutes" />
          <button type="submit" disabled={done.isPending}>
            Call done
          </button>
        </form>
      ))}
    </section>
  );
}

export function FeedbackPanel({ ticket }: { ticket: Ticket }) {
  const feedback = useQuery({
    queryKey: ["ticket", ticket.id, "feedback"],
    queryFn: () => call(() => api.GET("/api/v1/tickets/{ticket_id}/feedback", path(ticket.id))),
    enabled: ticket.status === "closed",
    retry: false,
    refetchInterval: 30_000,
  });
  if (ticket.status !== "closed") return null;
  return (
    <section className="panel" aria-labelledby="feedback-title">
      <h2 id="feedback-title">Feedback</h2>
      {feedback.data ? (
        <p data-rating={feedback.data.rating}>
          {feedback.data.rating === "happy" ? "🙂 Happy" : "🙁 Not happy"}
          {feedback.data.comment ? `: “${feedback.data.comment}”` : ""} ({formatTime(feedback.data.updated_at)})
        </p>
      ) : (
        <p className="hint">No feedback from the customer yet.</p>
      )}
    </section>
  );
}

export function ReviewFlags({ ticketId }: { ticketId: string }) {
  const flagged = useQuery({
    queryKey: ["ticket", ticketId, "inbound-review"],
    queryFn: () => call(() => api.GET("/api/v1/inbound/emails", { params: { query: { ticket_id: ticketId, needs_review: true, limit: 50 } } })),
    refetchInterval: 30_000,
  });
  const items = flagged.data?.items ?? [];
  if (items.length === 0) return null;
  return (
    <section className="panel flagged" aria-labelledby="flagged-title">
      <h2 id="flagged-title">Mail flagged for review</h2>
      <ul className="plain">
        {items.map((mail) => (
          <li key={mail.id} data-inbound={mail.id}>
            <strong>{mail.subject || "(no subject)"}</strong> from {mail.from_address ?? "an unreadable sender"}, {formatTime(mail.received_at)}:{" "}
            <span className="review-reason">{mail.review_reason ?? mail.kind_reasons.join("; ")}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function AuditHistory({ ticketId }: { ticketId: string }) {
  const [open, setOpen] = useState(false);
  const audit = useQuery({
    queryKey: ["ticket", ticketId, "audit"],
    queryFn: () => call(() => api.GET("/api/v1/tickets/{ticket_id}/audit", path(ticketId))),
    enabled: open,
  });
  return (
    <section className="panel" aria-labelledby="audit-title">
      <details onToggle={(event) => setOpen(event.currentTarget.open)}>
        <summary>
          <h2 id="audit-title" className="inline">
            History
          </h2>
        </summary>
        <ProblemBanner problem={problemOf(audit.error)} />
        <ol className="audit">
          {(audit.data ?? []).map((entry) => (
            <li key={entry.id}>
              {formatTime(entry.created_at)} · <strong>{entry.actor}</strong> {entry.action}
              {Object.keys(entry.changes).length > 0 && (
                <ul>
                  {Object.entries(entry.changes).map(([field, change]) => (
                    <li key={field}>
                      {field}: {describeChange(change)}
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ol>
      </details>
    </section>
  );
}

function describeChange(change: unknown): string {
  if (Array.isArray(change) && change.length === 2) return `${String(change[0] ?? "—")} → ${String(change[1] ?? "—")}`;
  if (change && typeof change === "object" && "old" in change && "new" in change) {
    const { old, new: next } = change;
    return `${JSON.stringify(old)} → ${JSON.stringify(next)}`;
  }
  return JSON.stringify(change);
}

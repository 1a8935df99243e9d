import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { type Urgency, portalApi, portalCall } from "../client";
import { Link, ProblemBanner, TextField } from "../components";
import { useDraft } from "../drafts";
import { ProblemError } from "../problems";
import { navigate } from "../router";

const URGENCIES: { value: Urgency; label: string }[] = [
  { value: "low", label: "Low: it can wait" },
  { value: "medium", label: "Medium: it slows us down" },
  { value: "high", label: "High: we cannot work" },
  { value: "critical", label: "Critical: business stopped" },
];

/** Open a ticket as the signed-in customer (the API opens tickets for yourself only). Files: the
 * API takes attachments by mail only, so the form says to reply by mail with them. */
export function NewTicket({ contactId }: { contactId: string }) {
  const [subject, setSubject, clearSubject] = useDraft("new-ticket:subject");
  const [description, setDescription, clearDescription] = useDraft("new-ticket:description");
  const [urgency, setUrgency] = useState<Urgency>("medium");
  const [key] = useState(() => crypto.randomUUID()); // one key per form: a retry cannot open two
  const client = useQueryClient();
  const contact = useQuery({
    queryKey: ["portal", "contact", contactId],
    queryFn: () => portalCall(() => portalApi.GET("/api/v1/contacts/{contact_id}", { params: { path: { contact_id: contactId } } })),
  });
  const open = useMutation({
    mutationFn: () =>
      portalCall(() =>
        portalApi.POST("/api/v1/tickets", {
          params: { header: { "Idempotency-Key": key } },
          body: {
            contact: { email: contact.data?.email ?? "", name: contact.data?.name ?? null },
            subject,
            description,
            urgency,
            channel: "web",
          },
        }),
      ),
    onSuccess: (ticket) => {
      clearSubject();
      clearDescription();
      void client.invalidateQueries({ queryKey: ["portal", "tickets"] });
      navigate(`/portal/tickets/${ticket.id}`);
    },
  });
  const problem = open.error instanceof ProblemError ? open.error.problem : null;

  function submit(event: FormEvent) {
    event.preventDefault();
    open.mutate();
  }

  return (
    <form className="composer" onSubmit={submit} aria-labelledby="new-title" noValidate>
      <p>
        <Link to="/portal/">Back to your tickets</Link>
      </p>
      <h1 id="new-title">Open a ticket</h1>
      <TextField id="new-subject" label="Subject" value={subject} onChange={setSubject} problem={problem} field="subject" />
      <TextField id="new-description" label="Describe what happened" rows={8} value={description} onChange={setDescription} problem={problem} field="description" />
      <label htmlFor="new-urgency">How urgent is it?</label>
      <select id="new-urgency" value={urgency} onChange={(event) => setUrgency(event.target.value as Urgency)}>
        {URGENCIES.map((option) => (
          <option key={option.value} value={option.value}>
            {option.label}
          </option>
        ))}
      </select>
      <p className="hint">
        Files (screenshots, logs, a signed SLA): reply to the acknowledgment mail with them attached; they show up on
        the ticket here.
      </p>
      <ProblemBanner problem={problem} shown={["subject", "description"]} />
      <div className="actions">
        <button type="submit" disabled={open.isPending || !contact.data}>
          {open.isPending ? "Opening…" : "Open the ticket"}
        </button>
      </div>
    </form>
  );
}

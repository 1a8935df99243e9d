// Admin screens: agents, portal/API clients (create, rotate the secret, revoke), webhook
// subscriptions with their deliveries (redeliver), and the notification log.

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, call, notifierApi } from "../client";
import { Link, ProblemBanner, RowTable, TextField, usePages, useSubmit } from "../components";
import { formatTime } from "../labels";
import { type Problem, ProblemError } from "../problems";

function problemOf(error: unknown): Problem | null {
  return error instanceof ProblemError ? error.problem : null;
}

const TABS = [
  ["agents", "Agents"],
  ["clients", "API clients"],
  ["webhooks", "Webhooks"],
  ["notifications", "Notification log"],
] as const;
export type AdminTab = (typeof TABS)[number][0];

export function isAdminTab(value: string): value is AdminTab {
  return TABS.some(([tab]) => tab === value);
}

export function Admin({ tab }: { tab: AdminTab }) {
  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Admin</h1>
      <nav className="tabs" aria-label="Admin sections">
        {TABS.map(([value, label]) => (
          <Link key={value} to={`/admin/${value}`} aria-current={tab === value ? "page" : undefined} className={tab === value ? "tab tab--on" : "tab"}>
            {label}
          </Link>
        ))}
      </nav>
      {tab === "agents" ? <Agents /> : tab === "clients" ? <Clients /> : tab === "webhooks" ? <Webhooks /> : <Notifications />}
    </section>
  );
}

function Agents() {
  const { cursor, pager } = usePages();
  const client = useQueryClient();
  const agents = useQuery({
    queryKey: ["admin", "agents", cursor],
    queryFn: () => call(() => api.GET("/api/v1/agents", { params: { query: { limit: 50, cursor } } })),
  });
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<"agent" | "admin">("agent");
  const [skills, setSkills] = useState("");
  const [timezone, setTimezone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone);
  const [capacity, setCapacity] = useState("10");
  const [password, setPassword] = useState("");
  const [created, setCreated] = useState<string | null>(null);
  const { busy, problem, submit } = useSubmit(async () => {
    setCreated(null);
    const agent = await call(() =>
      api.POST("/api/v1/agents", {
        body: {
          name,
          email,
          role,
          skills: skills.split(",").map((skill) => skill.trim()).filter(Boolean),
          timezone,
          capacity: Number(capacity),
          active: true,
        },
      }),
    );
    if (password) {
      await call(() => api.PUT("/api/v1/agents/{agent_id}/password", { params: { path: { agent_id: agent.id } }, body: { password } }));
    }
    setCreated(`${agent.name} can sign in${password ? " with the password given" : " once a password is set"}.`);
    setName("");
    setEmail("");
    setPassword("");
    void client.invalidateQueries({ queryKey: ["admin", "agents"] });
    void client.invalidateQueries({ queryKey: ["agents"] });
  });
  return (
    <>
      <h2>Agents</h2>
      <ProblemBanner problem={problemOf(agents.error)} />
      <RowTable
        rows={agents.data?.items ?? []}
        caption="Agents"
        rowProps={(agent) => ({ "data-agent": agent.email })}
        columns={[
          { header: "Name", cell: (agent) => agent.name },
          { header: "Email", cell: (agent) => agent.email },
          { header: "Role", cell: (agent) => agent.role },
          { header: "Skills", cell: (agent) => (agent.skills ?? []).join(", ") || "—" },
          { header: "Timezone", cell: (agent) => agent.timezone },
          { header: "Capacity", cell: (agent) => agent.capacity },
          { header: "Active", cell: (agent) => (agent.active ? "yes" : "no") },
        ]}
      />
      {pager(agents.data?.next_cursor)}
      <form className="composer" onSubmit={submit} aria-labelledby="new-agent-title" noValidate>
        <h3 id="new-agent-title">Add an agent</h3>
        <TextField id="agent-name" label="Name" value={name} onChange={setName} problem={problem} field="name" />
        <TextField id="agent-email" label="Email" type="email" value={email} onChange={setEmail} problem={problem} field="email" />
        <label htmlFor="agent-role">Role</label>
        <select id="agent-role" value={role} onChange={(event) => setRole(event.target.value === "admin" ? "admin" : "agent")}>
          <option value="agent">Agent</option>
          <option value="admin">Admin</option>
        </select>
        <TextField id="agent-skills" label="Skills (comma-separated)" value={skills} onChange={setSkills} problem={problem} field="skills" />
        <TextField id="agent-timezone" label="Timezone" value={timezone} onChange={setTimezone} problem={problem} field="timezone" />
        <TextField id="agent-capacity" label="Capacity (open tickets)" type="number" value={capacity} onChange={setCapacity} problem={problem} field="capacity" />
        <TextField id="agent-password" label="First password (optional)" type="password" autoComplete="new-password" value={password} onChange={setPassword} problem={problem} field="password" />
        <ProblemBanner problem={problem} shown={["name", "email", "skills", "timezone", "capacity", "password"]} />
        {created && (
          <p className="notice" role="status">
            {created}
          </p>
        )}
        <div className="actions">
          <button type="submit" disabled={busy}>
            Add the agent
          </button>
        </div>
      </form>
    </>
  );
}

/** A secret shown once, right after it was issued. */
function Secret({ clientId, secret }: { clientId: string; secret: string }) {
  return (
    <div className="notice secret" role="status">
      <p>Copy the secret now: it is not shown again.</p>
      <p>
        Client id <code data-client-id>{clientId}</code>
      </p>
      <p>
        Secret <code data-client-secret>{secret}</code>
      </p>
    </div>
  );
}

function Clients() {
  const { cursor, pager } = usePages();
  const client = useQueryClient();
  const clients = useQuery({
    queryKey: ["admin", "clients", cursor],
    queryFn: () => call(() => api.GET("/api/v1/clients", { params: { query: { limit: 50, cursor } } })),
  });
  const organizations = useQuery({
    queryKey: ["organizations"],
    queryFn: () => call(() => api.GET("/api/v1/organizations", { params: { query: { limit: 200 } } })),
  });
  const [name, setName] = useState("");
  const [organization, setOrganization] = useState("");
  const [issued, setIssued] = useState<{ clientId: string; secret: string } | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null); // the client about to be revoked
  const refresh = () => void client.invalidateQueries({ queryKey: ["admin", "clients"] });
  const { busy, problem, submit } = useSubmit(async () => {
    const made = await call(() =>
      api.POST("/api/v1/clients", {
        body: { name, kind: "portal", organization_ids: organization ? [organization] : [], scopes: ["tickets:read", "tickets:write"] },
      }),
    );
    setIssued({ clientId: made.credentials.client_id, secret: made.credentials.client_secret });
    setName("");
    refresh();
  });
  const rotate = useMutation({
    mutationFn: (id: string) => call(() => api.POST("/api/v1/clients/{client_uuid}/secrets", { params: { path: { client_uuid: id } }, body: { overlap_hours: 24 } })),
    onSuccess: (credentials) => setIssued({ clientId: credentials.client_id, secret: credentials.client_secret }),
  });
  const revoke = useMutation({
    mutationFn: (id: string) => call(() => api.DELETE("/api/v1/clients/{client_uuid}", { params: { path: { client_uuid: id } } })),
    onSuccess: refresh,
  });
  return (
    <>
      <h2>Portal and API clients</h2>
      {issued && <Secret clientId={issued.clientId} secret={issued.secret} />}
      <ProblemBanner problem={problemOf(clients.error) ?? problemOf(rotate.error) ?? problemOf(revoke.error)} />
      <RowTable
        rows={clients.data?.items ?? []}
        caption="API clients"
        rowProps={(item) => ({ "data-client": item.name })}
        columns={[
          { header: "Name", cell: (item) => item.name },
          { header: "Client id", cell: (item) => <code>{item.client_id}</code> },
          { header: "Kind", cell: (item) => item.kind },
          { header: "Scopes", cell: (item) => item.scopes.join(" ") },
          { header: "State", cell: (item) => (item.revoked_at ? `revoked ${formatTime(item.revoked_at)}` : "active") },
          {
            header: "Actions",
            cell: (item) =>
              !item.revoked_at && (
                <>
                  <button type="button" className="link" disabled={rotate.isPending} onClick={() => rotate.mutate(item.id)}>
                    Rotate secret
                  </button>{" "}
                  {confirming === item.id ? (
                    <button type="button" className="link danger" disabled={revoke.isPending} onClick={() => revoke.mutate(item.id)}>
                      Confirm: revoke, its tokens die at once
                    </button>
                  ) : (
                    <button type="button" className="link danger" onClick={() => setConfirming(item.id)}>
                      Revoke
                    </button>
                  )}
                </>
              ),
          },
        ]}
      />
      {pager(clients.data?.next_cursor)}
      <form className="composer" onSubmit={submit} aria-labelledby="new-client-title" noValidate>
        <h3 id="new-client-title">Add a portal client</h3>
        <TextField id="client-name" label="Name" value={name} onChange={setName} problem={problem} field="name" />
        <label htmlFor="client-organization">Organization it serves</label>
        <select id="client-organization" value={organization} onChange={(event) => setOrganization(event.target.value)}>
          <option value="">None yet</option>
          {(organizations.data?.items ?? []).map((org) => (
            <option key={org.id} value={org.id}>
              {org.name}
            </option>
          ))}
        </select>
        <ProblemBanner problem={problem} shown={["name"]} />
        <div className="actions">
          <button type="submit" disabled={busy}>
            Create the client
          </button>
        </div>
      </form>
    </>
  );
}

function Deliveries({ subscriptionId }: { subscriptionId: string }) {
  const client = useQueryClient();
  const deliveries = useQuery({
    queryKey: ["admin", "deliveries", subscriptionId],
    queryFn: () =>
      call(() =>
        notifierApi.GET("/api/v1/webhooks/subscriptions/{subscription_id}/deliveries", { params: { path: { subscription_id: subscriptionId }, query: { limit: 20 } } }),
      ),
  });
  const redeliver = useMutation({
    mutationFn: (id: string) => call(() => notifierApi.POST("/api/v1/webhooks/deliveries/{delivery_id}/redeliver", { params: { path: { delivery_id: id } } })),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["admin", "deliveries", subscriptionId] }),
  });
  const items = deliveries.data?.items ?? [];
  return (
    <>
      <ProblemBanner problem={problemOf(deliveries.error) ?? problemOf(redeliver.error)} />
      {items.length === 0 ? (
        <p className="hint">No deliveries yet.</p>
      ) : (
        <ul className="plain">
          {items.map((delivery) => (
            <li key={delivery.id}>
              {formatTime(delivery.created_at)} · {delivery.event_type} · <strong>{delivery.state}</strong> after {delivery.attempts} attempt(s)
              {delivery.last_status_code ? ` (HTTP ${delivery.last_status_code})` : ""}
              {delivery.last_error ? `: ${delivery.last_error}` : ""}{" "}
              <button type="button" className="link" disabled={redeliver.isPending} onClick={() => redeliver.mutate(delivery.id)}>
                Send again
              </button>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function Webhooks() {
  const subscriptions = useQuery({
    queryKey: ["admin", "webhooks"],
    queryFn: () => call(() => notifierApi.GET("/api/v1/webhooks/subscriptions", { params: { query: { limit: 50 } } })),
  });
  const items = subscriptions.data?.items ?? [];
  return (
    <>
      <h2>Webhook subscriptions</h2>
      <p className="hint">Portals subscribe with their own client (scope webhooks:manage); here you follow what was delivered.</p>
      <ProblemBanner problem={problemOf(subscriptions.error)} />
      {items.length === 0 && !subscriptions.isPending && <p className="empty">No subscriptions.</p>}
      {items.map((subscription) => (
        <details key={subscription.id} className="panel">
          <summary>
            <code>{subscription.url}</code> · {subscription.event_types.join(", ")} ·{" "}
            {subscription.active ? "active" : `disabled${subscription.disabled_reason ? `: ${subscription.disabled_reason}` : ""}`}
          </summary>
          <Deliveries subscriptionId={subscription.id} />
        </details>
      ))}
    </>
  );
}

function Notifications() {
  const { cursor, pager } = usePages();
  const [recipient, setRecipient] = useState("");
  const log = useQuery({
    queryKey: ["admin", "notifications", recipient, cursor],
    queryFn: () => call(() => notifierApi.GET("/api/v1/notifications", { params: { query: { limit: 50, cursor, recipient: recipient || undefined } } })),
  });
  return (
    <>
      <h2>Notification log</h2>
      <div className="filters">
        <label htmlFor="recipient-filter">Recipient</label>
        <input id="recipient-filter" type="email" value={recipient} onChange={(event) => setRecipient(event.target.value)} />
      </div>
      <ProblemBanner problem={problemOf(log.error)} />
      <RowTable
        rows={log.data?.items ?? []}
        caption="Notifications sent, newest first"
        rowProps={(item) => ({ "data-notification": item.kind })}
        columns={[
          { header: "When", cell: (item) => formatTime(item.created_at) },
          { header: "To", cell: (item) => item.recipient },
          { header: "Kind", cell: (item) => item.kind },
          { header: "Subject", cell: (item) => item.subject },
          { header: "Ticket", cell: (item) => item.ticket_number ?? "—" },
          { header: "State", cell: (item) => `${item.state}${item.last_error ? `: ${item.last_error}` : ""}` },
        ]}
      />
      {pager(log.data?.next_cursor)}
    </>
  );
}

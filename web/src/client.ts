// The typed API clients (types generated from the services' OpenAPI by `make web-api`): one for
// the console (an agent's token, refreshed from the session cookie) and one for the portal (a
// customer's token from a sign-in link, which nothing can refresh).

import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { paths as notifierPaths } from "./api/notifier";
import type { components, paths } from "./api/ticket_api";
import type { components as triageComponents, paths as triagePaths } from "./api/triage";
import { noteAnswer } from "./connection";
import { customerToken, expireCustomer } from "./portalSession";
import { NETWORK_PROBLEM, ProblemError, problemOf } from "./problems";
import { currentAccessToken, expire, refreshSession } from "./session";

export type Ticket = components["schemas"]["TicketPublic"];
export type Message = components["schemas"]["MessagePublic"];
export type TicketStatus = components["schemas"]["TicketStatus"];
export type Visibility = components["schemas"]["Visibility"];
export type Priority = components["schemas"]["Priority"];
export type Urgency = components["schemas"]["Urgency"];
export type Appointment = components["schemas"]["AppointmentPublic"];
export type SlotList = components["schemas"]["SlotList"];
export type Attachment = components["schemas"]["EmailAttachmentPublic"];
export type Feedback = components["schemas"]["FeedbackPublic"];
export type Agent = components["schemas"]["AgentPublic"];
export type TimeEntry = components["schemas"]["TimeEntryPublic"];
export type AuditEntry = components["schemas"]["AuditEntryPublic"];
export type CallTask = components["schemas"]["CallTaskPublic"];
export type InboundEmail = components["schemas"]["InboundEmailPublic"];
export type Decision = triageComponents["schemas"]["DecisionPublic"];
export type Timer = triageComponents["schemas"]["TimerStatus"];

/** Who a client calls as: where its token comes from, how to renew it, what to do when it dies. */
export interface Auth {
  token(): string | null;
  refresh(): Promise<boolean>;
  expire(): void;
}

function bearer(auth: Auth): Middleware {
  return {
    onRequest({ request }) {
      const token = auth.token();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  };
}

const CONSOLE: Auth = { token: currentAccessToken, refresh: refreshSession, expire: () => expire(true) };
const PORTAL: Auth = { token: customerToken, refresh: () => Promise.resolve(false), expire: () => expireCustomer(true) };

function clientFor<P extends object>(auth: Auth): Client<P> {
  const client = createClient<P>({ baseUrl: globalThis.location?.origin ?? "" });
  client.use(bearer(auth));
  return client;
}

/** The console's client (an agent or admin). */
export const api = clientFor<paths>(CONSOLE);
/** triage's routes (decisions, SLA timers), for the console. */
export const triageApi = clientFor<triagePaths>(CONSOLE);
/** the notifier's routes (notification log, webhooks), for the console. */
export const notifierApi = clientFor<notifierPaths>(CONSOLE);
/** The portal's client (a customer signed in by link). */
export const portalApi = clientFor<paths>(PORTAL);

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

async function callAs<T>(auth: Auth, run: () => Promise<Answer<T>>): Promise<T> {
  const attempt = async (): Promise<Answer<T>> => {
    try {
      return await run();
    } catch {
      throw new ProblemError(NETWORK_PROBLEM);
    }
  };
  let answer: Answer<T>;
  try {
    answer = await attempt();
    if (answer.response.status === 401 && (await auth.refresh())) answer = await attempt();
  } catch (error) {
    if (error instanceof ProblemError) noteAnswer(error.problem);
    throw error;
  }
  if (answer.response.status === 401) auth.expire();
  if (!answer.response.ok) {
    const problem = problemOf(answer.response, answer.error);
    noteAnswer(problem);
    throw new ProblemError(problem);
  }
  noteAnswer(null);
  return answer.data as T;
}

/** Run one console API call; on a 401 refresh the session once and run it again; a problem throws. */
export function call<T>(run: () => Promise<Answer<T>>): Promise<T> {
  return callAs(CONSOLE, run);
}

/** Run one portal API call; a 401 ends the customer's session (a new link is needed). */
export function portalCall<T>(run: () => Promise<Answer<T>>): Promise<T> {
  return callAs(PORTAL, run);
}

/** Download a file the API serves behind the bearer token, saved under its own name. */
export async function download(path: string, name: string, area: "console" | "portal"): Promise<void> {
  const auth = area === "console" ? CONSOLE : PORTAL;
  const get = () => fetch(path, { headers: { Authorization: `Bearer ${auth.token() ?? ""}` } });
  let response: Response;
  try {
    response = await get();
    if (response.status === 401 && (await auth.refresh())) response = await get();
  } catch {
    throw new ProblemError(NETWORK_PROBLEM);
  }
  if (response.status === 401) auth.expire();
  if (!response.ok) throw new ProblemError(problemOf(response, await response.json().catch(() => null)));
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

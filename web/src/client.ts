// The typed API client (types generated from the services' OpenAPI by `make web-api`).

import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./api/ticket_api";
import { NETWORK_PROBLEM, ProblemError, problemOf } from "./problems";
import { currentAccessToken, expire, refreshSession } from "./session";

export type Ticket = components["schemas"]["TicketPublic"];
export type Message = components["schemas"]["MessagePublic"];
export type TicketStatus = components["schemas"]["TicketStatus"];
export type Visibility = components["schemas"]["Visibility"];

const bearer: Middleware = {
  onRequest({ request }) {
    const token = currentAccessToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });
api.use(bearer);

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Run one API call; on a 401 refresh the session once and run it again; a problem throws. */
export async function call<T>(run: () => Promise<Answer<T>>): Promise<T> {
  const attempt = async (): Promise<Answer<T>> => {
    try {
      return await run();
    } catch {
      throw new ProblemError(NETWORK_PROBLEM);
    }
  };
  let answer = await attempt();
  if (answer.response.status === 401 && (await refreshSession())) answer = await attempt();
  if (answer.response.status === 401) expire(true);
  if (!answer.response.ok) throw new ProblemError(problemOf(answer.response, answer.error));
  return answer.data as T;
}

// The signed-in agent: the access token lives in this module's memory only. The refresh token is
// an HttpOnly cookie the page cannot read, sent by the browser to /api/v1/auth/session only.

import { useSyncExternalStore } from "react";
import { claimText, claimsOf } from "./claims";
import { NETWORK_PROBLEM, ProblemError, problemOf } from "./problems";

const SESSION = "/api/v1/auth/session";
const CSRF = { "X-Helpdesk-CSRF": "1" };

export interface Me {
  name: string;
  kind: string;
  agentId: string | null;
}

export type SessionState =
  | { status: "starting" }
  | { status: "signed-out"; expired: boolean }
  | { status: "signed-in"; me: Me };

let state: SessionState = { status: "starting" };
let accessToken: string | null = null;
const listeners = new Set<() => void>();

function set(next: SessionState): void {
  state = next;
  listeners.forEach((listener) => listener());
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useSession(): SessionState {
  return useSyncExternalStore(subscribe, () => state);
}

export function currentAccessToken(): string | null {
  return accessToken;
}

/** The claims the console shows (the token is verified by the API, not here). */
function meFrom(token: string): Me {
  const claims = claimsOf(token);
  return { name: claimText(claims, "name"), kind: claimText(claims, "kind"), agentId: typeof claims.agent_id === "string" ? claims.agent_id : null };
}

function accept(token: string): void {
  accessToken = token;
  set({ status: "signed-in", me: meFrom(token) });
}

async function post(path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(path, { credentials: "same-origin", ...init });
  } catch {
    throw new ProblemError(NETWORK_PROBLEM);
  }
}

async function fail(response: Response): Promise<never> {
  const body: unknown = await response.json().catch(() => null);
  throw new ProblemError(problemOf(response, body));
}

export async function signIn(email: string, password: string): Promise<void> {
  const response = await post(SESSION, {
    method: "POST",
    headers: { ...CSRF, "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) await fail(response);
  accept(((await response.json()) as { access_token: string }).access_token);
}

let refreshing: Promise<boolean> | null = null;

/** A new access token from the cookie; false (and signed out) when the session is over. One
 * refresh at a time: the cookie's token is single-use, so parallel calls share the answer. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= (async () => {
    try {
      let response = await post(`${SESSION}/refresh`, { method: "POST", headers: CSRF });
      // The gateway's rate limit on sign-in routes refused the request (the cookie was not
      // used): ask again after the wait it names rather than signing the agent out.
      for (let attempt = 1; response.status === 429 && attempt <= 3; attempt++) {
        const wait = Math.min(Number(response.headers.get("Retry-After")) || 1, 5);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
        response = await post(`${SESSION}/refresh`, { method: "POST", headers: CSRF });
      }
      if (!response.ok) {
        expire(state.status === "signed-in");
        return false;
      }
      accept(((await response.json()) as { access_token: string }).access_token);
      return true;
    } catch {
      expire(false);
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** The session ended without the agent signing out (a 401 the refresh could not mend). */
export function expire(expired: boolean): void {
  accessToken = null;
  set({ status: "signed-out", expired });
}

export async function signOut(): Promise<void> {
  const token = accessToken;
  accessToken = null;
  if (token) {
    await post(SESSION, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  }
  set({ status: "signed-out", expired: false });
}

// The signed-in customer of the portal. A sign-in link's token (mailed, single-use, in the URL's
// fragment so no server logs it) is traded for an access token that lives in this module's memory
// only: nothing can refresh it (the API gives customers no refresh token), so a reload or its
// expiry asks for a new link.

import { useSyncExternalStore } from "react";
import { claimText, claimsOf } from "./claims";
import { NETWORK_PROBLEM, ProblemError, problemOf } from "./problems";

export interface Customer {
  name: string;
  contactId: string;
}

export type CustomerState = { status: "signed-out"; expired: boolean } | { status: "signed-in"; me: Customer };

let state: CustomerState = { status: "signed-out", expired: false };
let token: string | null = null;
const listeners = new Set<() => void>();

function set(next: CustomerState): void {
  state = next;
  listeners.forEach((listener) => listener());
}

export function useCustomer(): CustomerState {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => state,
  );
}

export function customerToken(): string | null {
  return token;
}

async function post(path: string, body: unknown): Promise<Response> {
  try {
    return await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch {
    throw new ProblemError(NETWORK_PROBLEM);
  }
}

async function fail(response: Response): Promise<never> {
  throw new ProblemError(problemOf(response, await response.json().catch(() => null)));
}

/** Ask for a sign-in link by mail (the answer never says whether the address is known). */
export async function requestLink(email: string, ticketNumber: string): Promise<void> {
  const response = await post("/api/v1/auth/magic-link", {
    email,
    ticket_number: ticketNumber.trim() ? ticketNumber.trim() : null,
  });
  if (!response.ok) await fail(response);
}

/** Trade a sign-in link's token for the customer's access token. */
export async function redeemLink(linkToken: string): Promise<void> {
  const response = await post("/api/v1/auth/magic-link/redeem", { token: linkToken });
  if (!response.ok) await fail(response);
  const access = ((await response.json()) as { access_token: string }).access_token;
  const claims = claimsOf(access);
  token = access;
  set({ status: "signed-in", me: { name: claimText(claims, "name"), contactId: claimText(claims, "contact_id") } });
}

/** The customer's token stopped working (expired, revoked) or they signed out. */
export function expireCustomer(expired: boolean): void {
  token = null;
  set({ status: "signed-out", expired });
}

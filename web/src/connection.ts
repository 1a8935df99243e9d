// Whether the API answers: a lost network or a 502/503/504 from the gateway shows one banner with
// a retry button (queries also retry on their own); the next answer that gets through clears it.

import { useSyncExternalStore } from "react";
import { NETWORK_PROBLEM, type Problem } from "./problems";

let down: Problem | null = null;
const listeners = new Set<() => void>();

export function isUnavailable(status: number): boolean {
  return status === 0 || status === 502 || status === 503 || status === 504;
}

export function noteAnswer(problem: Problem | null): void {
  const next = problem && isUnavailable(problem.status) ? problem : null;
  if (next === down) return;
  down = next;
  listeners.forEach((listener) => listener());
}

// The browser knows it is offline: queries then wait (TanStack Query pauses them) instead of
// failing, so the banner follows the browser's own word too; back online, they run again.
if (typeof window !== "undefined") {
  window.addEventListener("offline", () => noteAnswer(NETWORK_PROBLEM));
  window.addEventListener("online", () => noteAnswer(null));
}

export function useConnectionProblem(): Problem | null {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => down,
  );
}

// The few routes of the console, on the History API (the gateway serves index.html for them).

import { useSyncExternalStore } from "react";

const CHANGE = "helpdesk:navigate";

function subscribe(listener: () => void): () => void {
  window.addEventListener("popstate", listener);
  window.addEventListener(CHANGE, listener);
  return () => {
    window.removeEventListener("popstate", listener);
    window.removeEventListener(CHANGE, listener);
  };
}

/** The current path with its query, e.g. `/tickets/…?x=1`. */
export function useLocation(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname + window.location.search);
}

export function navigate(to: string, { replace = false } = {}): void {
  if (replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  window.dispatchEvent(new Event(CHANGE));
}

/** Which area a path belongs to: the portal (`/portal/…`, and the sign-in links of our mail,
 * `/sign-in#token=…`) or the console (everything else). */
export function isPortalPath(pathname: string, hash: string): boolean {
  return pathname === "/portal" || pathname.startsWith("/portal/") || (pathname === "/sign-in" && /(^#|&)token=/.test(hash));
}

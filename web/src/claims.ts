/** The claims of an access token, for what the app shows (the API verifies tokens, not the app). */
export function claimsOf(jwt: string): Record<string, unknown> {
  const payload = jwt.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as Record<string, unknown>;
}

/** A claim that should be text, or "" (never "[object Object]"). */
export function claimText(claims: Record<string, unknown>, name: string): string {
  const value = claims[name];
  return typeof value === "string" ? value : "";
}

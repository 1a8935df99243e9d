import { describe, expect, it } from "vitest";
import { isPortalPath } from "./router";

describe("isPortalPath", () => {
  it("sends /portal/… and the mailed sign-in links to the portal", () => {
    expect(isPortalPath("/portal/", "")).toBe(true);
    expect(isPortalPath("/portal", "")).toBe(true);
    expect(isPortalPath("/portal/tickets/x", "")).toBe(true);
    expect(isPortalPath("/sign-in", "#token=abc.def")).toBe(true);
  });

  it("keeps the console's own paths, its sign-in included", () => {
    expect(isPortalPath("/", "")).toBe(false);
    expect(isPortalPath("/sign-in", "")).toBe(false);
    expect(isPortalPath("/portalx", "")).toBe(false);
    expect(isPortalPath("/tickets/1", "#token=x")).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { STATUSES, allowedTargets, countdown } from "./labels";

describe("status changes offered", () => {
  it("follows ticket_api's rules (generated into api/transitions.json)", () => {
    expect(allowedTargets("new")).toEqual(["open", "pending_customer", "closed"]);
    expect(allowedTargets("closed")).toEqual(["open"]);
    for (const status of STATUSES) expect(allowedTargets(status)).not.toContain(status);
  });
});

describe("countdown", () => {
  const now = Date.parse("2026-12-07T12:00:00Z");
  it("says how long is left, and soon under an hour", () => {
    expect(countdown("2026-12-07T14:05:00Z", now)).toEqual({ text: "due in 2 h 5 min", level: "ok" });
    expect(countdown("2026-12-07T12:30:00Z", now)).toEqual({ text: "due in 30 min", level: "soon" });
    expect(countdown("2026-12-10T13:00:00Z", now)).toEqual({ text: "due in 3 d 1 h", level: "ok" });
  });
  it("says by how much it is overdue", () => {
    expect(countdown("2026-12-07T11:48:00Z", now)).toEqual({ text: "overdue by 12 min", level: "breached" });
  });
});

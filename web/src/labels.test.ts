import { describe, expect, it } from "vitest";
import { STATUSES, allowedTargets } from "./labels";

describe("status changes offered", () => {
  it("follows ticket_api's rules (generated into api/transitions.json)", () => {
    expect(allowedTargets("new")).toEqual(["open", "pending_customer", "closed"]);
    expect(allowedTargets("closed")).toEqual(["open"]);
    for (const status of STATUSES) expect(allowedTargets(status)).not.toContain(status);
  });
});

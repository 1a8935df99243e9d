import { describe, expect, it } from "vitest";
import { type Problem, fieldOf, fieldSentences, problemOf, problemSentence } from "./problems";

const validation: Problem = {
  type: "urn:helpdesk:problem:validation-error",
  title: "Request is not valid",
  status: 422,
  detail: "body.body: String should have at least 1 character",
  errors: [
    { location: "body.body", message: "String should have at least 1 character" },
    { location: "query.limit", message: "must be at most 200" },
  ],
};

describe("problems as sentences", () => {
  it("names the field a location points at", () => {
    expect(fieldOf("body.email")).toBe("email");
    expect(fieldOf("body.contact.email")).toBe("contact.email");
    expect(fieldOf("header.X-Helpdesk-CSRF")).toBe("X-Helpdesk-CSRF");
  });

  it("puts a field's message next to it as a sentence", () => {
    expect(fieldSentences(validation, "body", "Message")).toEqual(["Message: String should have at least 1 character."]);
    expect(fieldSentences(validation, "email", "Email")).toEqual([]);
    expect(fieldSentences(null, "body", "Message")).toEqual([]);
  });

  it("says in the banner only what no field shows", () => {
    expect(problemSentence(validation, ["body"])).toBe("Limit: must be at most 200.");
    expect(problemSentence({ ...validation, errors: validation.errors?.slice(0, 1) }, ["body"])).toBe(
      "Please correct the marked field.",
    );
  });

  it("turns a lockout into a sentence with the wait", () => {
    const locked: Problem = { type: "x", title: "Too many failed attempts", status: 429, retryAfterSeconds: 4 };
    expect(problemSentence(locked)).toBe("Too many failed attempts: try again in 4 seconds.");
    expect(problemSentence({ ...locked, retryAfterSeconds: 1 })).toBe("Too many failed attempts: try again in 1 second.");
  });

  it("uses the detail, as a sentence, when no field is named", () => {
    expect(problemSentence({ type: "x", title: "Status change not allowed", status: 409, detail: "closed → new is not allowed" })).toBe(
      "Closed → new is not allowed.",
    );
    expect(problemSentence({ type: "x", title: "Not found", status: 404 })).toBe("Not found.");
  });

  it("reads Retry-After and falls back to the status for a body that is no problem", () => {
    const answer = new Response("<html>", { status: 502, statusText: "Bad Gateway", headers: { "Retry-After": "3" } });
    expect(problemOf(answer, null)).toEqual({ type: "about:blank", title: "Bad Gateway", status: 502, retryAfterSeconds: 3 });
  });
});

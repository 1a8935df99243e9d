// RFC 9457 problem documents from the API, turned into sentences a person can act on.

export interface FieldError {
  location: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string | null;
  errors?: FieldError[];
  retryAfterSeconds?: number;
}

export class ProblemError extends Error {
  readonly problem: Problem;

  constructor(problem: Problem) {
    super(problem.detail ?? problem.title);
    this.problem = problem;
  }
}

export const NETWORK_PROBLEM: Problem = {
  type: "about:blank#network",
  title: "Network error",
  status: 0,
  detail: "The server could not be reached. Check your connection and try again.",
};

function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && "status" in value && "title" in value;
}

/** The problem an answer carries (or a plain one made from its status when the body is not one). */
export function problemOf(response: Response, body: unknown): Problem {
  const retryAfter = Number(response.headers.get("Retry-After"));
  const base: Problem = isProblem(body)
    ? { ...body }
    : { type: "about:blank", title: response.statusText || "Error", status: response.status };
  if (Number.isFinite(retryAfter) && retryAfter > 0) base.retryAfterSeconds = retryAfter;
  return base;
}

function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return trimmed;
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** The field a location such as `body.email` or `query.status` names. */
export function fieldOf(location: string): string {
  const parts = location.split(".");
  return parts.slice(1).join(".") || location;
}

/** The sentences for one field of a form (empty when the problem names another field). */
export function fieldSentences(problem: Problem | null | undefined, field: string, label: string): string[] {
  return (problem?.errors ?? [])
    .filter((error) => fieldOf(error.location) === field)
    .map((error) => sentence(`${label}: ${error.message}`));
}

function seconds(n: number): string {
  return n === 1 ? "1 second" : `${n} seconds`;
}

/** The sentence for the whole problem, leaving out what is said next to the fields in `shown`. */
export function problemSentence(problem: Problem, shown: readonly string[] = []): string {
  if (problem.status === 429) {
    const wait = problem.retryAfterSeconds;
    return wait
      ? `Too many failed attempts: try again in ${seconds(wait)}.`
      : "Too many attempts: wait a moment and try again.";
  }
  const others = (problem.errors ?? []).filter((error) => !shown.includes(fieldOf(error.location)));
  if (problem.errors && problem.errors.length > 0) {
    if (others.length === 0) return "Please correct the marked field.";
    return others.map((error) => sentence(`${fieldOf(error.location)}: ${error.message}`)).join(" ");
  }
  return sentence(problem.detail || problem.title);
}

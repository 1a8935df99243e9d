import type { AnchorHTMLAttributes, ReactNode } from "react";
import { type Problem, fieldSentences, problemSentence } from "./problems";
import { navigate } from "./router";

/** An in-app link: a real <a href> (open in a new tab works), routed without a reload. */
export function Link({ to, children, ...rest }: { to: string; children: ReactNode } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  return (
    <a
      {...rest}
      href={to}
      onClick={(event) => {
        if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
        event.preventDefault();
        navigate(to);
      }}
    >
      {children}
    </a>
  );
}

/** What the API said about one field, next to that field. */
export function FieldProblem({ id, problem, field, label }: { id: string; problem: Problem | null; field: string; label: string }) {
  const sentences = fieldSentences(problem, field, label);
  if (sentences.length === 0) return null;
  return (
    <p className="field-problem" id={id} role="alert">
      {sentences.join(" ")}
    </p>
  );
}

/** What the API said, as a sentence (leaving out what is shown next to `shown` fields). */
export function ProblemBanner({ problem, shown = [] }: { problem: Problem | null; shown?: readonly string[] }) {
  if (problem === null) return null;
  return (
    <p className="problem" role="alert">
      {problemSentence(problem, shown)}
    </p>
  );
}

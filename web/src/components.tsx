import { useQueryClient } from "@tanstack/react-query";
import { type AnchorHTMLAttributes, type FormEvent, type ReactNode, useState } from "react";
import { type Attachment, download } from "./client";
import { useConnectionProblem } from "./connection";
import { type Problem, ProblemError, fieldSentences, problemSentence } from "./problems";
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

/** The API is out of reach (network lost, 502/503/504): say so once, offer to retry; whatever is
 * being written stays in its form. */
export function RetryBanner() {
  const problem = useConnectionProblem();
  const client = useQueryClient();
  if (problem === null) return null;
  const what =
    problem.status === 0
      ? "The server cannot be reached: check your connection."
      : "The service is unavailable for a moment.";
  return (
    <div className="retry-banner" role="alert">
      <span>
        {what} Nothing you are writing is lost; it is sent once you try again.
        {problem.retryAfterSeconds ? ` Suggested wait: ${problem.retryAfterSeconds} s.` : ""}
      </span>
      <button type="button" onClick={() => void client.refetchQueries({ type: "active" })}>
        Retry now
      </button>
    </div>
  );
}

function size(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The files that came with the ticket's mail: downloadable, or refused with the reason. */
export function Attachments({ items, area }: { items: Attachment[]; area: "console" | "portal" }) {
  const [problem, setProblem] = useState<Problem | null>(null);
  if (items.length === 0) return null;
  return (
    <section aria-labelledby="attachments-title" className="panel">
      <h2 id="attachments-title">Attachments</h2>
      <ul className="plain attachments">
        {items.map((item) => (
          <li key={item.id} data-attachment={item.filename}>
            {item.refused_reason || !item.download_url ? (
              <span>
                {item.filename} ({size(item.size_bytes)}): <em>refused: {item.refused_reason ?? "not kept"}</em>
              </span>
            ) : (
              <button
                type="button"
                className="link"
                onClick={() => {
                  setProblem(null);
                  download(item.download_url ?? "", item.filename, area).catch((error: unknown) =>
                    setProblem(error instanceof ProblemError ? error.problem : null),
                  );
                }}
              >
                Download {item.filename} ({size(item.size_bytes)})
              </button>
            )}
          </li>
        ))}
      </ul>
      <ProblemBanner problem={problem} />
    </section>
  );
}

interface TextFieldProps {
  id: string;
  label: string;
  value: string;
  onChange: (value: string) => void;
  problem: Problem | null;
  /** the request field the API names in its problem (`body`, `subject` …) */
  field: string;
  /** a multi-line text area of this many rows; a one-line input when absent */
  rows?: number;
  type?: string;
  autoComplete?: string;
  placeholder?: string;
}

/** A labelled input (or text area) with what the API said about its field right below. */
export function TextField({ id, label, value, onChange, problem, field, rows, type = "text", autoComplete, placeholder }: TextFieldProps) {
  const common = {
    id,
    value,
    placeholder,
    "aria-describedby": `${id}-problem`,
    onChange: (event: { target: { value: string } }) => onChange(event.target.value),
  };
  return (
    <>
      <label htmlFor={id}>{label}</label>
      {rows ? <textarea rows={rows} {...common} /> : <input type={type} autoComplete={autoComplete} {...common} />}
      <FieldProblem id={`${id}-problem`} problem={problem} field={field} label={label} />
    </>
  );
}

/** Newer / older pages over a cursor-paged list: the cursors of the pages before this one. */
export function usePages(): { cursor: string | undefined; reset: () => void; pager: (next: string | null | undefined) => ReactNode } {
  const [cursors, setCursors] = useState<string[]>([]);
  return {
    cursor: cursors.at(-1),
    reset: () => setCursors([]),
    pager: (next) => (
      <nav className="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length === 0} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </button>
        <button type="button" disabled={!next} onClick={() => next && setCursors([...cursors, next])}>
          Older
        </button>
      </nav>
    ),
  };
}

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
}

/** A table of rows with an id: one column per `columns`, each row's attributes from `rowProps`. */
export function RowTable<T extends { id: string }>({
  rows,
  caption,
  columns,
  rowProps,
}: {
  rows: T[];
  caption: string;
  columns: Column<T>[];
  rowProps?: (row: T, index: number) => Record<string, unknown>;
}) {
  return (
    <table className="queue">
      <caption className="visually-hidden">{caption}</caption>
      <thead>
        <tr>
          {columns.map((column) => (
            <th key={column.header} scope="col">
              {column.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((row, index) => (
          <tr key={row.id} {...rowProps?.(row, index)}>
            {columns.map((column) => (
              <td key={column.header}>{column.cell(row)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A form's submission: busy while it runs, the API's problem when it fails. */
export function useSubmit(action: () => Promise<void>): { busy: boolean; problem: Problem | null; submit: (event: FormEvent) => void } {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem | null>(null);
  async function run() {
    setBusy(true);
    setProblem(null);
    try {
      await action();
    } catch (error) {
      setProblem(error instanceof ProblemError ? error.problem : null);
    } finally {
      setBusy(false);
    }
  }
  function submit(event: FormEvent) {
    event.preventDefault();
    void run();
  }
  return { busy, problem, submit };
}

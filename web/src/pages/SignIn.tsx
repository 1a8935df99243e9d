import { type FormEvent, useState } from "react";
import { FieldProblem, ProblemBanner } from "../components";
import { type Problem, ProblemError } from "../problems";
import { navigate } from "../router";
import { signIn } from "../session";

export function SignIn({ next, expired }: { next: string; expired: boolean }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState<Problem | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      await signIn(email, password);
      navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
    } catch (error) {
      setProblem(error instanceof ProblemError ? error.problem : null);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="sign-in">
      <h1>Helpdesk</h1>
      <form onSubmit={submit} aria-labelledby="sign-in-title" noValidate>
        <h2 id="sign-in-title">Sign in</h2>
        {expired && problem === null && <p className="notice">Your session ended. Sign in again to continue.</p>}
        <Field id="email" label="Email" type="email" autoComplete="username" value={email} onChange={setEmail} problem={problem} />
        <Field
          id="password"
          label="Password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={setPassword}
          problem={problem}
        />
        <ProblemBanner problem={problem} shown={["email", "password"]} />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

interface FieldProps {
  id: "email" | "password";
  label: string;
  type: string;
  autoComplete: string;
  value: string;
  onChange: (value: string) => void;
  problem: Problem | null;
}

/** A labelled input with what the API said about it right below. */
function Field({ id, label, type, autoComplete, value, onChange, problem }: FieldProps) {
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type={type}
        autoComplete={autoComplete}
        required
        value={value}
        onChange={(event) => onChange(event.target.value)}
        aria-describedby={`${id}-problem`}
      />
      <FieldProblem id={`${id}-problem`} problem={problem} field={id} label={label} />
    </>
  );
}

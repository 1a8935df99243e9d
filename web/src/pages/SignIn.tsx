import { useState } from "react";
import { ProblemBanner, TextField, useSubmit } from "../components";
import { navigate } from "../router";
import { signIn } from "../session";

export function SignIn({ next, expired }: { next: string; expired: boolean }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { busy, problem, submit } = useSubmit(async () => {
    await signIn(email, password);
    navigate(next.startsWith("/") && !next.startsWith("//") ? next : "/", { replace: true });
  });

  return (
    <main className="sign-in">
      <h1>Helpdesk</h1>
      <form onSubmit={submit} aria-labelledby="sign-in-title" noValidate>
        <h2 id="sign-in-title">Sign in</h2>
        {expired && problem === null && <p className="notice">Your session ended. Sign in again to continue.</p>}
        <TextField id="email" label="Email" type="email" autoComplete="username" value={email} onChange={setEmail} problem={problem} field="email" />
        <TextField
          id="password"
          label="Password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={setPassword}
          problem={problem}
          field="password"
        />
        <ProblemBanner problem={problem} shown={["email", "password"]} />
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

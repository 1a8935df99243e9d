import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { Link, RetryBanner } from "./components";
import { Admin, isAdminTab } from "./pages/Admin";
import { Queue } from "./pages/Queue";
import { SignIn } from "./pages/SignIn";
import { TicketPage } from "./pages/TicketPage";
import { navigate, useLocation } from "./router";
import { type Me, refreshSession, signOut, useSession } from "./session";

const SIGN_IN = "/sign-in";

export function App() {
  const session = useSession();
  const location = useLocation();
  const path = location.split("?")[0] ?? "/";

  // A reload starts here: the cookie (if any) gives a new access token, or the sign-in form.
  useEffect(() => {
    void refreshSession();
  }, []);

  useEffect(() => {
    if (session.status === "signed-out" && path !== SIGN_IN) {
      navigate(`${SIGN_IN}?next=${encodeURIComponent(location)}`, { replace: true });
    } else if (session.status === "signed-in" && path === SIGN_IN) {
      navigate(nextOf(location), { replace: true });
    }
  }, [session.status, path, location]);

  if (session.status === "starting") return <p className="loading">Loading…</p>;
  if (session.status === "signed-out") {
    return <SignIn next={nextOf(location)} expired={session.expired} />;
  }
  return <Console me={session.me} path={path} />;
}

function nextOf(location: string): string {
  const next = new URLSearchParams(location.split("?")[1] ?? "").get("next") ?? "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith(SIGN_IN) ? next : "/";
}

function Console({ me, path }: { me: Me; path: string }) {
  const client = useQueryClient();
  const ticket = /^\/tickets\/([0-9a-f-]{36})$/.exec(path);
  const admin = /^\/admin(?:\/([a-z]+))?\/?$/.exec(path);
  const adminTab = admin ? (admin[1] ?? "agents") : null;
  return (
    <>
      <header className="top">
        <Link to="/" className="brand">
          Helpdesk
        </Link>
        <nav className="main-nav" aria-label="Main">
          <Link to="/">Queue</Link>
          {me.kind === "admin" && <Link to="/admin/agents">Admin</Link>}
        </nav>
        <span className="who">
          Signed in as <strong>{me.name}</strong> ({me.kind})
        </span>
        <button
          type="button"
          className="secondary"
          onClick={() => void signOut().then(() => client.clear())}
        >
          Sign out
        </button>
      </header>
      <RetryBanner />
      <main>
        {path === "/" ? (
          <Queue me={me} />
        ) : adminTab !== null && isAdminTab(adminTab) ? (
          <Admin tab={adminTab} />
        ) : ticket?.[1] ? (
          <TicketPage ticketId={ticket[1]} me={me} />
        ) : path === SIGN_IN ? null : (
          <p>
            No page here. <Link to="/">Go to the queue</Link>
          </p>
        )}
      </main>
    </>
  );
}

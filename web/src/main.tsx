import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode, Suspense, lazy } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { ProblemError } from "./problems";
import { isPortalPath, useLocation } from "./router";
import "./styles.css";

// The customers' portal is its own chunk: agents never load it, customers never load the console.
const Portal = lazy(() => import("./portal/Portal"));

const client = new QueryClient({
  defaultOptions: {
    queries: {
      // A problem the API answered (4xx) will not change by asking again at once.
      retry: (failures, error) => failures < 2 && !(error instanceof ProblemError && error.problem.status >= 400 && error.problem.status < 500),
      refetchOnWindowFocus: true,
    },
  },
});

function Root() {
  useLocation(); // re-decide on navigation
  return isPortalPath(window.location.pathname, window.location.hash) ? (
    <Suspense fallback={<p className="loading">Loading…</p>}>
      <Portal />
    </Suspense>
  ) : (
    <App />
  );
}

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={client}>
        <Root />
      </QueryClientProvider>
    </StrictMode>,
  );
}

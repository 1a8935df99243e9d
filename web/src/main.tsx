import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import { ProblemError } from "./problems";
import "./styles.css";

const client = new QueryClient({
  defaultOptions: {
    queries: {
      // A problem the API answered (4xx) will not change by asking again at once.
      retry: (failures, error) => failures < 2 && !(error instanceof ProblemError && error.problem.status >= 400 && error.problem.status < 500),
      refetchOnWindowFocus: true,
    },
  },
});

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={client}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  );
}

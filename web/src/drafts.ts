// Text being written survives what can interrupt it: a 502/503 or a lost network (the form keeps
// it, the request can be sent again), a 401 that goes to sign-in and back, a reload. Kept in
// sessionStorage (this tab only; never a token), cleared once sent.

import { useCallback, useState } from "react";

const PREFIX = "helpdesk:draft:";

export function useDraft(key: string): [string, (value: string) => void, () => void] {
  const storageKey = PREFIX + key;
  const [value, setValue] = useState(() => sessionStorage.getItem(storageKey) ?? "");
  const set = useCallback(
    (next: string) => {
      setValue(next);
      if (next) sessionStorage.setItem(storageKey, next);
      else sessionStorage.removeItem(storageKey);
    },
    [storageKey],
  );
  const clear = useCallback(() => set(""), [set]);
  return [value, set, clear];
}

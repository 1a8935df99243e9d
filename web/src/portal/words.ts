import type { TicketStatus } from "../client";

/** A ticket's state as its customer reads it. */
export const CUSTOMER_STATUS: Record<TicketStatus, string> = {
  new: "Received",
  open: "In progress",
  pending_customer: "Waiting for your answer",
  closed: "Closed",
};

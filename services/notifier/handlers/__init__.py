"""Which mail goes to whom for which event: one module per family of events. Handlers only
*record* (:mod:`services.notifier.recording`, webhook deliveries) in the consumer's transaction;
sending is a job per row after commit, so a slow relay or endpoint never holds up events and a
repeated event sends nothing. ``services.notifier.tasks`` maps each event type to its handler."""

"""The GraphQL websocket: the consumer, who may subscribe to what and until when,
the per-socket limits (``guard``), and the subscriptions themselves."""

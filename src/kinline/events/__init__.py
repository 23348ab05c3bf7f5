"""Domain events: a CloudEvent for every change, written to an outbox in the
change's own transaction, then published to NATS JetStream and to webhooks."""

"""Fair queueing per model: priority bands, weighted token shares per tenant, bounded queues.

- `fairqueue`: the decisions, pure and synchronous (who starts, who waits, who is refused);
- `demand`: what a request asks for (tenant, weight, priority, estimated tokens);
- `admission`: the asyncio waiting around `fairqueue`, one per model, used by the dispatcher;
- `metrics`: queued, admitted and shed requests by priority band and tenant.

docs/scheduling.md explains the policy.
"""

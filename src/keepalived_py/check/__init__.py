"""Health checks of LVS real servers: probes, per-checker state machines, server policy, the engine."""

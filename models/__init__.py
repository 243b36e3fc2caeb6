"""Protocol modules that run on the simulator kernel: resilience, services, replication."""

"""Observability: Prometheus metrics, OpenTelemetry traces, the metrics/dashboard endpoint."""

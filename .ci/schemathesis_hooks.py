"""schemathesis hooks for CI's contract check (scripts/contract-check.sh loads this file through
SCHEMATHESIS_HOOKS).

The collectors' protocols take binary bodies schemathesis has no serializer for: Prometheus
remote write's and OTLP's `application/x-protobuf`. Their schemas say `format: binary`, so the
generated bodies are bytes, sent as they are, as schemathesis sends `application/octet-stream`.
"""
import schemathesis

schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")

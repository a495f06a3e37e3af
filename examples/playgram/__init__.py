"""Playgram's background jobs (seed 003) on Corral and FastAPI: webhooks to ManyChat
with signed, retried delivery, ManyChat sync, email, QR analytics and data exports.
Run it with ``python -m examples.playgram`` (see README.md)."""

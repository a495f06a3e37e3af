"""Notifications: email and signed webhooks for job outcomes, delivered durably."""

"""The ledger app: statements uploaded as CSV, their transactions, in-app
notifications."""

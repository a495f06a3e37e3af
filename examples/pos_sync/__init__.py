"""POS sync (seed 000) on Corral and FastAPI: see README.md. Run it with
``python -m examples.pos_sync``."""

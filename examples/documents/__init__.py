"""Document processing (seed 004) on Corral and FastAPI: see README.md."""

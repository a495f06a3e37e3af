"""Glue for web frameworks; each module needs its framework's extra
(``pip install 'corral[fastapi]'``, ``'corral[flask]'``, ``'corral[django]'``)."""

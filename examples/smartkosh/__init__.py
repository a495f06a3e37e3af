"""SmartKosh (seed 002) on Corral: a Django app whose CSV statement uploads are
imported by ``manage.py corral_worker`` through Django's tasks API."""

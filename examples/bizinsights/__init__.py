"""BizInsights (seed 001) on Corral and Flask: scheduled reports per organisation in
its own time zone, hourly integration syncs and half-hourly alert checks.

``python -m examples.bizinsights`` runs the web app and its worker together."""

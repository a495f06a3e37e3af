// The dashboard's live feed: one EventSource per tab on {base}live?{data-live}.
// (Filled in by the live-updates work: see web/dashboard/live.py.)

"""Enqueue from sync code (a Flask or Django view) and follow the job.

corral worker examples.tasks:app &      # in another shell
python -m examples.sync_producer
"""

from __future__ import annotations

from examples.tasks import app, sync_orders


def connect_pos(restaurant_id: str) -> dict[str, object]:
    """What a POST /connect-pos handler does: enqueue, answer at once with the id."""
    job = sync_orders.options(job_id=f"sync-{restaurant_id}").enqueue_sync(restaurant_id)
    return {"job_id": job.id, "state": job.state.value}


def job_status(job_id: str) -> dict[str, object]:
    """What GET /sync-jobs/<id> returns to the page polling for progress."""
    job = app.get_job_sync(job_id, "sync")
    return {"state": job.state.value, "progress": job.progress, "result": job.return_value}


if __name__ == "__main__":
    answer = connect_pos("restaurant-7")
    print(answer)
    job = app.get_job_sync(str(answer["job_id"]), "sync")
    print("result:", job.result_sync(timeout=30))
    print(job_status(job.id))
    app.close_sync()

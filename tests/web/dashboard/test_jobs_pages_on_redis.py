"""The jobs pages' main flows again on Redis (the other modules run on SQLite): live
progress and logs through pub/sub, actions, run again, a spawned child's parent and
its children's graph, cursor paging, search and bulk."""

from __future__ import annotations

import pytest

from tests.web.dashboard.test_job_page import (
    test_a_child_links_to_its_parent_whose_page_draws_the_children_graph,
    test_progress_updates_live_while_a_worker_runs_the_task,
    test_retry_a_failed_job_from_its_page,
    test_run_again_with_edited_arguments_makes_a_new_job,
)
from tests.web.dashboard.test_queue_page import (
    test_tabs_count_each_state_and_paging_reads_every_job_once,
)
from tests.web.dashboard.test_search_and_bulk import (
    test_bulk_retry_of_ticked_then_of_all_failed_jobs,
    test_search_is_bounded_continues_and_bulk_applies_to_all_matching,
)

__all__ = [
    "test_a_child_links_to_its_parent_whose_page_draws_the_children_graph",
    "test_bulk_retry_of_ticked_then_of_all_failed_jobs",
    "test_progress_updates_live_while_a_worker_runs_the_task",
    "test_retry_a_failed_job_from_its_page",
    "test_run_again_with_edited_arguments_makes_a_new_job",
    "test_search_is_bounded_continues_and_bulk_applies_to_all_matching",
    "test_tabs_count_each_state_and_paging_reads_every_job_once",
]


@pytest.fixture
def url(redis_url: str) -> str:
    return redis_url
